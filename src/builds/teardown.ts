import { existsSync } from 'node:fs';
import type { BranchConfig } from '../config/types.js';
import type { BuildRecord } from '../state/store.js';
import type { BuildContext } from './context.js';
import { RecordedRun, builtEnvironment, underBranchLock } from './recorded-run.js';

/**
 * A branch site that leaves: its `teardown` steps (stop the app server,
 * remove the directory...) run in the branch dir under the branch lock, so
 * after a running build, bounded by their timeouts and logged like any build
 * (`kind: teardown` in the branch's history, `log BRANCH N`). No steps, or no
 * directory: nothing to do, null.
 */
export async function runTeardown(
  ctx: BuildContext,
  branch: BranchConfig,
): Promise<BuildRecord | null> {
  const steps = branch.teardown ?? [];
  if (steps.length === 0 || !existsSync(branch.dir)) return null;
  return underBranchLock(ctx, branch.name, `teardown of ${branch.name}`, async () => {
    const state = ctx.store.readBranch(branch.name);
    const id = state.nextId;
    state.nextId = id + 1;
    const run = await RecordedRun.begin(ctx, branch.name, state, {
      id,
      kind: 'teardown',
      logFile: ctx.store.logFile(branch.name, id),
      forced: false,
      revisions: { ...state.built },
    });
    const startedAt = run.startedAt.toISOString();
    const log = ctx.log.child({ branch: branch.name, build: id });
    log.info({}, 'teardown started');
    run.writer.line(`stagepost teardown of ${branch.name}#${id} started ${startedAt}`);
    const outcome = await run.steps(steps, branch.dir, builtEnvironment(ctx, branch, state, id));
    const durationMs = await run.end();
    const record: BuildRecord = {
      id,
      kind: 'teardown',
      result: outcome.result,
      startedAt,
      durationMs,
      forced: false,
      failedStep: outcome.failedStep,
      steps: outcome.reports,
      revisions: { ...state.built },
    };
    state.builds.unshift(record);
    await run.record(undefined, () => undefined);
    log.info({ result: record.result, durationMs }, 'teardown finished');
    return record;
  });
}
