import { writeFileSync } from 'node:fs';
import { StateStore } from '../../src/state/store.js';
import { addJobRun, trimBuilds } from '../../src/state/history.js';
import type { BuildRecord } from '../../src/state/store.js';
import { recoverInterrupted } from '../../src/builds/recover.js';
import { memoryLogger } from '../../src/log.js';
import { tempDir } from '../helpers/tmp.js';

const run = (id: number, result: BuildRecord['result'], kind = 'build'): BuildRecord => ({
  id,
  kind,
  result,
  startedAt: new Date(Date.UTC(2026, 0, 1, 0, id)).toISOString(),
  durationMs: 1000,
  forced: false,
  steps: [],
  revisions: {},
});

test('keep trims builds but never the last build nor the last successful one', () => {
  const builds = [run(5, 'failure'), run(4, 'interrupted'), run(3, 'failure'), run(2, 'success')];
  expect(trimBuilds(builds, 2).map((b) => b.id)).toEqual([5, 4, 2]);
  expect(trimBuilds(builds, 0).map((b) => b.id)).toEqual([5, 2]);
  expect(trimBuilds([run(2, 'success'), run(1, 'success')], 1).map((b) => b.id)).toEqual([2]);
  expect(trimBuilds([run(2, 'failure'), run(1, 'failure')], 1).map((b) => b.id)).toEqual([2]);
});

test('each job keeps its own runs, numbered apart from builds', () => {
  const t = tempDir();
  try {
    const store = new StateStore(t.dir);
    const state = store.readBranch('b1');
    state.builds = [run(1, 'success')];
    for (let i = 1; i <= 5; i++) addJobRun(state, 'sync', run(i, 'success', 'job:sync'), 3);
    expect(addJobRun(state, 'other', run(1, 'failure', 'job:other'), 3)).toEqual([1]);
    expect(state.jobs.sync.runs.map((r) => r.id)).toEqual([5, 4, 3]);
    expect(state.builds.map((b) => b.id)).toEqual([1]);
  } finally {
    t.cleanup();
  }
});

test('a state file from before separate job histories moves job runs out of the builds', async () => {
  const t = tempDir();
  try {
    const store = new StateStore(t.dir);
    await store.init();
    writeFileSync(
      store.branchFile('b1'),
      JSON.stringify({
        attempted: {},
        built: {},
        subjects: {},
        nextId: 8,
        builds: [run(7, 'success', 'job:sync'), run(6, 'failure', 'job:sync'), run(5, 'success')],
        running: null,
      }),
    );
    const state = store.readBranch('b1');
    expect(state.builds.map((b) => b.id)).toEqual([5]);
    expect(state.jobs.sync.runs.map((r) => r.id)).toEqual([7, 6]);
    expect(state.jobs.sync.nextId).toBe(8);
  } finally {
    t.cleanup();
  }
});

test('a job run cut off by a crash is recorded interrupted in its job, not among the builds', async () => {
  const t = tempDir();
  try {
    const store = new StateStore(t.dir);
    await store.init();
    const state = store.readBranch('b1');
    state.builds = [run(3, 'success')];
    state.jobs.sync = { nextId: 8, runs: [run(6, 'success', 'job:sync')] };
    state.running = {
      id: 7,
      kind: 'job:sync',
      startedAt: new Date().toISOString(),
      forced: false,
      revisions: {},
      pgids: [],
      pid: 999_999_999,
    };
    await store.writeBranch('b1', state);
    expect(await recoverInterrupted(store, ['b1'], memoryLogger())).toEqual(['b1']);
    const after = store.readBranch('b1');
    expect(after.builds.map((b) => b.id)).toEqual([3]);
    expect(after.jobs.sync.runs.map((r) => [r.id, r.result])).toEqual([
      [7, 'interrupted'],
      [6, 'success'],
    ]);
    expect(after.running).toBeNull();
  } finally {
    t.cleanup();
  }
});
