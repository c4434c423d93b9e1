import type { Daemon } from '../daemon/daemon.js';

/**
 * Resolves once every branch has finished a build (whatever its result), with
 * what there is when `timeoutMs` has passed, or with null once `stopped`
 * settles. The commit loop starts after the first builds, so they build the
 * sample app as it was made.
 */
export type FirstBuilds = Array<{ name: string; result: string }>;

export function waitForFirstBuilds(
  daemon: Daemon,
  timeoutMs: number,
  stopped: Promise<unknown>,
): Promise<FirstBuilds | null> {
  const summary = () =>
    daemon
      .status()
      .branches.map((b) => ({ name: b.name, result: b.lastBuild?.result ?? 'not built' }));
  const done = () => daemon.status().branches.every((b) => b.lastBuild?.result);
  return new Promise((resolve) => {
    let off = () => {};
    const finish = (value: FirstBuilds | null) => {
      clearTimeout(timer);
      off();
      resolve(value);
    };
    const timer = setTimeout(() => finish(summary()), timeoutMs);
    off = daemon.onChange(() => {
      if (done()) finish(summary());
    });
    void stopped.then(() => finish(null));
    if (done()) finish(summary());
  });
}
