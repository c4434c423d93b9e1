import type { BranchConfig, StepConfig } from '../config/types.js';
import type { BranchState, PendingNotification, StateStore } from '../state/store.js';
import { FileLock } from '../state/lock.js';
import { stepEnvironment } from '../site/urls.js';
import type { BuildContext } from './context.js';
import { LogWriter } from './log-writer.js';
import { runSteps, type StepsOutcome } from './steps.js';

/**
 * What a build and a job share: the branch lock, a numbered run marked
 * `running` in the branch's state file (with its process groups, so a
 * restarted daemon can end them) for as long as it runs, a capped log,
 * progress for status, and the finished record written together with its
 * notification.
 */
export class RecordedRun {
  readonly startedAt = new Date();
  readonly writer: LogWriter;
  private readonly groupWrites: Promise<void>[] = [];

  private constructor(
    private readonly ctx: BuildContext,
    private readonly branch: string,
    private readonly state: BranchState,
    readonly id: number,
    readonly kind: string,
    readonly logFile: string,
  ) {
    this.writer = new LogWriter(logFile, ctx.echo, ctx.config.logMaxBytes);
  }

  /**
   * Marks the run in the state file before anything of it starts. Callers
   * number the run (builds and each job count apart) and pass the state read
   * under the lock.
   */
  static async begin(
    ctx: BuildContext,
    branch: string,
    state: BranchState,
    run: {
      id: number;
      kind: string;
      logFile: string;
      forced: boolean;
      revisions: Record<string, string>;
    },
  ): Promise<RecordedRun> {
    const recorded = new RecordedRun(ctx, branch, state, run.id, run.kind, run.logFile);
    state.running = {
      id: run.id,
      kind: run.kind,
      startedAt: recorded.startedAt.toISOString(),
      forced: run.forced,
      revisions: run.revisions,
      pgids: [],
      pid: process.pid,
    };
    await ctx.store.writeBranch(branch, state);
    return recorded;
  }

  /** Written at once: a kill -9 right now must still let the next daemon end this group. */
  readonly recordGroup = (pgid: number): Promise<void> => {
    this.state.running?.pgids.push(pgid);
    const write = this.ctx.store.writeBranch(this.branch, this.state);
    this.groupWrites.push(write.catch(() => undefined));
    return write;
  };

  /** For runners that cannot wait on the write (a VCS plugin's checkout). */
  readonly onSpawn = (pgid: number): void => void this.recordGroup(pgid).catch(() => undefined);

  readonly progress = (step: string | null): void =>
    this.ctx.progress?.(this.branch, {
      id: this.id,
      kind: this.kind,
      step,
      startedAt: this.startedAt.toISOString(),
    });

  /** Steps of this run: logged to its log, their process groups recorded, progress shown. */
  steps(list: StepConfig[], cwd: string, env: Record<string, string>): Promise<StepsOutcome> {
    return runSteps(list, {
      cwd,
      env,
      log: this.writer,
      signal: this.ctx.signal,
      recordGroup: this.recordGroup,
      onStep: this.progress,
    });
  }

  /** Log closed, every process-group write settled, progress cleared; the run's duration. */
  async end(): Promise<number> {
    await this.writer.close();
    await Promise.all(this.groupWrites);
    this.ctx.progress?.(this.branch, null);
    return Date.now() - this.startedAt.getTime();
  }

  /** The run is over: no longer `running`, recorded with its notification. */
  async record(
    pending: PendingNotification | undefined,
    send: (pending: PendingNotification) => Promise<void> | void,
  ): Promise<void> {
    this.state.running = null;
    await recordWithNotification(this.ctx.store, this.branch, this.state, pending, send);
  }
}

/** Runs `fn` holding the branch's lock: builds and jobs of one branch never overlap. */
export async function underBranchLock<T>(
  ctx: BuildContext,
  branch: string,
  purpose: string,
  fn: () => Promise<T>,
): Promise<T> {
  const lock = new FileLock(ctx.store.lockFile(branch), purpose);
  await lock.acquire({ signal: ctx.signal, onWait: ctx.onLockWait });
  try {
    return await fn();
  } finally {
    // The run is recorded by now: a lock file left behind is taken over by the next run here.
    await lock
      .release()
      .catch((err: unknown) =>
        ctx.log.warn(
          { branch, error: err },
          'could not remove the branch lock file; the next build or job takes it over',
        ),
      );
  }
}

/**
 * Record a finished build (or job) together with its notification, then hand
 * the notification to the outbox and clear it. A crash before the hand-over
 * leaves it in the state file, and the next start sends it: the mail of a
 * recorded build is never lost, and no mail is sent for a build that was not
 * recorded. Called with the branch lock held.
 */
export async function recordWithNotification(
  store: StateStore,
  branch: string,
  state: BranchState,
  pending: PendingNotification | undefined,
  send: (pending: PendingNotification) => Promise<void> | void,
): Promise<void> {
  state.pendingNotification = pending;
  await store.writeBranch(branch, state);
  if (!pending) return;
  await send(pending);
  state.pendingNotification = undefined;
  await store.writeBranch(branch, state);
}

/**
 * The steps' environment of a run on what the branch has built (a job, a
 * teardown): its built revisions are both the current and the previous ones.
 */
export function builtEnvironment(
  ctx: BuildContext,
  branch: BranchConfig,
  state: BranchState,
  id: number,
): Record<string, string> {
  const previous = Object.fromEntries(
    branch.sources.map((s) => [s.name, state.built[s.name] ?? null]),
  );
  return stepEnvironment(ctx.config, branch, { id, revisions: { ...state.built }, previous });
}
