import path from 'node:path';
import { freePort } from '../test/plugins/vcs-helpers.js';
import { isBuildFinished, isBuildStarted } from '../test/helpers/cli.js';
import { writeBuiltState, writeConfig, type BenchBranch } from './fixtures.js';
import { startDaemon, stopDaemon, postPoll } from './daemon.js';
import { sleep } from './proc.js';

/**
 * Commit-to-build-start latency: push a commit, then time until the daemon's
 * JSON log says `build started` for that branch (its own timestamp). With the
 * hook, the push is followed at once by POST /api/poll.
 */
export async function measureLatency(
  dir: string,
  branches: BenchBranch[],
  o: { mode: 'poll' | 'hook'; interval: string; samples: number },
): Promise<number[]> {
  const port = await freePort();
  const token = 'bench-token';
  const file = writeConfig(dir, branches, { interval: o.interval, http: { port, token } });
  await writeBuiltState(path.dirname(file), branches);
  const daemon = await startDaemon(file);
  const latencies: number[] = [];
  try {
    await sleep(500);
    for (let k = 0; k < o.samples; k++) {
      // A branch in another repository each time, committed at a random phase of the interval.
      const branch = branches[(k * 7) % branches.length];
      const startedBefore = daemon.count(isBuildStarted(branch.name));
      const finishedBefore = daemon.count(isBuildFinished(branch.name));
      await sleep(Math.random() * 1000);
      branch.remote!.commit(branch.source.ref!);
      const pushed = Date.now();
      if (o.mode === 'hook') await postPoll(port, token);
      const started = await daemon.waitFor(isBuildStarted(branch.name), {
        count: startedBefore + 1,
        timeoutMs: 60_000,
        what: `build of ${branch.name}`,
      });
      latencies.push(Date.parse(String(started.at(-1)!.time)) - pushed);
      await daemon.waitFor(isBuildFinished(branch.name), {
        count: finishedBefore + 1,
        timeoutMs: 60_000,
        what: `build of ${branch.name} to finish`,
      });
    }
  } finally {
    await stopDaemon(daemon);
  }
  return latencies;
}
