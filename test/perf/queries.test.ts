/**
 * The cheap-poll promise as a count: however many branches use a repository,
 * one poll cycle starts exactly one git child per repository.
 */
import path from 'node:path';
import { jest } from '@jest/globals';
import { tempDir } from '../helpers/tmp.js';
import { isGitQuery, makeGitRemote, git } from '../helpers/git.js';
import { trackKey } from '../../src/poll/tracks.js';
import { alignedDelay } from '../../src/poll/poller.js';
import { branchConfig, countingPoller } from '../../bench/inprocess.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir();
});
afterEach(() => t.cleanup());

test('3 git repositories used by 9 branches on 6 refs: 3 git children per pollNow()', async () => {
  const remotes = ['r0', 'r1', 'r2'].map((name) => {
    const remote = makeGitRemote(t.dir, name);
    const id = remote.commit('main');
    git(remote.bare, ['update-ref', 'refs/heads/feature', id]);
    return remote;
  });
  // Three branches per repository: two on main, one on feature.
  const branches = remotes.flatMap((r, i) =>
    ['main', 'main', 'feature'].map((ref, j) =>
      branchConfig(`b${i}-${j}`, path.join(t.dir, 'sites', `b${i}-${j}`), [
        { vcs: 'git', url: r.url, ref },
      ]),
    ),
  );
  const { poller, children } = await countingPoller(branches, path.join(t.dir, 'state'));
  expect(poller.groupCount()).toBe(3);

  for (let cycle = 1; cycle <= 3; cycle++) {
    await poller.pollNow();
    expect(children.length).toBe(3 * cycle);
  }
  expect(children.every(isGitQuery)).toBe(true);
  // One child per repository, each for its own repository.
  expect(
    new Set(children.map((argv) => argv.find((a) => a.startsWith('/') || a.startsWith('file://'))))
      .size,
  ).toBe(3);
  // Every branch got its answer from those three queries.
  const revisions = branches.map((b) => poller.revisionOf(trackKey(b.sources[0]))?.revision);
  expect(revisions.every((r) => r && /^[0-9a-f]{40}$/.test(r))).toBe(true);
  poller.stop();
});

test('polls snap to a shared grid of a quarter interval, so repositories due together wake the daemon once', async () => {
  // The grid is a quarter of the interval, at most 250 ms; rounding keeps the mean interval.
  expect(alignedDelay(1_000_010, 1000, 60_000)).toBe(990);
  expect(alignedDelay(1_000_140, 1000, 60_000)).toBe(1110);
  expect(alignedDelay(1_000_000, 400, 400)).toBe(400);
  expect(alignedDelay(1_000_049, 400, 400)).toBe(351);
  expect(alignedDelay(1_000_000, 3, 400)).toBe(10);

  // Polls of three repositories that started at odd moments, on a fake
  // clock (the git children are real): every later query starts on a point
  // of the 100 ms grid. No wall-clock timing is asserted.
  jest.useFakeTimers({
    now: 1_000_000_007,
    doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate'],
  });
  try {
    const remotes = ['r0', 'r1', 'r2'].map((name) => {
      const r = makeGitRemote(t.dir, name);
      r.commit('main');
      return r;
    });
    const branches = remotes.map((r, i) =>
      branchConfig(
        `b${i}`,
        path.join(t.dir, 'sites', `b${i}`),
        [{ vcs: 'git', url: r.url, ref: 'main' }],
        400,
      ),
    );
    const { poller, children } = await countingPoller(branches, path.join(t.dir, 'state'));
    const started: number[] = [];
    const count = children.push.bind(children);
    children.push = (...argv) => {
      started.push(Date.now());
      return count(...argv);
    };
    for (let n = 1; n <= 3; n++) {
      await poller.setBranches(branches.slice(0, n));
      await poller.idle();
      jest.advanceTimersByTime(130);
      await poller.idle();
    }
    // Small steps, each query awaited: no query sees its timeout pass.
    while (started.length < 3 + 18) {
      jest.advanceTimersByTime(10);
      await poller.idle();
    }
    poller.stop();
    // Only the first polls of the repositories that appeared later (b1 at
    // +130 ms, b2 at +260 ms) are off the grid; b0 was known, so it waited.
    expect(started.filter((at) => at % 100 !== 0).map((at) => at % 100)).toEqual([37, 67]);
    expect(started.length).toBeGreaterThanOrEqual(21);
  } finally {
    jest.useRealTimers();
  }
});

test("a repository's sources reach the plugin as the same array every cycle, and a new one only when they change", async () => {
  const remote = makeGitRemote(t.dir);
  const id = remote.commit('main');
  git(remote.bare, ['update-ref', 'refs/heads/feature', id]);
  const config = (refs: string[]) =>
    refs.map((ref, i) =>
      branchConfig(`b${i}`, path.join(t.dir, 'sites', `b${i}`), [
        { vcs: 'git', url: remote.url, ref },
      ]),
    );
  const { poller, plugins } = await countingPoller(config(['main']), path.join(t.dir, 'state'));
  const seen: unknown[] = [];
  const plugin = plugins.git;
  const ask = plugin.remoteRevisions.bind(plugin);
  plugin.remoteRevisions = (sources, query) => {
    seen.push(sources);
    return ask(sources, query);
  };

  await poller.pollNow();
  await poller.pollNow();
  // A reload with the same sources (new objects, same content) keeps the array.
  await poller.setBranches(config(['main']), false);
  await poller.pollNow();
  expect(new Set(seen).size).toBe(1);
  await poller.setBranches(config(['main', 'feature']), false);
  await poller.pollNow();
  expect(new Set(seen).size).toBe(2);
  expect((seen[3] as Array<{ ref: string }>).map((s) => s.ref)).toEqual(['main', 'feature']);
  expect(poller.revisionOf(trackKey(config(['main', 'feature'])[1].sources[0]))?.revision).toBe(id);
  poller.stop();
});
