import { readFileSync } from 'node:fs';
import type { Logger } from '../log.js';
import type { BranchState, BuildRecord, PendingNotification, StateStore } from '../state/store.js';
import { jobHistory, jobOfKind } from '../state/history.js';
import { groupAlive, terminateGroup } from '../util/exec.js';
import { readLock } from '../state/lock.js';
import { noteCutOff } from './cut-off.js';

/**
 * A build cut off by kill -9 (or a crash) left `running` in its branch state,
 * and maybe processes. Before anything builds again in that directory, end
 * those process groups, then record the build as interrupted so it is redone.
 * A build whose owner process is still alive (a foreground `update`) is left alone.
 */
export async function recoverInterrupted(
  store: StateStore,
  branches: string[],
  log: Logger,
): Promise<string[]> {
  const recovered: string[] = [];
  for (const branch of branches) {
    // One unreadable branch file must not stop the start (and loop under systemd).
    const state = readOrSkip(store, branch, log);
    if (!state) continue;
    const running = state.running;
    if (!running) continue;
    if (running.pid !== process.pid && (await readLock(store.lockFile(branch)))) continue;
    const ended: number[] = [];
    for (const pgid of running.pgids) {
      if (!groupAlive(pgid) || !belongsTo(pgid, branch)) continue;
      await terminateGroup(pgid, 5000);
      ended.push(pgid);
    }
    const record: BuildRecord = {
      id: running.id,
      kind: running.kind,
      result: 'interrupted',
      startedAt: running.startedAt,
      durationMs: Date.now() - Date.parse(running.startedAt),
      forced: running.forced,
      steps: [],
      revisions: running.revisions,
    };
    const job = jobOfKind(running.kind);
    if (job) jobHistory(state, job).runs.unshift(record);
    else state.builds.unshift(record);
    if (running.forced) state.forcePending = true;
    state.running = null;
    if (!(await writeOrLog(store, branch, state, log))) continue;
    await noteCutOff(store, branch, running, ended.length);
    log.warn(
      { branch, build: running.id, endedProcessGroups: ended },
      'build was cut off; its processes ended, it will be redone',
    );
    recovered.push(branch);
  }
  return recovered;
}

/**
 * Guard against a recycled pid: when /proc shows the group leader's
 * environment, it must be one of this branch's children. Checkout commands
 * (git, svn) carry no STAGEPOST_ variables, so an unreadable or unmarked
 * environment is taken as ours.
 */
function belongsTo(pgid: number, branch: string): boolean {
  try {
    const env = readFileSync(`/proc/${pgid}/environ`, 'utf8').split('\0');
    const mark = env.find((e) => e.startsWith('STAGEPOST_BRANCH='));
    return mark === undefined || mark === `STAGEPOST_BRANCH=${branch}`;
  } catch {
    return true;
  }
}

/**
 * A build or job recorded just before a crash may still hold its
 * notification (see recordWithNotification): send it now. Skips branches a
 * live process (a foreground `update`) is working on.
 */
export async function resendPendingNotifications(
  store: StateStore,
  branches: string[],
  send: (pending: PendingNotification) => Promise<void>,
  log: Logger,
): Promise<number> {
  let sent = 0;
  for (const branch of branches) {
    const state = readOrSkip(store, branch, log);
    if (!state?.pendingNotification) continue;
    const owner = await readLock(store.lockFile(branch));
    if (owner && owner.pid !== process.pid) continue;
    await send(state.pendingNotification);
    state.pendingNotification = undefined;
    if (!(await writeOrLog(store, branch, state, log))) continue;
    log.info({ branch }, 'sent the notification of a build recorded just before a crash');
    sent += 1;
  }
  return sent;
}

function readOrSkip(store: StateStore, branch: string, log: Logger): BranchState | null {
  try {
    return store.readBranch(branch);
  } catch (err) {
    log.error({ branch, error: err }, 'cannot read branch state; skipped at start');
    return null;
  }
}

/** A full state_dir at start is logged; the branch's next build writes its state again. */
async function writeOrLog(
  store: StateStore,
  branch: string,
  state: BranchState,
  log: Logger,
): Promise<boolean> {
  try {
    await store.writeBranch(branch, state);
    return true;
  } catch (err) {
    log.error({ branch, error: err }, 'cannot write branch state at start');
    return false;
  }
}
