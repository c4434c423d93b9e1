import Fastify from 'fastify';
import type { Registry } from 'prom-client';
import { StagepostError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { DaemonApi } from '../api.js';
import { requireToken, requireTokenForLogs } from './auth.js';
import { allowedHosts, checkHost } from './host-check.js';
import { registerBranchRoutes } from './branch-routes.js';
import { proxyToOwner } from './owner-proxy.js';
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

/**
 * Bounds on what a client can hold (issue 16, point 2). Idle or half-sent
 * connections used to live about 87 s (Node's 60 s header timeout, checked
 * every 30 s). The dashboard's event stream writes a heartbeat every 15 s,
 * well within the idle timeout; the longest request (a commit hook waiting
 * for its poll) is bounded by the response, not by these.
 */
export const HTTP_LIMITS = {
  fastify: {
    /** A socket with no traffic either way for this long is closed (a backstop: a commit hook may wait for a slow poll). */
    connectionTimeout: 120_000,
    /** The whole request (headers and body) must arrive within this. */
    requestTimeout: 15_000,
    /** An idle keep-alive connection is closed after this. */
    keepAliveTimeout: 5_000,
    maxRequestsPerSocket: 100,
  },
  node: {
    /** Headers of a request must be complete within this... */
    headersTimeout: 5_000,
    /** ...checked this often, so a half-sent request ends within 6 s. */
    connectionsCheckingInterval: 1_000,
  },
  maxConnections: 256,
} as const;

/** The dashboard, JSON API, commit hook and metrics (SPEC "HTTP"). */
export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const log = opts.log.child({ component: 'http' });
  const ctx: HttpContext = { api: opts.api, log, redact: opts.redact };
  // Fastify's own logger is off: it would log request headers, and the token is one.
  // close() cuts open connections: a keep-alive client must not hold up a
  // shutdown or a config reload.
  const app = Fastify({
    logger: false,
    forceCloseConnections: true,
    ...HTTP_LIMITS.fastify,
    http: HTTP_LIMITS.node,
  });
  // Past this many sockets new ones are closed at once: a local flood needs no
  // token, and without a cap it takes every file descriptor the daemon has.
  app.server.maxConnections = HTTP_LIMITS.maxConnections;

  app.addHook('onRequest', checkHost(allowedHosts(opts.host, opts.publicHosts ?? [])));
  app.addHook('onRequest', requireToken(opts.token));
  if (opts.publicLogs === false) app.addHook('onRequest', requireTokenForLogs(opts.token));
  app.addHook('onRequest', proxyToOwner(ctx));
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
