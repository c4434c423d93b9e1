import type { FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { HttpContext } from './context.js';
import { redactDeep } from '../util/redact.js';

const HEARTBEAT_MS = 15_000;

/**
 * `GET /api/events`: Server-Sent Events, one `data:` line per daemon change,
 * so the dashboard refetches only when something happened. Returns a function
 * that ends every open stream (the server cannot close while they are open).
 */
export function registerEvents(
  app: FastifyInstance,
  ctx: HttpContext,
  heartbeatMs = HEARTBEAT_MS,
): () => void {
  const streams = new Set<() => void>();

  app.get('/api/events', (_request, reply) => {
    reply.hijack();
    const res: ServerResponse = reply.raw;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no', // nginx in front must not buffer the stream
    });
    res.write('retry: 3000\n: connected\n\n');

    const unsubscribe = ctx.api.onChange((event) => {
      res.write(
        `data: ${JSON.stringify(redactDeep({ type: event.type, branch: event.branch }, ctx.redact))}\n\n`,
      );
    });
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
    heartbeat.unref();

    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      unsubscribe();
      streams.delete(end);
      res.end();
    };
    streams.add(end);
    // The response's close means the client went away (the request's close
    // only means its body was read).
    res.on('close', end);
    res.on('error', end);
  });

  return () => {
    for (const end of [...streams]) end();
  };
}
