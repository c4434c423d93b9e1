import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { BranchConfig, Config, StepConfig } from '../config/types.js';
import type {
  BuildNotification,
  BuildResult,
  CommitReport,
  EventName,
  RevisionReport,
  StepReport,
} from '../plugin-api.js';
import type { Logger } from '../log.js';
import type {
  BranchState,
  BuildRecord,
  PendingNotification,
  StateStore,
  TrackState,
} from '../state/store.js';
import type { VcsRegistry } from '../vcs.js';
import { FileLock } from '../state/lock.js';
import { errorMessage } from '../errors.js';
import { sourceSpec, trackKey } from '../poll/tracks.js';
import { stepEnvironment, customerUrl } from '../site/urls.js';
import { checkHealth, healthUrls } from '../site/health.js';
import { formatDuration } from '../util/duration.js';
import { LogWriter, tailLines } from './log-writer.js';
import { noteRedone } from './cut-off.js';
import { guardCheckout } from './checkout-guard.js';
import { runSteps } from './steps.js';
import { commitEmail } from './authors.js';
import { buildEvents } from '../notify/events.js';
import { trimBuilds } from '../state/history.js';

/**
 * One build of one branch: lock → pick the newest polled revisions → create
 * the directory if missing → bring each source to its revision → steps →
 * health → record → notify. The state file says a build is running (with its
 * process groups) for as long as it runs, so a crash can be cleaned up.
 */
export interface BuildContext {
  config: Config;
  store: StateStore;
  vcs: VcsRegistry;
  log: Logger;
  /** Current remote revision of a track. */
  track(key: string): TrackState | undefined;
  /**
   * Send a notification for these events (the dispatcher filters per
   * notifier). Resolves once the messages are safe in the outbox.
   */
  notify(
    notification: Omit<BuildNotification, 'events'>,
    events: EventName[],
  ): Promise<void> | void;
  /** Aborted on shutdown: running children are ended and the build recorded `interrupted`. */
  signal?: AbortSignal;
  /** Progress for status and the dashboard. */
  progress?(
    branch: string,
    info: { id: number; kind: string; step: string | null; startedAt: string } | null,
  ): void;
  /** Mirror of the log (foreground `update`). */
  echo?: (text: string) => void;
  /** Public base URL of the dashboard, for log links. */
  httpUrl?: string;
  /** Told once when another process holds the branch lock. */
  onLockWait?: (owner: { pid: number; purpose: string }) => void;
}

export type BuildOutcome =
  | { status: 'built'; record: BuildRecord }
  | { status: 'up-to-date' }
  | { status: 'no-revision'; reason: string };

const COMMIT_LIMIT = 50;

export function targetRevisions(
  ctx: Pick<BuildContext, 'track'>,
  branch: BranchConfig,
): { revisions: Record<string, string>; missing: string[] } {
  const revisions: Record<string, string> = {};
  const missing: string[] = [];
  for (const source of branch.sources) {
    const rev = ctx.track(trackKey(source))?.revision;
    if (rev) revisions[source.name] = rev;
    else missing.push(source.name);
  }
  return { revisions, missing };
}

export function needsBuild(state: BranchState, revisions: Record<string, string>): boolean {
  return Object.entries(revisions).some(([name, rev]) => state.attempted[name] !== rev);
}

export async function runBuild(
  ctx: BuildContext,
  branch: BranchConfig,
  options: { force: boolean; create?: boolean },
): Promise<BuildOutcome> {
  const lock = new FileLock(ctx.store.lockFile(branch.name), `build of ${branch.name}`);
  await lock.acquire({ signal: ctx.signal, onWait: ctx.onLockWait });
  try {
    return await buildLocked(ctx, branch, options);
  } finally {
    await lock.release();
  }
}

