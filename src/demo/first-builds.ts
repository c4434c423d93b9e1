import type { Daemon } from '../daemon/daemon.js';

/**
 * Resolves once every branch has finished a build (whatever its result), or
 * with what there is when `timeoutMs` has passed: the commit loop starts
 * after the first builds, so they build the sample app as it was made.
 */
export function waitForFirstBuilds(daemon: Daemon, timeoutMs: number): Promise<Array<{ name: string; result: string }>> {
  const summary = () => daemon.status().branches.map((b) => ({ name: b.name, result: b.lastBuild?.result ?? 'not built' }));
  const done = () => daemon.status().branches.every((b) => b.lastBuild?.result);
  return new Promise((resolve) => {
    const finish = () => { clearTimeout(timer); off(); resolve(summary()); };
    const timer = setTimeout(finish, timeoutMs);
    const off = daemon.onChange(() => { if (done()) finish(); });
    if (done()) finish();
  });
}
