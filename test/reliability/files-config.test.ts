/**
 * Disk, files and bad config against the real CLI and daemon: a state_dir
 * that cannot be made, a branch directory deleted by hand, a build log
 * directory that cannot be written, and ci.yaml broken in every usual way
 * (for `check`, and for a running daemon, which must never die of it).
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote } from '../helpers/git.js';
import { runCli, isBuildFinished } from '../helpers/cli.js';
import {
  Daemons,
  RECORD_STEPS,
  filesUnder,
  gitBranchYaml,
  lines,
  morePolls,
  writeCi,
} from './helpers.js';

let t: ReturnType<typeof tempDir>;
const daemons = new Daemons();
beforeEach(() => {
  t = tempDir('stagepost-files-');
});
afterEach(async () => {
  await daemons.killAll();
  t.cleanup();
});

test('a state_dir that cannot be created (under a regular file, which stops root too): clear error, exit 1, nothing touched', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  writeFileSync(path.join(t.dir, 'afile'), 'not a directory\n');
  const file = writeCi(
    t.dir,
    `${RECORD_STEPS}branches:\n${gitBranchYaml('b1', remote.url, 'main')}`,
  );
  writeFileSync(
    file,
    readFileSync(file, 'utf8').replace('state_dir: ./state', 'state_dir: ./afile/state'),
  );
  for (const args of [['run'], ['update', 'b1'], ['poll']]) {
    const r = await runCli([...args, '--config', file], { timeoutMs: 20_000 });
    expect({ args, code: r.code }).toEqual({ args, code: 1 });
    expect(r.stderr).toMatch(
      /state_dir .*afile\/state is not writable: .*(ENOTDIR|not a directory)/i,
    );
    expect(r.stderr).toMatch(/set state_dir in ci\.yaml|fix its permissions/);
  }
  expect(readFileSync(path.join(t.dir, 'afile'), 'utf8')).toBe('not a directory\n');
  expect(existsSync(path.join(t.dir, 'sites/b1'))).toBe(false);
});

test('a build log directory that cannot be written stops that build (logged, state untouched), not the daemon; other branches build', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  remote.commit('other');
  const file = writeCi(
    t.dir,
    `${RECORD_STEPS}branches:\n${gitBranchYaml('b1', remote.url, 'main')}${gitBranchYaml('b2', remote.url, 'other')}`,
  );
  const d = daemons.start(file);
  await d.waitFor(isBuildFinished(), { count: 2 });
  // The branch's log directory replaced by a file: no log can be written there.
  rmSync(path.join(t.dir, 'state/logs/b1'), { recursive: true });
  writeFileSync(path.join(t.dir, 'state/logs/b1'), 'in the way\n');
  remote.commit('main');
  const other = remote.commit('other');
  await d.waitFor(isBuildFinished('b2'), { count: 2, what: 'the other branch builds' });
  expect(lines(path.join(t.dir, 'sites/b2/builds.txt'))[1]).toBe(`2 ${other}`);
  // Not recorded as a build (there is no log to record it in): an error naming
  // the path, and tried again with backoff (issue 16, point 3).
  const [refused] = await d.waitFor(
    (e) => e.msg === 'build could not start; trying again' && e.branch === 'b1',
    { what: 'the b1 build refused' },
  );
  expect(JSON.stringify(refused.error)).toContain('state/logs/b1');
  await morePolls(d, 3);
  expect(d.child.exitCode).toBeNull();
  // The branch state is untouched: no half-recorded build, nothing left `running`.
  expect(
    JSON.parse(readFileSync(path.join(t.dir, 'state/branches/b1.json'), 'utf8')),
  ).toMatchObject({ nextId: 2, running: null, builds: [{ id: 1, result: 'success' }] });
  const status = await runCli(['status', '--json', '--config', file]);
  expect(status.code).toBe(0);
  expect(JSON.parse(status.stdout).branches.map((b: { name: string }) => b.name)).toEqual([
    'b1',
    'b2',
  ]);
});

test('a branch directory deleted by hand is made again (create steps too) by the next commit and by update --force', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const file = writeCi(
    t.dir,
    `${RECORD_STEPS}create:
  - name: bootstrap
    run: 'echo "created in $STAGEPOST_BUILD" >> created.txt'
branches:
${gitBranchYaml('b1', remote.url, 'main')}`,
  );
  const dir = path.join(t.dir, 'sites/b1');
  const d = daemons.start(file);
  await d.waitFor(isBuildFinished('b1'));
  rmSync(dir, { recursive: true, force: true });
  const r2 = remote.commit('main');
  const done = await d.waitFor(isBuildFinished('b1'), {
    count: 2,
    what: 'the build after the deletion',
  });
  expect(done[1].result).toBe('success');
  expect(lines(path.join(dir, 'builds.txt'))).toEqual([`2 ${r2}`]);
  expect(lines(path.join(dir, 'created.txt'))).toEqual(['created in 2']);
  expect(existsSync(path.join(dir, 'src/app/.git'))).toBe(true);
  expect(await d.stop()).toBe(0);

  rmSync(dir, { recursive: true, force: true });
  const forced = await runCli(['update', 'b1', '--force', '--config', file]);
  expect(forced.code).toBe(0);
  expect(lines(path.join(dir, 'builds.txt'))).toEqual([`3 ${r2}`]);
  expect(lines(path.join(dir, 'created.txt'))).toEqual(['created in 3']);
});

/** Each broken ci.yaml with the line `check` must name. */
function brokenConfigs(
  url: string,
): Array<{ name: string; text: string; line: number; says: RegExp }> {
  const head = 'version: 1\nstate_dir: ./state\n';
  const branch = (name: string) =>
    `branches:\n  ${name}:\n    dir: ./sites/x\n    sources:\n      - { name: app, vcs: git, url: "${url}", ref: main, path: src/app }\n`;
  return [
    // The parser notices the unclosed flow map on the line after it opens.
    {
      name: 'broken YAML',
      text: `${head}poll: { interval: 10s\n${branch('b1')}`,
      line: 4,
      says: /YAML|flow|unexpected|missing/i,
    },
    {
      name: 'wrong type',
      text: `${head}builds:\n  concurrency: many\n${branch('b1')}`,
      line: 4,
      says: /concurrency/,
    },
    {
      name: 'unknown key',
      text: `${head}pol:\n  interval: 10s\n${branch('b1')}`,
      line: 3,
      says: /pol/,
    },
    {
      name: 'path traversal in a branch name',
      text: `${head}${branch('../evil')}`,
      line: 4,
      says: /\.\.\/evil|\[a-z0-9\]/,
    },
    {
      name: 'a slash in a branch name',
      text: `${head}${branch('a/b')}`,
      line: 4,
      says: /a\/b|\[a-z0-9\]/,
    },
  ];
}

