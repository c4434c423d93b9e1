/**
 * No input from disk stops the daemon (issue 16, point 1): every state file
 * truncated, filled with garbage or given wrong types is moved aside and the
 * part it held starts afresh; one that cannot be read throws ESTATE.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { StateStore, emptyBranchState, type StateDamage } from '../../src/state/store.js';
import { FileLock, readLock } from '../../src/state/lock.js';
import { tempDir } from '../helpers/tmp.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir('stagepost-damage-');
});
afterEach(() => t.cleanup());

const validPoll = JSON.stringify({
  version: 1,
  tracks: { 'git|file:///r|main': { revision: 'abc', changedAt: '2026-01-01T00:00:00Z' } },
});
const validBranch = JSON.stringify({
  ...emptyBranchState(),
  nextId: 3,
  builds: [
    {
      id: 2,
      kind: 'build',
      result: 'success',
      startedAt: '2026-01-01T00:00:00Z',
      durationMs: 5,
      forced: false,
      steps: [{ name: 'a', result: 'success', durationMs: 1 }],
      revisions: { app: 'abc' },
    },
  ],
});

/** Each kind of damage: truncation, garbage, wrong types at several depths. */
const pollDamage: Record<string, string> = {
  empty: '',
  truncated: validPoll.slice(0, validPoll.length / 2),
  garbage: '\u0000\u00ff\u0001binary',
  'tracks is a string': JSON.stringify({ version: 1, tracks: 'x' }),
  'tracks is null': JSON.stringify({ version: 1, tracks: null }),
  'a track is a number': JSON.stringify({ version: 1, tracks: { k: 5 } }),
  'revision is a number': JSON.stringify({
    version: 1,
    tracks: { k: { revision: 5, changedAt: 'x' } },
  }),
  'wrong version': JSON.stringify({ version: 2, tracks: {} }),
  'an array': '[]',
  null: 'null',
};
const branchDamage: Record<string, string> = {
  empty: '',
  truncated: validBranch.slice(0, validBranch.length - 7),
  garbage: 'not json at all {{{',
  'builds is a string': JSON.stringify({ ...emptyBranchState(), builds: 'x' }),
  'a build without id': JSON.stringify({
    ...emptyBranchState(),
    builds: [{ kind: 'build', result: 'success' }],
  }),
  'attempted holds a number': JSON.stringify({ ...emptyBranchState(), attempted: { app: 1 } }),
  'nextId is a string': JSON.stringify({ ...emptyBranchState(), nextId: '7' }),
  'running is a string': JSON.stringify({ ...emptyBranchState(), running: 'yes' }),
  'pgids hold strings': JSON.stringify({
    ...emptyBranchState(),
    running: {
      id: 1,
      kind: 'build',
      startedAt: 'x',
      forced: false,
      revisions: {},
      pgids: ['1'],
      pid: 1,
    },
  }),
  'a number': '42',
};

function storeWithDamage(): { store: StateStore; damage: StateDamage[] } {
  const damage: StateDamage[] = [];
  return { store: new StateStore(t.dir, { onDamage: (d) => damage.push(d) }), damage };
}

test.each(Object.entries(pollDamage))(
  'poll.json %s: moved aside to poll.json.corrupt-<time>, polled afresh, reported once',
  async (_name, text) => {
    const { store, damage } = storeWithDamage();
    await store.init();
    writeFileSync(store.pollFile, text);
    expect(store.readPoll()).toEqual({ version: 1, tracks: {} });
    expect(damage).toHaveLength(1);
    expect(damage[0].file).toBe(store.pollFile);
    expect(path.basename(damage[0].movedTo!)).toMatch(/^poll\.json\.corrupt-\d{4}-/);
    expect(readFileSync(damage[0].movedTo!, 'utf8')).toBe(text);
    expect(existsSync(store.pollFile)).toBe(false);
    // Read again: nothing more to report.
    store.readPoll();
    expect(damage).toHaveLength(1);
  },
);

