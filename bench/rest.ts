import path from 'node:path';
import { freePort } from '../test/plugins/vcs-helpers.js';
import { isBuildStarted } from '../test/helpers/cli.js';
import { writeBuiltState, writeConfig, type BenchBranch } from './fixtures.js';
import { startDaemon, stopDaemon, remoteQueries } from './daemon.js';
import { cpuOf, rssOf, sleep } from './proc.js';

/**
 * The daemon at rest: every branch built, nothing changing, a short interval.
 * Its own CPU (and with its children) over a window, per remote query and per
 * cycle, and its resident memory over the window.
 */
export interface RestFigures {
  branches: number;
  windowMs: number;
  intervalMs: number;
  queries: number;
  /** Cycles in the window (window / interval). */
  cycles: number;
  /** The daemon process alone. */
  selfMs: number;
  /** The daemon and every descendant (git, svn, sh, ssh). */
  withChildrenMs: number;
  rss: number[];
  buildsStarted: number;
}

export async function measureAtRest(
  dir: string,
  branches: BenchBranch[],
  o: { intervalMs: number; settleMs: number; windowMs: number; env?: NodeJS.ProcessEnv },
): Promise<RestFigures> {
  const port = await freePort();
  const file = writeConfig(dir, branches, {
    interval: `${o.intervalMs}ms`,
    http: { port, token: 'bench-token' },
  });
  await writeBuiltState(path.dirname(file), branches);
  const daemon = await startDaemon(file, o.env);
  try {
    const pid = daemon.child.pid!;
    await sleep(o.settleMs);
    const q0 = await remoteQueries(port);
    const cpu0 = cpuOf(pid);
    const rss = [rssOf(pid)];
    const seconds = Math.round(o.windowMs / 1000);
    for (let s = 0; s < seconds; s++) {
      await sleep(1000);
      rss.push(rssOf(pid));
    }
    const cpu1 = cpuOf(pid);
    const q1 = await remoteQueries(port);
    return {
      branches: branches.length,
      windowMs: seconds * 1000,
      intervalMs: o.intervalMs,
      queries: q1 - q0,
      cycles: (seconds * 1000) / o.intervalMs,
      selfMs: cpu1.selfMs - cpu0.selfMs,
      withChildrenMs: cpu1.withChildrenMs - cpu0.withChildrenMs,
      rss,
      buildsStarted: daemon.count(isBuildStarted()),
    };
  } finally {
    await stopDaemon(daemon);
  }
}
