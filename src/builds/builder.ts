import { existsSync, promises as fs } from 'node:fs';
import type { BranchConfig } from '../config/types.js';
import type { BuildNotification, RevisionReport } from '../plugin-api.js';
import type { BranchState, BuildRecord } from '../state/store.js';
import { errorMessage } from '../errors.js';
import { trackKey } from '../poll/tracks.js';
import { stepEnvironment, customerUrl } from '../site/urls.js';
import { formatDuration } from '../util/duration.js';
import { tailLines } from './log-writer.js';
import { noteRedone } from './cut-off.js';
import { buildEvents } from '../notify/events.js';
import { trimBuilds } from '../state/history.js';
import type { BuildContext } from './context.js';
import { RecordedRun, underBranchLock } from './recorded-run.js';
import { runPhases, type BuildInProgress } from './phases.js';

export type BuildOutcome =
  | { status: 'built'; record: BuildRecord }
  | { status: 'up-to-date' }
  | { status: 'no-revision'; reason: string };

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

/**
 * One build of one branch: lock → pick the newest polled revisions → create
 * the directory if missing → the phases (checkout, create, steps, health) →
 * record → notify. The state file says a build is running (with its process
 * groups) for as long as it runs, so a crash can be cleaned up.
 */
export function runBuild(
  ctx: BuildContext,
  branch: BranchConfig,
  options: { force: boolean; create?: boolean },
): Promise<BuildOutcome> {
  return underBranchLock(ctx, branch.name, `build of ${branch.name}`, () =>
    buildLocked(ctx, branch, options),
  );
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
  const previous = previousRevisions(state, branch);
  state.nextId = id + 1;
  state.forcePending = false;
  const run = await RecordedRun.begin(ctx, branch.name, state, {
    id,
    kind: 'build',
    logFile: ctx.store.logFile(branch.name, id),
    forced,
    revisions,
  });
  await noteRedone(ctx.store, branch.name, state, id);
  const log = ctx.log.child({ branch: branch.name, build: id });

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
  const startedAt = run.startedAt.toISOString();

  log.info(
    { revisions: Object.fromEntries(revisionReports.map((r) => [r.source, r.short])), forced },
    'build started',
  );
  void ctx.notify(
    {
      ...base,
      build: { id, startedAt, steps: [], logTail: [], logUrl, forced },
      commits: [],
    },
    ['started'],
  );
  run.writer.line(
    `stagepost build ${branch.name}#${id} started ${startedAt}${forced ? ' (forced)' : ''}`,
  );
  for (const r of revisionReports)
    run.writer.line(
      `    ${r.source}: ${r.short}${r.previous && r.previous !== r.revision ? ` (was ${r.previousShort})` : ''}`,
    );

  const b: BuildInProgress = {
    ctx,
    branch,
    run,
    revisions,
    previous,
    creating: false,
    create: options.create === true,
    env: stepEnvironment(ctx.config, branch, { id, revisions, previous }),
    reports: [],
    result: 'success',
    commits: [],
  };
  try {
    b.creating = !existsSync(branch.dir);
    if (b.creating) {
      run.writer.line(`==> create: ${branch.dir} does not exist; checking out sources`);
      await fs.mkdir(branch.dir, { recursive: true });
    }
    await runPhases(b);
  } catch (err) {
    run.writer.line(`build error: ${errorMessage(err)}`);
    if (b.result === 'success') {
      b.result = ctx.signal?.aborted ? 'interrupted' : 'failure';
      b.failedStep ??= 'stagepost';
    }
  }

  if (ctx.signal?.aborted && b.result !== 'success') b.result = 'interrupted';
  const { result, failedStep, reports, commits } = b;
  run.writer.line(
    `stagepost build ${branch.name}#${id}: ${result}${failedStep ? ` at ${failedStep}` : ''} in ${formatDuration(Date.now() - run.startedAt.getTime())}`,
  );
  const durationMs = await run.end();

  const buildRecord: BuildRecord = {
    id,
    kind: 'build',
    result,
    startedAt,
    durationMs,
    forced,
    failedStep,
    steps: reports,
    revisions,
  };
  const previousResult = state.builds.find((r) => r.result !== 'interrupted')?.result ?? null;
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

  const events = buildEvents(result, previousResult);
  const logTail = events.length > 0 && result !== 'success' ? tailLines(run.logFile, 100) : [];
  const notification: Omit<BuildNotification, 'events'> = {
    ...base,
    build: {
      id,
      result,
      startedAt,
      durationMs,
      failedStep,
      steps: reports,
      logTail,
      logUrl,
      forced,
    },
    commits,
  };
  await run.record(events.length > 0 ? { notification, events } : undefined, (p) =>
    ctx.notify(p.notification as Omit<BuildNotification, 'events'>, p.events),
  );
  await ctx.store.pruneLogs(
    branch.name,
    state.builds.map((r) => r.id),
  );
  log.info({ result, failedStep, durationMs }, 'build finished');
  return { status: 'built', record: buildRecord };
}

/**
 * The revisions of the last finished build. An interrupted build is being
 * redone now: the previous one is the last that finished, and `attempted`
 * holds its revisions even once it left the history. No previous revision: a
 * first build, whose commits mail nobody.
 */
function previousRevisions(
  state: BranchState,
  branch: BranchConfig,
): Record<string, string | null> {
  const previous: Record<string, string | null> = {};
  for (const s of branch.sources)
    previous[s.name] =
      state.builds.find((r) => r.result !== 'interrupted' && r.revisions[s.name])?.revisions[
        s.name
      ] ??
      state.attempted[s.name] ??
      null;
  return previous;
}
