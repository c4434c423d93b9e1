import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HttpContext } from './context.js';

const BRANCH_GET = /^\/api\/branches\/([^/?]+)\/[^?]*/;
const PROXY_TIMEOUT_MS = 15_000;
/** What a log answer says beyond its body: the dashboard follows a live log by its next offset. */
const PASSED_HEADERS = ['content-type', 'x-build-id', 'x-log-size', 'x-log-next-offset'];

/**
 * With a cluster, a site's history, logs and caught mail live on the host
 * that holds it: any host's API answers for it by asking that host (the
 * logs stay where the build ran; a copy in the database would double every
 * log's writes for the rare look from another host).
 */
export function proxyToOwner(ctx: HttpContext) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | void> => {
    if (request.method !== 'GET' || !ctx.api.ownerOf) return;
    const match = BRANCH_GET.exec(request.url);
    if (!match) return;
    let branch: string;
    try {
      branch = decodeURIComponent(match[1]);
    } catch {
      return;
    }
    const owner = ctx.api.ownerOf(branch);
    if (!owner) return;
    if (!owner.url || !owner.alive)
      return reply.code(503).send({
        error: `branch ${branch} is on host ${owner.host}, which is down or has no http: — its history and logs come back with it`,
      });
    let response: Response;
    try {
      response = await fetch(new URL(request.url, owner.url), {
        headers: request.headers.authorization
          ? { authorization: request.headers.authorization }
          : {},
        signal: AbortSignal.timeout(PROXY_TIMEOUT_MS),
      });
    } catch (err) {
      return reply.code(502).send({
        error: `host ${owner.host} (${owner.url}) holds branch ${branch} and did not answer: ${(err as Error).message}`,
      });
    }
    for (const name of PASSED_HEADERS) {
      const value = response.headers.get(name);
      if (value !== null) void reply.header(name, value);
    }
    void reply.header('x-stagepost-host', owner.host);
    return reply.code(response.status).send(Buffer.from(await response.arrayBuffer()));
  };
}
