import type { FastifyInstance, FastifyReply } from 'fastify';
import type { HttpContext } from './context.js';
import { redactDeep } from '../util/redact.js';

type BranchParams = { Params: { branch: string } };

export function unknownBranch(reply: FastifyReply, branch: string): FastifyReply {
  return reply.code(404).send({
    error: `unknown branch "${branch}": it is not in ci.yaml (GET /api/status lists the branches)`,
  });
}

/** JSON routes: status, history, caught mail, the commit hook and forced builds. */
export function registerBranchRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { api, redact, log } = ctx;
  const json = <T>(value: T): T => redactDeep(value, redact);

  app.get('/api/status', () => json(api.status()));

  app.get<BranchParams>('/api/branches/:branch/builds', async (request, reply) => {
    const { branch } = request.params;
    if (!api.hasBranch(branch)) return unknownBranch(reply, branch);
    return json(api.history(branch));
  });

  // Builds and, apart, each job's runs, with per-step durations (docs/http.md).
  app.get<BranchParams>('/api/branches/:branch/history', async (request, reply) => {
    const { branch } = request.params;
    if (!api.hasBranch(branch)) return unknownBranch(reply, branch);
    return json(api.runHistory(branch));
  });

  app.get<BranchParams>('/api/branches/:branch/mail', async (request, reply) => {
    const { branch } = request.params;
    if (!api.hasBranch(branch)) return unknownBranch(reply, branch);
    return json(await api.caughtMail(branch));
  });

  // The commit hook: only polls. A build follows only if a revision changed.
  app.post<{ Querystring: { branch?: string } }>('/api/poll', async (request, reply) => {
    const branch = request.query.branch || undefined;
    if (branch !== undefined && !api.hasBranch(branch)) return unknownBranch(reply, branch);
    log.info({ branch: branch ?? '*' }, 'poll requested over http');
    await api.pollNow(branch);
    const polled = branch ? [branch] : api.status().branches.map((b) => b.name);
    return reply.code(200).send({ polled });
  });

  app.post<BranchParams>('/api/branches/:branch/build', async (request, reply) => {
    const { branch } = request.params;
    if (!api.hasBranch(branch)) return unknownBranch(reply, branch);
    log.info({ branch }, 'forced build requested over http');
    api.forceBuild(branch);
    return reply.code(202).send({ queued: branch, forced: true });
  });
}
