import { existsSync } from 'node:fs';
import type { BranchConfig } from '../config/types.js';
import type { BuildRecord } from '../state/store.js';
import type { BuildContext } from './builder.js';
import { FileLock } from '../state/lock.js';
import { stepEnvironment } from '../site/urls.js';
import { LogWriter } from './log-writer.js';
import { runSteps } from './steps.js';

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
  const lock = new FileLock(ctx.store.lockFile(branch.name), `teardown of ${branch.name}`);
  await lock.acquire({ signal: ctx.signal, onWait: ctx.onLockWait });
  try {
    const state = ctx.store.readBranch(branch.name);
    const id = state.nextId;
    const kind = 'teardown';
    const startedAt = new Date();
    const log = ctx.log.child({ branch: branch.name, build: id });
    const writer = new LogWriter(ctx.store.logFile(branch.name, id), ctx.echo);
    state.nextId = id + 1;
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
    log.info({}, 'teardown started');
    writer.line(`stagepost teardown of ${branch.name}#${id} started ${startedAt.toISOString()}`);
    const previous = Object.fromEntries(
      branch.sources.map((s) => [s.name, state.built[s.name] ?? null]),
    );
    const writes: Promise<void>[] = [];
    const outcome = await runSteps(steps, {
      cwd: branch.dir,
      env: stepEnvironment(ctx.config, branch, { id, revisions: { ...state.built }, previous }),
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
    const record: BuildRecord = {
      id,
      kind,
      result: outcome.result,
      startedAt: startedAt.toISOString(),
      durationMs: Date.now() - startedAt.getTime(),
      forced: false,
      failedStep: outcome.failedStep,
      steps: outcome.reports,
      revisions: { ...state.built },
    };
    state.builds.unshift(record);
    state.running = null;
    await ctx.store.writeBranch(branch.name, state);
    log.info({ result: record.result, durationMs: record.durationMs }, 'teardown finished');
    return record;
  } finally {
    await lock.release();
  }
}
