import type { BranchConfig, JobConfig } from '../config/types.js';
import type { EventName, JobNotification } from '../plugin-api.js';
import type { BuildRecord, PendingNotification } from '../state/store.js';
import type { BuildContext } from './context.js';
import { RecordedRun, builtEnvironment, underBranchLock } from './recorded-run.js';
import { tailLines } from './log-writer.js';
import { addJobRun, jobHistory } from '../state/history.js';

/**
 * A scheduled job (the nightly data sync) for one branch. It holds the same
 * branch lock as builds, so a job and a build of a branch never overlap, and
 * is recorded in its job's own history (`kind: job:<name>`, own numbering and
 * retention), apart from the branch's builds.
 */
export function runJob(
  ctx: BuildContext & {
    notifyJob(n: Omit<JobNotification, 'events'>, events: EventName[]): Promise<void> | void;
  },
  job: JobConfig,
  branch: BranchConfig,
): Promise<BuildRecord> {
  return underBranchLock(ctx, branch.name, `job ${job.name} of ${branch.name}`, async () => {
    const state = ctx.store.readBranch(branch.name);
    const history = jobHistory(state, job.name);
    const id = history.nextId;
    const kind = `job:${job.name}`;
    history.nextId = id + 1;
    const run = await RecordedRun.begin(ctx, branch.name, state, {
      id,
      kind,
      logFile: ctx.store.jobLogFile(branch.name, job.name, id),
      forced: false,
      revisions: { ...state.built },
    });
    const startedAt = run.startedAt.toISOString();
    const log = ctx.log.child({ branch: branch.name, run: id, job: job.name });
    log.info({}, 'job started');
    run.writer.line(`stagepost job ${job.name} for ${branch.name}#${id} started ${startedAt}`);

    const outcome = await run.steps(
      [{ name: job.name, run: job.run, timeoutMs: job.timeoutMs }],
      branch.dir,
      { ...builtEnvironment(ctx, branch, state, id), STAGEPOST_JOB: job.name },
    );
    const durationMs = await run.end();

    const record: BuildRecord = {
      id,
      kind,
      result: outcome.result,
      startedAt,
      durationMs,
      forced: false,
      failedStep: outcome.failedStep,
      steps: outcome.reports,
      revisions: { ...state.built },
    };
    const keptIds = addJobRun(state, job.name, record, branch.keep);
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
          startedAt,
          durationMs,
          logTail: tailLines(run.logFile, 100),
          logUrl,
        },
        events: ['job-failure'],
      };
    }
    await run.record(pending, (p) =>
      ctx.notifyJob(p.notification as Omit<JobNotification, 'events'>, p.events),
    );
    await ctx.store.pruneLogs(branch.name, keptIds, job.name);
    log.info({ result: outcome.result, durationMs }, 'job finished');
    return record;
  });
}
