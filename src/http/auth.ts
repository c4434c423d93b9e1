import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Bearer-token check for every POST. Both sides are hashed first so the
 * comparison is constant-time whatever the lengths (timingSafeEqual needs
 * equal-length buffers, and a length mismatch must not leak either).
 */
export function tokenMatches(expected: string, header: string | undefined): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  const given = match ? match[1] : '';
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  const same = timingSafeEqual(digest(expected), digest(given));
  return same && given.length > 0;
}

/** A fastify onRequest hook that refuses POSTs without the right token. */
export function requireToken(token: string | undefined) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (request.method !== 'POST') return;
    if (!token) {
      await reply.code(403).send({
        error:
          'POST requests are disabled: no token is configured. Set http.token in ci.yaml (for example token: ${STAGEPOST_TOKEN}) and reload.',
      });
      return;
    }
    if (!tokenMatches(token, request.headers.authorization)) {
      await reply
        .code(401)
        .header('WWW-Authenticate', 'Bearer')
        .send({ error: 'missing or wrong token: send "Authorization: Bearer <http.token>"' });
    }
  };
}

/** `http.public_logs: false`: build logs need the token like a POST does. */
export function requireTokenForLogs(token: string | undefined) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return;
    if (!/^\/api\/branches\/[^/]+\/builds\/[^/]+\/log(\?|$)/.test(request.url)) return;
    if (token && tokenMatches(token, request.headers.authorization)) return;
    await reply.code(401).header('WWW-Authenticate', 'Bearer').send({
      error:
        'build logs are not public here (http.public_logs: false): send "Authorization: Bearer <http.token>"',
    });
  };
}
