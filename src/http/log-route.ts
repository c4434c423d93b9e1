import { open } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { unknownBranch } from './branch-routes.js';
import type { HttpContext } from './context.js';

/** Most a single response returns; a follower asks again from the next offset. */
const MAX_CHUNK = 4 * 1024 * 1024;

type LogRoute = { Params: { branch: string; id: string }; Querystring: { offset?: string } };
type JobLogRoute = {
  Params: { branch: string; job: string; id: string };
  Querystring: { offset?: string };
};

/**
 * A build's log as text. `?offset=N` returns only the bytes from N on, so the
 * dashboard can follow a running build; `X-Log-Size` is the file's size and
 * `X-Log-Next-Offset` where the next request should start.
 */
export function registerLogRoute(app: FastifyInstance, ctx: HttpContext): void {
  const { api } = ctx;

  app.get<LogRoute>('/api/branches/:branch/builds/:id/log', async (request, reply) => {
    const { branch, id: rawId } = request.params;
    if (!api.hasBranch(branch)) return unknownBranch(reply, branch);
    const id =
      rawId === 'last' ? lastBuildId(ctx, branch) : /^\d+$/.test(rawId) ? Number(rawId) : null;
    const file = id === null ? null : api.logFile(branch, id);
    if (!file)
      return reply.code(404).send({
        error: `no log for build "${rawId}" of branch "${branch}" (GET /api/branches/${branch}/builds lists the builds)`,
      });
    return sendLog(ctx, reply, file, id!, request.query.offset);
  });

  // Jobs number their runs apart from builds, so their logs have a route of their own.
  app.get<JobLogRoute>('/api/branches/:branch/jobs/:job/runs/:id/log', async (request, reply) => {
    const { branch, job, id: rawId } = request.params;
    if (!api.hasBranch(branch)) return unknownBranch(reply, branch);
    const runs = api.runHistory(branch).jobs[job] ?? [];
    const id =
      rawId === 'last' ? (runs[0]?.id ?? null) : /^\d+$/.test(rawId) ? Number(rawId) : null;
    const file = id === null ? null : api.jobLogFile(branch, job, id);
    if (!file)
      return reply.code(404).send({
        error: `no log for run "${rawId}" of job "${job}" on branch "${branch}" (GET /api/branches/${branch}/history lists the runs)`,
      });
    return sendLog(ctx, reply, file, id!, request.query.offset);
  });
}

async function sendLog(
  { redact }: HttpContext,
  reply: FastifyReply,
  file: string,
  id: number,
  offset: string | undefined,
): Promise<FastifyReply> {
  const offsetText = offset ?? '0';
  if (!/^\d+$/.test(offsetText))
    return reply.code(400).send({
      error: `offset must be a byte count (a non-negative integer), got "${offsetText}"`,
    });
  const { bytes, size } = await readFrom(file, Number(offsetText));
  const whole = completeUtf8(bytes);
  return reply
    .header('Content-Type', 'text/plain; charset=utf-8')
    .header('X-Content-Type-Options', 'nosniff')
    .header('Cache-Control', 'no-store')
    .header('X-Build-Id', String(id))
    .header('X-Log-Size', String(size))
    .header('X-Log-Next-Offset', String(Math.min(Number(offsetText), size) + whole.length))
    .send(redact(whole.toString('utf8')));
}

/** `last`: the running build if any, else the newest finished one. */
function lastBuildId({ api }: HttpContext, branch: string): number | null {
  const status = api.status().branches.find((b) => b.name === branch);
  // A running job is not a build: jobs number their runs apart.
  const running = status?.current?.kind === 'build' ? status.current.id : undefined;
  const ids = [running, status?.lastBuild?.id, api.history(branch)[0]?.id].filter(
    (n): n is number => typeof n === 'number',
  );
  return ids.length ? Math.max(...ids) : null;
}

async function readFrom(file: string, offset: number): Promise<{ bytes: Buffer; size: number }> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const start = Math.min(offset, size);
    const length = Math.min(size - start, MAX_CHUNK);
    const bytes = Buffer.alloc(length);
    const { bytesRead } = await handle.read(bytes, 0, length, start);
    return { bytes: bytes.subarray(0, bytesRead), size };
  } finally {
    await handle.close();
  }
}

/** Drop a UTF-8 sequence cut off at the end, so it is sent whole next time. */
export function completeUtf8(bytes: Buffer): Buffer {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back];
    if ((b & 0xc0) === 0x80) continue; // continuation byte: look further back
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? bytes.subarray(0, bytes.length - back) : bytes;
  }
  return bytes;
}
