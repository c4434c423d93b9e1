/**
 * Stopping the Poller while queries wait for a free slot (more repositories
 * due at once than it asks in parallel): idle() must still resolve, since the
 * daemon's shutdown waits for it.
 */
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote } from '../helpers/git.js';
import { branchConfig, countingPoller } from '../../bench/inprocess.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir();
});
afterEach(() => t.cleanup());

test('stop() with queries queued behind the parallel limit: idle() resolves, and the queued ones ask nothing', async () => {
  // 12 repositories, 8 asked at once: 4 wait in the queue.
  const remotes = Array.from({ length: 12 }, (_, i) => {
    const r = makeGitRemote(t.dir, `r${i}`);
    r.commit('main');
    return r;
  });
  const branches = remotes.map((r, i) =>
    branchConfig(`b${i}`, path.join(t.dir, 'sites', `b${i}`), [
      { vcs: 'git', url: r.url, ref: 'main' },
    ]),
  );
  const { poller, children } = await countingPoller(branches, path.join(t.dir, 'state'));
  const polling = poller.pollNow();
  poller.stop();
  const outcome = await Promise.race([
    poller.idle().then(() => 'idle'),
    new Promise((resolve) => setTimeout(resolve, 10_000, 'still waiting after 10 s')),
  ]);
  expect(outcome).toBe('idle');
  await polling;
  expect(children.length).toBeLessThanOrEqual(8);
});
