import type { FastifyInstance } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import { clusterMetrics } from '../metrics.js';
import type { HttpContext } from './context.js';

/**
 * `GET /metrics`: Prometheus text; the queue and outbox gauges are set at
 * scrape time, and with a cluster every host and every host's sites too.
 */
export function registerMetrics(app: FastifyInstance, ctx: HttpContext, registry: Registry): void {
  const gauge = (name: string) => {
    const metric = registry.getSingleMetric(name);
    return metric instanceof Gauge ? metric : null;
  };
  const cluster = clusterMetrics(registry);
  app.get('/metrics', async (_request, reply) => {
    const counts = ctx.api.counts();
    gauge('stagepost_queue_length')?.set(counts.queue);
    gauge('stagepost_outbox_size')?.set(counts.outbox);
    if (counts.cluster) cluster(ctx.api.status());
    const text = await registry.metrics();
    return reply.header('Content-Type', registry.contentType).send(text);
  });
}
