/**
 * The cheap-poll promise as a count: however many branches use a repository,
 * one poll cycle starts exactly one git child per repository.
 */
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote, git } from '../helpers/git.js';
import { trackKey } from '../../src/poll/tracks.js';
import { branchConfig, countingPoller } from '../../bench/inprocess.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => { t = tempDir(); });
afterEach(() => t.cleanup());

test('3 git repositories used by 9 branches on 6 refs: 3 git children per pollNow()', async () => {
  const remotes = ['r0', 'r1', 'r2'].map((name) => {
    const remote = makeGitRemote(t.dir, name);
    const id = remote.commit('main');
    git(remote.bare, ['update-ref', 'refs/heads/feature', id]);
    return remote;
  });
  // Three branches per repository: two on main, one on feature.
  const branches = remotes.flatMap((r, i) => ['main', 'main', 'feature'].map((ref, j) =>
    branchConfig(`b${i}-${j}`, path.join(t.dir, 'sites', `b${i}-${j}`), [{ vcs: 'git', url: r.url, ref }])));
  const { poller, children } = await countingPoller(branches, path.join(t.dir, 'state'));
  expect(poller.groupCount()).toBe(3);

  for (let cycle = 1; cycle <= 3; cycle++) {
    await poller.pollNow();
    expect(children.length).toBe(3 * cycle);
  }
  expect(children.every((argv) => argv[1] === 'ls-remote')).toBe(true);
  expect(new Set(children.map((argv) => argv.find((a) => a.startsWith('file://')))).size).toBe(3);
  // Every branch got its answer from those three queries.
  const revisions = branches.map((b) => poller.revisionOf(trackKey(b.sources[0]!))?.revision);
  expect(revisions.every((r) => r && /^[0-9a-f]{40}$/.test(r))).toBe(true);
  poller.stop();
});
