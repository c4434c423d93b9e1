import type { FastifyInstance } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import type { HttpContext } from './context.js';

/** `GET /metrics`: Prometheus text; gauges that mirror the status are set at scrape time. */
export function registerMetrics(app: FastifyInstance, ctx: HttpContext, registry: Registry): void {
  const gauge = (name: string) => {
    const metric = registry.getSingleMetric(name);
    return metric instanceof Gauge ? metric : null;
  };
  app.get('/metrics', async (_request, reply) => {
    const status = ctx.api.status();
    gauge('stagepost_queue_length')?.set(status.queue.length);
    gauge('stagepost_outbox_size')?.set(status.outbox);
    const text = await registry.metrics();
    return reply.header('Content-Type', registry.contentType).send(text);
  });
}
