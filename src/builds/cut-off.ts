/**
 * The log of a build cut off by kill -9 (or a crash) stops mid-sentence.
 * These lines end it: why it stopped, then which build redid it, so a
 * reader of `log BRANCH N` knows where to look next.
 */
import { existsSync, promises as fs } from 'node:fs';
import type { BranchState, StateStore } from '../state/store.js';

export async function noteCutOff(
  store: StateStore,
  branch: string,
  running: { id: number; kind: string; pid: number },
  endedGroups: number,
): Promise<void> {
  const next =
    running.kind === 'build'
      ? 'it is redone by the next build'
      : 'the job runs again at its next time';
  await appendIfLogged(
    store.logFile(branch, running.id),
    `==> cut off: stagepost (pid ${running.pid}) ended while this ran; ${endedGroups} process group(s) of it ended at restart; ${next}\n`,
  );
}

/** `id` is starting: when the last build before it was cut off, say in that log that `id` redid it. */
export async function noteRedone(
  store: StateStore,
  branch: string,
  state: BranchState,
  id: number,
): Promise<void> {
  const last = state.builds[0];
  if (!last || last.kind !== 'build' || last.result !== 'interrupted') return;
  await appendIfLogged(store.logFile(branch, last.id), `==> redone as build #${id}\n`);
}

async function appendIfLogged(file: string, line: string): Promise<void> {
  // No log: the build was cut off before it wrote one, so there is nothing to end.
  if (!existsSync(file)) return;
  await fs.appendFile(file, line).catch(() => undefined);
}
