import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * DNS rebinding: a web page on evil.example makes its name resolve to
 * 127.0.0.1 and then reads the dashboard "from its own origin". The browser
 * still sends `Host: evil.example`, so only names the operator configured
 * are served: the listen address, `localhost`, the host of `http.public_url`
 * — and IP addresses, which no rebinding can produce. Others get 421.
 */
export function allowedHosts(listenHost: string, publicHosts: string[]): Set<string> {
  return new Set(['localhost', listenHost, ...publicHosts].map((h) => h.toLowerCase()));
}

/** The host name of a Host header, without port and IPv6 brackets; null when malformed. */
export function hostName(header: string | undefined): string | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+)(:\d+)?$/.exec((header ?? '').trim());
  if (!m) return null;
  return m[1]
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
}

export function checkHost(allowed: Set<string>) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const name = hostName(request.headers.host);
    if (name !== null && (isIP(name) !== 0 || allowed.has(name))) return;
    await reply.code(421).send({
      error: `this server does not answer to Host "${request.headers.host ?? ''}": use its address, localhost, or set http.public_url in ci.yaml to the name you reach it by`,
    });
  };
}