test('check: broken YAML, wrong types, unknown keys, path traversal, a missing file — exit 2 with file and line', async () => {
  const file = path.join(t.dir, 'ci.yaml');
  for (const c of brokenConfigs('file:///nowhere.git')) {
    writeFileSync(file, c.text);
    const r = await runCli(['check', '--config', file]);
    expect({ name: c.name, code: r.code }).toEqual({ name: c.name, code: 2 });
    expect({ name: c.name, stderr: r.stderr }).toEqual({
      name: c.name,
      stderr: expect.stringContaining(`${file}:${c.line}`),
    });
    expect({ name: c.name, stderr: r.stderr }).toEqual({
      name: c.name,
      stderr: expect.stringMatching(c.says),
    });
  }
  const missing = await runCli(['check', '--config', path.join(t.dir, 'nothere.yaml')]);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain(path.join(t.dir, 'nothere.yaml'));
  // Nothing was made for the traversal attempt, here or above.
  expect(existsSync(path.join(t.dir, 'evil'))).toBe(false);
  expect(existsSync(path.join(path.dirname(t.dir), 'evil'))).toBe(false);
});

test('a running daemon survives every bad edit and SIGHUP of ci.yaml: same pid, still building, then takes the good one', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const file = writeCi(
    t.dir,
    `${RECORD_STEPS}branches:\n${gitBranchYaml('b1', remote.url, 'main')}`,
  );
  const good = readFileSync(file, 'utf8');
  const d = daemons.start(file);
  await d.waitFor(isBuildFinished('b1'));
  const pid = d.child.pid;
  const rejected = (e: { msg: string }) =>
    e.msg === 'ci.yaml edit rejected; keeping the last good config';
  const bad = [
    ...brokenConfigs(remote.url).map((c) => c.text),
    '\u0000\u0001 garbage \uffff: : :\n\t- [',
    '',
  ];
  let n = 0;
  for (const text of bad) {
    n += 1;
    writeFileSync(file, text);
    if (n % 2 === 0) d.child.kill('SIGHUP');
    await d.waitFor(rejected, { count: n, what: `rejection ${n}` });
    const rev = remote.commit('main');
    await d.waitFor(isBuildFinished('b1'), {
      count: n + 1,
      what: `a build under the last good config after bad edit ${n}`,
    });
    expect(lines(path.join(t.dir, 'sites/b1/builds.txt')).pop()).toBe(`${n + 1} ${rev}`);
  }
  expect(d.child.pid).toBe(pid);
  expect(d.child.exitCode).toBeNull();
  // Nothing was made for the traversal attempts.
  expect(filesUnder(path.join(t.dir, 'state/branches')).map((f) => path.basename(f))).toEqual([
    'b1.json',
  ]);
  expect(existsSync(path.join(t.dir, 'evil'))).toBe(false);

  writeFileSync(file, good.replace('$STAGEPOST_REV_APP"', '$STAGEPOST_REV_APP good-again"'));
  await d.waitFor((e) => e.msg === 'ci.yaml reloaded', { what: 'the good config back' });
  const rev = remote.commit('main');
  await d.waitFor(isBuildFinished('b1'), { count: n + 2 });
  expect(lines(path.join(t.dir, 'sites/b1/builds.txt')).pop()).toBe(`${n + 2} ${rev} good-again`);
  expect(await d.stop()).toBe(0);
});