async function buildLocked(
  ctx: BuildContext,
  branch: BranchConfig,
  options: { force: boolean; create?: boolean },
): Promise<BuildOutcome> {
  // Re-read under the lock: a foreground `update` may have built meanwhile.
  const state = ctx.store.readBranch(branch.name);
  const { revisions, missing } = targetRevisions(ctx, branch);
  if (missing.length > 0) {
    return {
      status: 'no-revision',
      reason: `no revision known yet for ${missing.join(', ')} (the remote has not answered or the ref does not exist)`,
    };
  }
  const forced = options.force || state.forcePending === true;
  if (!forced && !needsBuild(state, revisions)) return { status: 'up-to-date' };

  const id = state.nextId;
  const startedAt = new Date();
  const log = ctx.log.child({ branch: branch.name, build: id });
  const logFile = ctx.store.logFile(branch.name, id);
  const writer = new LogWriter(logFile, ctx.echo, ctx.config.logMaxBytes);
  const previous: Record<string, string | null> = {};
  // An interrupted build is being redone now: the previous one is the last
  // that finished, and `attempted` holds its revisions even once it left the
  // history. No previous revision: a first build, whose commits mail nobody.
  for (const s of branch.sources)
    previous[s.name] =
      state.builds.find((b) => b.result !== 'interrupted' && b.revisions[s.name])?.revisions[
        s.name
      ] ??
      state.attempted[s.name] ??
      null;

  state.nextId = id + 1;
  state.forcePending = false;
  state.running = {
    id,
    kind: 'build',
    startedAt: startedAt.toISOString(),
    forced,
    revisions,
    pgids: [],
    pid: process.pid,
  };
  await ctx.store.writeBranch(branch.name, state);
  await noteRedone(ctx.store, branch.name, state, id);

  const pgidWrites: Promise<void>[] = [];
  // Written at once: a kill -9 right now must still let the next daemon end this group.
  const recordGroup = (pgid: number): Promise<void> => {
    state.running?.pgids.push(pgid);
    const write = ctx.store.writeBranch(branch.name, state);
    pgidWrites.push(write.catch(() => undefined));
    return write;
  };
  const onSpawn = (pgid: number) => void recordGroup(pgid).catch(() => undefined);
  const progress = (step: string | null) =>
    ctx.progress?.(branch.name, { id, kind: 'build', step, startedAt: startedAt.toISOString() });

  const revisionReports: RevisionReport[] = [];
  for (const s of branch.sources) {
    const plugin = await ctx.vcs.get(s.vcs, { file: ctx.config.file, line: s.line });
    revisionReports.push({
      source: s.name,
      vcs: s.vcs,
      revision: revisions[s.name],
      short: plugin.shortRevision(revisions[s.name]),
      previous: previous[s.name] ?? null,
      previousShort: previous[s.name] ? plugin.shortRevision(previous[s.name]!) : null,
    });
  }
  const customerUrls = branch.customers
    .map((c) => customerUrl(ctx.config, branch, c))
    .filter((u): u is string => !!u);
  const base = {
    type: 'build' as const,
    branch: branch.name,
    revisions: revisionReports,
    customerUrls,
  };
  const logUrl = ctx.httpUrl
    ? `${ctx.httpUrl.replace(/\/$/, '')}/api/branches/${encodeURIComponent(branch.name)}/builds/${id}/log`
    : undefined;

  log.info(
    { revisions: Object.fromEntries(revisionReports.map((r) => [r.source, r.short])), forced },
    'build started',
  );
  void ctx.notify(
    {
      ...base,
      build: { id, startedAt: startedAt.toISOString(), steps: [], logTail: [], logUrl, forced },
      commits: [],
    },
    ['started'],
  );
  writer.line(
    `stagepost build ${branch.name}#${id} started ${startedAt.toISOString()}${forced ? ' (forced)' : ''}`,
  );
  for (const r of revisionReports)
    writer.line(
      `    ${r.source}: ${r.short}${r.previous && r.previous !== r.revision ? ` (was ${r.previousShort})` : ''}`,
    );

  const reports: StepReport[] = [];
  let result: BuildResult = 'success';
  let failedStep: string | undefined;
  const commits: CommitReport[] = [];
  const record = (name: string, res: BuildResult, started: number, reason?: string) => {
    reports.push({ name, result: res, durationMs: Date.now() - started, reason });
    if (res !== 'success' && result === 'success') {
      result = res;
      failedStep = name;
    }
  };

  try {
    const creating = !existsSync(branch.dir);
    if (creating) {
      writer.line(`==> create: ${branch.dir} does not exist; checking out sources`);
      await fs.mkdir(branch.dir, { recursive: true });
    }
    // Checkout
    progress('checkout');
    const checkoutStarted = Date.now();
    const guard = guardCheckout({
      timeoutMs: ctx.config.checkoutTimeoutMs,
      stallMs: ctx.config.checkoutStallMs,
      signal: ctx.signal,
    });
    try {
      for (const s of branch.sources) {
        const plugin = await ctx.vcs.get(s.vcs, { file: ctx.config.file, line: s.line });
        const dir = path.join(branch.dir, s.path);
        writer.line(
          `==> checkout ${s.name} → ${plugin.shortRevision(revisions[s.name])} in ${s.path}`,
        );
        guard.progress();
        await plugin.checkout(sourceSpec(s), revisions[s.name], {
          dir,
          timeoutMs: ctx.config.checkoutTimeoutMs,
          stallMs: ctx.config.checkoutStallMs,
          onOutput: (c) => {
            guard.progress();
            writer.output(c);
          },
          onSpawn,
          signal: guard.signal,
        });
        if (guard.reason()) throw new Error(guard.reason()!);
        try {
          const found = await plugin.commitsBetween(
            sourceSpec(s),
            previous[s.name] ?? null,
            revisions[s.name],
            { dir, timeoutMs: branch.poll.timeoutMs, limit: COMMIT_LIMIT, signal: ctx.signal },
          );
          // Only commits since the site's last finished build have an audience:
          // a first build lists earlier history, whose authors are strangers.
          const inRange = previous[s.name] !== null;
          for (const c of found)
            commits.push({
              ...c,
              source: s.name,
              email: inRange ? commitEmail(ctx.config, c) : undefined,
            });
        } catch (err) {
          writer.line(`(could not list commits of ${s.name}: ${errorMessage(err)})`);
        }
      }
      record('checkout', 'success', checkoutStarted);
    } catch (err) {
      // The guard's reason says more than the plugin's "aborted".
      const message = guard.reason() ?? errorMessage(err);
      writer.line(`checkout failed: ${message}`);
      record('checkout', ctx.signal?.aborted ? 'interrupted' : 'failure', checkoutStarted, message);
    } finally {
      guard.dispose();
    }

    const env = stepEnvironment(ctx.config, branch, { id, revisions, previous });
    const runPhase = async (steps: StepConfig[]) => {
      if (result !== 'success' || steps.length === 0) return;
      const outcome = await runSteps(steps, {
        cwd: branch.dir,
        env,
        log: writer,
        signal: ctx.signal,
        recordGroup,
        onStep: (name) => progress(name),
      });
      reports.push(...outcome.reports);
      if (outcome.result !== 'success') {
        result = outcome.result;
        failedStep = outcome.failedStep;
      }
    };
    if (creating || options.create) await runPhase(branch.create);
    await runPhase(branch.steps);

    if (result === 'success' && branch.health && branch.customers.length > 0) {
      progress('health');
      const started = Date.now();
      const urls = healthUrls(ctx.config, branch);
      writer.line(`==> health: ${urls.join(' ')}`);
      const health = await checkHealth({
        urls,
        expect: branch.health.expect,
        timeoutMs: branch.health.timeoutMs,
        signal: ctx.signal,
      });
      for (const r of health.results)
        writer.line(
          `    ${r.url}: ${r.ok ? 'ok' : 'FAILED'} ${r.status ?? r.error ?? ''} (${r.attempts} attempt${r.attempts === 1 ? '' : 's'})`,
        );
      const bad = health.results
        .filter((r) => !r.ok)
        .map((r) => `${r.url} → ${r.status ?? r.error}`)
        .join('; ');
      record(
        'health',
        health.ok ? 'success' : ctx.signal?.aborted ? 'interrupted' : 'failure',
        started,
        health.ok ? undefined : bad,
      );
    }
  } catch (err) {
    writer.line(`build error: ${errorMessage(err)}`);
    if (result === 'success') {
      result = ctx.signal?.aborted ? 'interrupted' : 'failure';
      failedStep ??= 'stagepost';
    }
  }

  if (ctx.signal?.aborted && result !== 'success') result = 'interrupted';
  const durationMs = Date.now() - startedAt.getTime();
  writer.line(
    `stagepost build ${branch.name}#${id}: ${result}${failedStep ? ` at ${failedStep}` : ''} in ${formatDuration(durationMs)}`,
  );
  await writer.close();
  await Promise.all(pgidWrites);
  ctx.progress?.(branch.name, null);

  const buildRecord: BuildRecord = {
    id,
    kind: 'build',
    result,
    startedAt: startedAt.toISOString(),
    durationMs,
    forced,
    failedStep,
    steps: reports,
    revisions,
  };
  const previousResult = state.builds.find((b) => b.result !== 'interrupted')?.result ?? null;
  if (result !== 'interrupted') {
    // An interrupted build is redone, so its revisions do not count as attempted.
    state.attempted = { ...revisions };
    if (result === 'success') {
      state.built = { ...revisions };
      state.subjects = {};
      for (const s of branch.sources) {
        const head =
          commits.find((c) => c.source === s.name && c.id === revisions[s.name]) ??
          commits.find((c) => c.source === s.name);
        if (head) state.subjects[s.name] = head.subject;
      }
    }
  } else if (forced) {
    state.forcePending = true;
  }
  state.builds = trimBuilds([buildRecord, ...state.builds], branch.keep);
  state.running = null;

  const events = buildEvents(result, previousResult);
  const logTail = events.length > 0 && result !== 'success' ? tailLines(logFile, 100) : [];
  const notification: Omit<BuildNotification, 'events'> = {
    ...base,
    build: {
      id,
      result,
      startedAt: startedAt.toISOString(),
      durationMs,
      failedStep,
      steps: reports,
      logTail,
      logUrl,
      forced,
    },
    commits,
  };
  await recordWithNotification(
    ctx.store,
    branch.name,
    state,
    events.length > 0 ? { notification, events } : undefined,
    (p) => ctx.notify(p.notification as Omit<BuildNotification, 'events'>, p.events),
  );
  await ctx.store.pruneLogs(
    branch.name,
    state.builds.map((b) => b.id),
  );
  log.info({ result, failedStep, durationMs }, 'build finished');
  return { status: 'built', record: buildRecord };
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