test.each(Object.entries(branchDamage))(
  'branches/<name>.json %s: moved aside, fresh state numbered after the logs left behind',
  async (_name, text) => {
    const { store, damage } = storeWithDamage();
    await store.init();
    writeFileSync(store.branchFile('b1'), text);
    mkdirSync(path.join(store.logsDir, 'b1'), { recursive: true });
    writeFileSync(store.logFile('b1', 4), 'old log\n');
    const state = store.readBranch('b1');
    expect(state).toEqual({ ...emptyBranchState(), nextId: 5 });
    expect(damage.map((d) => d.file)).toEqual([store.branchFile('b1')]);
    expect(readdirSync(store.branchesDir).filter((n) => n.includes('.corrupt-'))).toHaveLength(1);
    // The next build writes a good file again.
    await store.writeBranch('b1', state);
    expect(store.readBranch('b1').nextId).toBe(5);
    expect(damage).toHaveLength(1);
  },
);

test('a reader that must not change the state (moveAside: false) reports the damage and leaves the file', async () => {
  const damage: StateDamage[] = [];
  const store = new StateStore(t.dir, { moveAside: false, onDamage: (d) => damage.push(d) });
  await new StateStore(t.dir).init();
  writeFileSync(store.branchFile('b1'), '{"builds": "x"}');
  expect(store.readBranch('b1')).toEqual(emptyBranchState());
  expect(damage).toEqual([
    {
      file: store.branchFile('b1'),
      movedTo: null,
      problem: expect.stringContaining('builds') as string,
    },
  ]);
  expect(readFileSync(store.branchFile('b1'), 'utf8')).toBe('{"builds": "x"}');
});

test('valid files read as written, with fields of a newer version kept', async () => {
  const { store, damage } = storeWithDamage();
  await store.init();
  writeFileSync(store.pollFile, validPoll);
  writeFileSync(
    store.branchFile('b1'),
    JSON.stringify({ ...JSON.parse(validBranch), futureField: 1 }),
  );
  expect(store.readPoll().tracks['git|file:///r|main'].revision).toBe('abc');
  expect(store.readBranch('b1')).toMatchObject({ nextId: 3, futureField: 1 });
  // An older file without the newer fields gets their defaults.
  writeFileSync(store.branchFile('b2'), JSON.stringify({ nextId: 2 }));
  expect(store.readBranch('b2')).toEqual({ ...emptyBranchState(), nextId: 2 });
  expect(damage).toEqual([]);
});

test('a state file that cannot be read at all (a directory in its place) throws ESTATE with what to check', async () => {
  const { store, damage } = storeWithDamage();
  await store.init();
  mkdirSync(store.branchFile('b1'));
  let caught: unknown;
  try {
    store.readBranch('b1');
  } catch (err) {
    caught = err;
  }
  expect(caught).toMatchObject({
    code: 'ESTATE',
    message: expect.stringContaining('cannot read') as string,
  });
  expect(damage).toEqual([]);
});

test.each([
  ['empty', ''],
  ['garbage', '\u0000garbage'],
  ['truncated', '{"pid": 12'],
  ['pid is a string', JSON.stringify({ pid: String(process.pid), purpose: 'x', since: 'y' })],
  ['pid is negative', JSON.stringify({ pid: -1, purpose: 'x', since: 'y' })],
])('a lock file %s is stale: taken over, not a wedged branch', async (_name, text) => {
  const file = path.join(t.dir, 'locks', 'b1.lock');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  expect(await readLock(file)).toBeNull();
  const lock = new FileLock(file, 'test');
  expect(await lock.tryAcquire()).toBeNull();
  expect((JSON.parse(readFileSync(file, 'utf8')) as { pid: number }).pid).toBe(process.pid);
  await lock.release();
});

test('a lock whose release failed is taken over by its own process, while one held here is not', async () => {
  const dir = path.join(t.dir, 'locks');
  const file = path.join(dir, 'b1.lock');
  const first = new FileLock(file, 'build');
  expect(await first.tryAcquire()).toBeNull();
  // Held here: another run of the same process waits for it.
  expect(await new FileLock(file, 'job').tryAcquire()).toMatchObject({ pid: process.pid });

  // The release meets a real fault (locks/ is a plain file), then the fault goes away.
  renameSync(dir, `${dir}.aside`);
  writeFileSync(dir, 'in the way');
  await expect(first.release()).rejects.toThrow();
  rmSync(dir);
  renameSync(`${dir}.aside`, dir);
  expect(await readLock(file)).toMatchObject({ pid: process.pid });

  const next = new FileLock(file, 'build');
  expect(await next.tryAcquire()).toBeNull();
  expect((JSON.parse(readFileSync(file, 'utf8')) as { purpose: string }).purpose).toBe('build');
  await next.release();
  expect(existsSync(file)).toBe(false);
});
