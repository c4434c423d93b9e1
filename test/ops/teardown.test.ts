/**
 * `teardown` steps: run when a branch leaves ci.yaml (global, or the
 * branch's own), bounded and logged like other steps, and by hand with
 * `stagepost teardown BRANCH`. Real git, the real daemon and CLI.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote, gitBranchYaml, type GitRemote } from '../helpers/git.js';
import { DaemonProcess, isBuildFinished, runCli } from '../helpers/cli.js';
import { StateStore } from '../../src/state/store.js';

let t: ReturnType<typeof tempDir>;
let remote: GitRemote;
let daemon: DaemonProcess | null = null;
beforeEach(() => {
  t = tempDir();
  remote = makeGitRemote(t.dir);
  remote.commit('main');
});
afterEach(async () => {
  await daemon?.kill9();
  daemon = null;
  t.cleanup();
});

const TEARDOWN = `teardown:
  - name: stop
    run: 'echo "stopping $STAGEPOST_BRANCH"; touch "../../torn-$STAGEPOST_BRANCH"'
`;

function writeConfig(file: string, branches: string[]): void {
  const own = `    teardown: [{ name: own, run: 'touch ../../own-b2', timeout: 10s }]\n`;
  const yaml = `version: 1
state_dir: ./state
poll: { interval: 100ms, timeout: 5s }
steps: [{ name: noop, run: "true" }]
${TEARDOWN}branches:
${branches.map((b) => gitBranchYaml(b, remote.url, 'main', b === 'b2' ? own : '')).join('')}`;
  writeFileSync(`${file}.tmp`, yaml);
  renameSync(`${file}.tmp`, file);
}

test('a branch removed from ci.yaml runs its teardown steps, logged in its history', async () => {
  const file = path.join(t.dir, 'ci.yaml');
  writeConfig(file, ['b1', 'b2', 'b3']);
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildFinished(), { count: 3, what: 'three first builds' });

  writeConfig(file, ['b3']);
  const done = await daemon.waitFor((e) => e.msg === 'teardown finished', {
    count: 2,
    what: 'two teardowns',
  });
  expect(done.map((e) => [e.branch, e.result]).sort()).toEqual([
    ['b1', 'success'],
    ['b2', 'success'],
  ]);
  // b1 got the global steps, b2 its own.
  expect(existsSync(path.join(t.dir, 'torn-b1'))).toBe(true);
  expect(existsSync(path.join(t.dir, 'own-b2'))).toBe(true);
  expect(existsSync(path.join(t.dir, 'torn-b2'))).toBe(false);
  expect(existsSync(path.join(t.dir, 'torn-b3'))).toBe(false);

  const store = new StateStore(path.join(t.dir, 'state'));
  const [last] = store.readBranch('b1').builds;
  expect(last).toMatchObject({ kind: 'teardown', result: 'success' });
  expect(last.steps.map((s) => [s.name, s.result])).toEqual([['stop', 'success']]);
  const log = readFileSync(store.logFile('b1', last.id), 'utf8');
  expect(log).toMatch(/==> stop: echo/);
  expect(log).toMatch(/^stopping b1$/m);
});

test('a branch removed without teardown steps is logged as left running', async () => {
  const file = path.join(t.dir, 'ci.yaml');
  const plain = (names: string[]) =>
    `version: 1\nstate_dir: ./state\npoll: { interval: 100ms, timeout: 5s }\nsteps: [{ name: noop, run: "true" }]\nbranches:\n${names.map((b) => gitBranchYaml(b, remote.url, 'main')).join('')}`;
  writeFileSync(file, plain(['b1', 'b3']));
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildFinished(), { count: 2, what: 'two first builds' });
  writeFileSync(`${file}.tmp`, plain(['b3']));
  renameSync(`${file}.tmp`, file);
  const [left] = await daemon.waitFor((e) => e.msg.startsWith('branch removed'), {
    what: 'the removal',
  });
  expect(left).toMatchObject({
    branch: 'b1',
    msg: 'branch removed; no teardown steps, so its directory and any server it started stay',
  });
});

test('stagepost teardown BRANCH runs the steps by hand; a hung step is ended at its timeout', async () => {
  const file = path.join(t.dir, 'ci.yaml');
  writeConfig(file, ['b1', 'b2']);
  expect((await runCli(['update', 'b1', 'b2', '--config', file])).code).toBe(0);

  const r = await runCli(['teardown', 'b1', '--config', file]);
  expect(r.stdout).toMatch(/^stopping b1$/m);
  expect(r.stdout).toMatch(/^b1: teardown #2 success in /m);
  expect(r.code).toBe(0);
  expect(existsSync(path.join(t.dir, 'torn-b1'))).toBe(true);

  writeFileSync(
    file,
    readFileSync(file, 'utf8').replace(
      "'touch ../../own-b2', timeout: 10s",
      "'sleep 30', timeout: 300ms",
    ),
  );
  const started = Date.now();
  const hung = await runCli(['teardown', 'b2', '--config', file]);
  expect(Date.now() - started).toBeLessThan(20_000);
  expect(hung.stdout).toMatch(/^b2: teardown #2 timeout in .* \(failed step: own\)$/m);
  expect(hung.code).toBe(1);

  expect((await runCli(['teardown', 'nosuch', '--config', file])).code).toBe(2);
});
