import path from 'node:path';
import type { BranchConfig, StepConfig } from '../config/types.js';
import type { BuildResult, CommitReport, StepReport } from '../plugin-api.js';
import { errorMessage } from '../errors.js';
import { sourceSpec } from '../poll/tracks.js';
import { checkHealth, healthUrls } from '../site/health.js';
import type { BuildContext } from './context.js';
import type { RecordedRun } from './recorded-run.js';
import { guardCheckout } from './checkout-guard.js';
import { commitEmail } from './authors.js';

const COMMIT_LIMIT = 50;

/** A build while its phases run: what they read, and the result they add to. */
export interface BuildInProgress {
  ctx: BuildContext;
  branch: BranchConfig;
  run: RecordedRun;
  revisions: Record<string, string>;
  /** Revisions of the last finished build; null where there is none (a first build). */
  previous: Record<string, string | null>;
  /** The branch directory did not exist: the `create` steps run. */
  creating: boolean;
  /** `stagepost create`: the `create` steps run even if the directory exists. */
  create: boolean;
  env: Record<string, string>;
  reports: StepReport[];
  result: BuildResult;
  failedStep?: string;
  commits: CommitReport[];
}

interface Phase {
  name: string;
  /** Whether the phase applies to this build at all. */
  when?: (b: BuildInProgress) => boolean;
  run: (b: BuildInProgress) => Promise<void>;
}

/**
 * A build's phases, in order. Each adds its reports to the build; the first
 * that does not succeed ends it (the steps after a failed checkout would run
 * on the wrong code).
 */
export const BUILD_PHASES: readonly Phase[] = [
  { name: 'checkout', run: checkout },
  { name: 'create', when: (b) => b.creating || b.create, run: (b) => steps(b, b.branch.create) },
  { name: 'steps', run: (b) => steps(b, b.branch.steps) },
  {
    name: 'health',
    when: (b) => !!b.branch.health && b.branch.customers.length > 0,
    run: health,
  },
];

export async function runPhases(b: BuildInProgress): Promise<void> {
  for (const phase of BUILD_PHASES) {
    if (b.result !== 'success') return;
    if (phase.when && !phase.when(b)) continue;
    await phase.run(b);
  }
}

/** Record one phase's report; the first failure names the failed step. */
function report(
  b: BuildInProgress,
  name: string,
  result: BuildResult,
  started: number,
  reason?: string,
): void {
  b.reports.push({ name, result, durationMs: Date.now() - started, reason });
  if (result !== 'success' && b.result === 'success') {
    b.result = result;
    b.failedStep = name;
  }
}

const failing = (b: BuildInProgress): BuildResult =>
  b.ctx.signal?.aborted ? 'interrupted' : 'failure';

/** Each source to its revision, bounded as a whole and ended when it stops making progress. */
async function checkout(b: BuildInProgress): Promise<void> {
  const { ctx, branch, run, revisions, previous } = b;
  run.progress('checkout');
  const started = Date.now();
  const guard = guardCheckout({
    timeoutMs: ctx.config.checkoutTimeoutMs,
    stallMs: ctx.config.checkoutStallMs,
    signal: ctx.signal,
  });
  try {
    for (const s of branch.sources) {
      const plugin = await ctx.vcs.get(s.vcs, { file: ctx.config.file, line: s.line });
      const dir = path.join(branch.dir, s.path);
      run.writer.line(
        `==> checkout ${s.name} → ${plugin.shortRevision(revisions[s.name])} in ${s.path}`,
      );
      guard.progress();
      await plugin.checkout(sourceSpec(s), revisions[s.name], {
        dir,
        timeoutMs: ctx.config.checkoutTimeoutMs,
        stallMs: ctx.config.checkoutStallMs,
        onOutput: (c) => {
          guard.progress();
          run.writer.output(c);
        },
        onSpawn: run.onSpawn,
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
          b.commits.push({
            ...c,
            source: s.name,
            email: inRange ? commitEmail(ctx.config, c) : undefined,
          });
      } catch (err) {
        run.writer.line(`(could not list commits of ${s.name}: ${errorMessage(err)})`);
      }
    }
    report(b, 'checkout', 'success', started);
  } catch (err) {
    // The guard's reason says more than the plugin's "aborted".
    const message = guard.reason() ?? errorMessage(err);
    run.writer.line(`checkout failed: ${message}`);
    report(b, 'checkout', failing(b), started, message);
  } finally {
    guard.dispose();
  }
}

async function steps(b: BuildInProgress, list: StepConfig[]): Promise<void> {
  if (list.length === 0) return;
  const outcome = await b.run.steps(list, b.branch.dir, b.env);
  b.reports.push(...outcome.reports);
  if (outcome.result !== 'success') {
    b.result = outcome.result;
    b.failedStep = outcome.failedStep;
  }
}

/** Every customer URL must answer as expected within the health timeout. */
async function health(b: BuildInProgress): Promise<void> {
  const { ctx, branch, run } = b;
  run.progress('health');
  const started = Date.now();
  const urls = healthUrls(ctx.config, branch);
  run.writer.line(`==> health: ${urls.join(' ')}`);
  const answer = await checkHealth({
    urls,
    expect: branch.health!.expect,
    timeoutMs: branch.health!.timeoutMs,
    signal: ctx.signal,
  });
  for (const r of answer.results)
    run.writer.line(
      `    ${r.url}: ${r.ok ? 'ok' : 'FAILED'} ${r.status ?? r.error ?? ''} (${r.attempts} attempt${r.attempts === 1 ? '' : 's'})`,
    );
  const bad = answer.results
    .filter((r) => !r.ok)
    .map((r) => `${r.url} → ${r.status ?? r.error}`)
    .join('; ');
  report(b, 'health', answer.ok ? 'success' : failing(b), started, answer.ok ? undefined : bad);
}
