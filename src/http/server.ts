import Fastify from 'fastify';
import type { Registry } from 'prom-client';
import { StagepostError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { DaemonApi } from '../status.js';
import { requireToken, requireTokenForLogs } from './auth.js';
import { allowedHosts, checkHost } from './host-check.js';
import { registerBranchRoutes } from './branch-routes.js';
import type { HttpContext } from './context.js';
import { registerDashboard } from './dashboard.js';
import { registerEvents } from './events.js';
import { registerLogRoute } from './log-route.js';
import { registerMetrics } from './metrics-route.js';

export interface HttpServerOptions {
  host: string;
  port: number;
  /** Required for every POST; without one, POSTs are refused (403). */
  token?: string;
  api: DaemonApi;
  metrics: { registry: Registry };
  log: Logger;
  redact: (text: string) => string;
  /** Build logs readable without the token (default true: like the dashboard). */
  publicLogs?: boolean;
  /** Host names accepted besides the listen address, localhost and IPs (public_url's). */
  publicHosts?: string[];
  /** SSE heartbeat interval (tests shorten it). */
  heartbeatMs?: number;
}

export interface HttpServer {
  url: string;
  close(): Promise<void>;
}

/** The dashboard, JSON API, commit hook and metrics (SPEC "HTTP"). */
export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const log = opts.log.child({ component: 'http' });
  const ctx: HttpContext = { api: opts.api, log, redact: opts.redact };
  // Fastify's own logger is off: it would log request headers, and the token is one.
  // close() cuts open connections: a keep-alive client must not hold up a
  // shutdown or a config reload.
  const app = Fastify({ logger: false, forceCloseConnections: true });

  app.addHook('onRequest', checkHost(allowedHosts(opts.host, opts.publicHosts ?? [])));
  app.addHook('onRequest', requireToken(opts.token));
  if (opts.publicLogs === false) app.addHook('onRequest', requireTokenForLogs(opts.token));
  // Commit hooks post whatever their tool sends (JSON, form data, nothing);
  // no route reads a body, so accept any type and ignore it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: 1024 * 1024 },
    (_request, _body, done) => done(null, undefined),
  );
  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    const message = opts.redact(errorMessage(err));
    if (status >= 500)
      log.error(
        { method: request.method, url: opts.redact(request.url), err: message },
        'http request failed',
      );
    void reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send({ error: `no route ${request.method} ${opts.redact(request.url.split('?')[0])}` });
  });

  registerDashboard(app);
  registerBranchRoutes(app, ctx);
  registerLogRoute(app, ctx);
  registerMetrics(app, ctx, opts.metrics.registry);
  const endStreams = registerEvents(app, ctx, opts.heartbeatMs);
  app.addHook('preClose', () => Promise.resolve(endStreams()));

  try {
    await app.listen({ host: opts.host, port: opts.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    const what =
      code === 'EADDRINUSE' ? 'the address is in use by another process' : errorMessage(err);
    throw new StagepostError(
      'ECONFIG',
      `cannot listen on ${opts.host}:${opts.port} for http: ${what}. Change http.listen in ci.yaml or stop the other process.`,
      { cause: err },
    );
  }

  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;
  log.info({ url }, 'http listening');
  return {
    url,
    close: async () => {
      await app.close();
    },
  };
}
