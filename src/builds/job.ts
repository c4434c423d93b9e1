import type { BranchConfig, JobConfig } from '../config/types.js';
import type { EventName, JobNotification } from '../plugin-api.js';
import type { BuildRecord, PendingNotification } from '../state/store.js';
import { recordWithNotification, type BuildContext } from './builder.js';
import { FileLock } from '../state/lock.js';
import { stepEnvironment } from '../site/urls.js';
import { LogWriter, tailLines } from './log-writer.js';
import { runSteps } from './steps.js';
import { addJobRun, jobHistory } from '../state/history.js';

/**
 * A scheduled job (the nightly data sync) for one branch. It holds the same
 * branch lock as builds, so a job and a build of a branch never overlap, and
 * is recorded in its job's own history (`kind: job:<name>`, own numbering and
 * retention), apart from the branch's builds.
 */
export async function runJob(
  ctx: BuildContext & {
    notifyJob(n: Omit<JobNotification, 'events'>, events: EventName[]): Promise<void> | void;
  },
  job: JobConfig,
  branch: BranchConfig,
): Promise<BuildRecord> {
  const lock = new FileLock(ctx.store.lockFile(branch.name), `job ${job.name} of ${branch.name}`);
  await lock.acquire({ signal: ctx.signal, onWait: ctx.onLockWait });
  try {
    const state = ctx.store.readBranch(branch.name);
    const history = jobHistory(state, job.name);
    const id = history.nextId;
    const kind = `job:${job.name}`;
    const startedAt = new Date();
    const log = ctx.log.child({ branch: branch.name, run: id, job: job.name });
    const logFile = ctx.store.jobLogFile(branch.name, job.name, id);
    const writer = new LogWriter(logFile, ctx.echo, ctx.config.logMaxBytes);
    history.nextId = id + 1;
    state.running = {
      id,
      kind,
      startedAt: startedAt.toISOString(),
      forced: false,
      revisions: { ...state.built },
      pgids: [],
      pid: process.pid,
    };
    await ctx.store.writeBranch(branch.name, state);
    const writes: Promise<void>[] = [];
    log.info({}, 'job started');
    writer.line(
      `stagepost job ${job.name} for ${branch.name}#${id} started ${startedAt.toISOString()}`,
    );

    const previous: Record<string, string | null> = {};
    for (const s of branch.sources) previous[s.name] = state.built[s.name] ?? null;
    const env = stepEnvironment(ctx.config, branch, {
      id,
      revisions: { ...state.built },
      previous,
    });
    const outcome = await runSteps([{ name: job.name, run: job.run, timeoutMs: job.timeoutMs }], {
      cwd: branch.dir,
      env: { ...env, STAGEPOST_JOB: job.name },
      log: writer,
      signal: ctx.signal,
      recordGroup: (pgid) => {
        state.running?.pgids.push(pgid);
        const write = ctx.store.writeBranch(branch.name, state);
        writes.push(write.catch(() => undefined));
        return write;
      },
      onStep: (step) =>
        ctx.progress?.(branch.name, { id, kind, step, startedAt: startedAt.toISOString() }),
    });
    await writer.close();
    await Promise.all(writes);
    ctx.progress?.(branch.name, null);
    const durationMs = Date.now() - startedAt.getTime();

    const record: BuildRecord = {
      id,
      kind,
      result: outcome.result,
      startedAt: startedAt.toISOString(),
      durationMs,
      forced: false,
      failedStep: outcome.failedStep,
      steps: outcome.reports,
      revisions: { ...state.built },
    };
    const keptIds = addJobRun(state, job.name, record, branch.keep);
    state.running = null;
    let pending: PendingNotification | undefined;
    const failed = outcome.result === 'failure' || outcome.result === 'timeout';
    if (failed && job.notifyOn.includes('job-failure')) {
      const logUrl = ctx.httpUrl
        ? `${ctx.httpUrl.replace(/\/$/, '')}/api/branches/${encodeURIComponent(branch.name)}/jobs/${encodeURIComponent(job.name)}/runs/${id}/log`
        : undefined;
      pending = {
        notification: {
          type: 'job',
          job: job.name,
          branch: branch.name,
          result: outcome.result,
          startedAt: startedAt.toISOString(),
          durationMs,
          logTail: tailLines(logFile, 100),
          logUrl,
        },
        events: ['job-failure'],
      };
    }
    await recordWithNotification(ctx.store, branch.name, state, pending, (p) =>
      ctx.notifyJob(p.notification as Omit<JobNotification, 'events'>, p.events),
    );
    await ctx.store.pruneLogs(branch.name, keptIds, job.name);
    log.info({ result: outcome.result, durationMs }, 'job finished');
    return record;
  } finally {
    await lock.release();
  }
}
