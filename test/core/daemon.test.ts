/**
 * The core loop end to end: real git and svn repositories, the real CLI and
 * daemon as child processes, events awaited from its JSON log.
 */
import { existsSync, readFileSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { gitBranchYaml, makeGitRemote } from '../helpers/git.js';
import { makeSvnRemote } from '../helpers/svn.js';
import { hasTool, processAlive } from '../helpers/tools.js';
import { pidFromFile } from '../helpers/wait.js';
import {
  DaemonProcess,
  runCli,
  isBuildFinished,
  isBuildStarted,
  isPolled,
} from '../helpers/cli.js';

const haveSvn = hasTool('svnadmin');

function builds(dir: string): string[] {
  const file = path.join(dir, 'builds.txt');
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
}

const RECORD_STEP = `  - name: record
    run: 'echo "$STAGEPOST_BUILD $STAGEPOST_REV_APP prev=$STAGEPOST_PREV_REV_APP" >> builds.txt'`;

function config(root: string, branches: string, top = ''): string {
  const file = path.join(root, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
poll: { interval: 200ms, timeout: 5s }
builds: { concurrency: 2, step_timeout: 30s, shutdown_grace: 5s }
steps:
${RECORD_STEP}
${top}
branches:
${branches}`,
  );
  return file;
}

let t: ReturnType<typeof tempDir>;
let daemon: DaemonProcess | null = null;
beforeEach(() => {
  t = tempDir();
});
afterEach(async () => {
  await daemon?.kill9();
  daemon = null;
  t.cleanup();
});

test('new branches build themselves once, then nothing is built while nothing changes; a commit builds only its branch', async () => {
  const remote = makeGitRemote(t.dir);
  const a1 = remote.commit('main');
  const f1 = remote.commit('feature');
  const file = config(
    t.dir,
    gitBranchYaml('staging', remote.url, 'main') + gitBranchYaml('branch1', remote.url, 'feature'),
  );
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildFinished(), { count: 2, what: 'two first builds' });
  expect(builds(path.join(t.dir, 'sites/staging'))).toEqual([`1 ${a1} prev=`]);
  expect(builds(path.join(t.dir, 'sites/branch1'))).toEqual([`1 ${f1} prev=`]);
  // Both branches share one repository: one query per cycle, not two.
  const polledBefore = daemon.count((e) => e.msg === 'polled');
  await daemon.waitFor((e) => e.msg === 'polled', {
    count: polledBefore + 5,
    what: 'five more poll cycles',
  });
  expect(daemon.count(isBuildStarted())).toBe(2);
  expect(
    daemon.events
      .filter((e) => e.msg === 'polled')
      .every((e) => (e.branches as string[]).length === 2),
  ).toBe(true);

  const f2 = remote.commit('feature');
  await daemon.waitFor(isBuildFinished('branch1'), { count: 2, what: 'a build of the new commit' });
  expect(builds(path.join(t.dir, 'sites/branch1'))).toEqual([
    `1 ${f1} prev=`,
    `2 ${f2} prev=${f1}`,
  ]);
  const polledNow = daemon.count((e) => e.msg === 'polled');
  await daemon.waitFor((e) => e.msg === 'polled', { count: polledNow + 3 });
  expect(daemon.count(isBuildStarted('staging'))).toBe(1);
  expect(await daemon.stop()).toBe(0);
});

test('four commits during a build give exactly one more build, of the last', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const gate = path.join(t.dir, 'gate');
  const file = config(
    t.dir,
    gitBranchYaml(
      'b1',
      remote.url,
      'main',
      `    env: { pass: [GATE] }
    steps:
      - name: wait
        run: 'while [ ! -f "$GATE" ]; do sleep 0.05; done; echo "$STAGEPOST_BUILD $STAGEPOST_REV_APP" >> builds.txt'
`,
    ),
  );
  daemon = new DaemonProcess(file, { GATE: gate });
  await daemon.waitFor(isBuildStarted('b1'), { what: 'first build' });
  let last = '';
  for (let i = 0; i < 4; i++) {
    last = remote.commit('main');
    const seen = daemon.count((e) => e.msg === 'polled');
    await daemon.waitFor((e) => e.msg === 'polled', { count: seen + 2 });
  }
  writeFileSync(gate, '');
  await daemon.waitFor(isBuildFinished('b1'), { count: 2, what: 'the follow-up build' });
  const seen = daemon.count((e) => e.msg === 'polled');
  await daemon.waitFor((e) => e.msg === 'polled', { count: seen + 4 });
  const lines = builds(path.join(t.dir, 'sites/b1'));
  expect(lines).toHaveLength(2);
  expect(lines[1]).toBe(`2 ${last}`);
  expect(daemon.count(isBuildStarted('b1'))).toBe(2);
});

test('a failing revision is reported and not retried; update without --force builds nothing; status says failing', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main', 'broken', { file: 'fail', content: 'yes' });
  const file = config(
    t.dir,
    gitBranchYaml(
      'b1',
      remote.url,
      'main',
      `    steps:
      - name: compile
        run: 'test ! -f src/app/fail'
`,
    ),
  );
  daemon = new DaemonProcess(file);
  const [done] = await daemon.waitFor(isBuildFinished('b1'));
  expect(done.result).toBe('failure');
  expect(done.failedStep).toBe('compile');
  const seen = daemon.count((e) => e.msg === 'polled');
  await daemon.waitFor((e) => e.msg === 'polled', { count: seen + 5 });
  expect(daemon.count(isBuildStarted('b1'))).toBe(1);
  const status = await runCli(['status', '--json', '--config', file]);
  expect(status.code).toBe(0);
  const doc = JSON.parse(status.stdout);
  expect(doc.branches[0]).toMatchObject({
    name: 'b1',
    state: 'failing',
    lastBuild: { id: 1, result: 'failure' },
  });
  expect(doc.branches[0].lastPoll.error).toBeNull();
  await daemon.stop();
  daemon = null;

  const update = await runCli(['update', 'b1', '--config', file]);
  expect(update.code).toBe(0);
  expect(update.stderr).toMatch(/up to date/);
  const forced = await runCli(['update', 'b1', '--force', '--config', file]);
  expect(forced.code).toBe(1);
  expect(forced.stdout).toMatch(/==> compile/);
  expect(forced.stdout).toMatch(/b1\s+failure\s+#2/);
});

test('a hung remote is killed at its timeout while other branches go on', async () => {
  const remote = makeGitRemote(t.dir);
  const good = remote.commit('main');
  // An "ssh" that never answers, first on PATH for the daemon.
  const bin = path.join(t.dir, 'bin');
  mkdirSync(bin);
  writeFileSync(
    path.join(bin, 'ssh'),
    `#!/bin/sh\necho $$ >> "${path.join(t.dir, 'ssh.pids')}"\nexec sleep 60\n`,
  );
  chmodSync(path.join(bin, 'ssh'), 0o755);
  const file = config(
    t.dir,
    gitBranchYaml('good', remote.url, 'main') +
      `  hung:
    dir: ./sites/hung
    poll: { interval: 200ms, timeout: 700ms }
    sources:
      - { name: app, vcs: git, url: "ssh://git@127.0.0.1:1/never.git", ref: main, path: src/app }
`,
  );
  daemon = new DaemonProcess(file, { PATH: `${bin}:${process.env.PATH}` });
  await daemon.waitFor(isBuildFinished('good'), { what: 'the good branch builds' });
  expect(builds(path.join(t.dir, 'sites/good'))[0]).toContain(good);
  const [failing] = await daemon.waitFor((e) => e.msg === 'remote failing', {
    what: 'the hung remote reported',
  });
  expect(String(failing.error)).toMatch(/timed out|timeout/i);
  const next = remote.commit('main');
  await daemon.waitFor(isBuildFinished('good'), { count: 2, what: 'good keeps building' });
  expect(builds(path.join(t.dir, 'sites/good'))[1]).toContain(next);
  // A second failed query, so that several hung processes have been killed.
  await daemon.waitFor(
    (e) => e.msg === 'polled' && !!e.error && (e.branches as string[]).includes('hung'),
    { count: 2, what: 'a second failed query' },
  );
  // Reported when it started failing, not every cycle.
  expect(daemon.count((e) => e.msg === 'remote failing')).toBe(1);
  // Every "ssh" started was killed with its process group (the daemon waits
  // for the query in flight on shutdown, which its timeout bounds).
  expect(await daemon.stop()).toBe(0);
  const pids = readFileSync(path.join(t.dir, 'ssh.pids'), 'utf8').trim().split('\n').map(Number);
  expect(pids.length).toBeGreaterThan(1);
  const alive = pids.filter(processAlive);
  expect(alive).toEqual([]);
});

test('a hanging step is killed with its children and recorded as timeout', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const file = config(
    t.dir,
    gitBranchYaml(
      'b1',
      remote.url,
      'main',
      `    steps:
      - name: hang
        timeout: 1500ms
        run: 'sleep 60 & echo $! > child.pid; sleep 60'
`,
    ),
  );
  daemon = new DaemonProcess(file);
  const [done] = await daemon.waitFor(isBuildFinished('b1'));
  expect(done.result).toBe('timeout');
  const child = await pidFromFile(path.join(t.dir, 'sites/b1/child.pid'), 0);
  // The group was TERMed at the timeout and the build recorded after it ended.
  expect(processAlive(child)).toBe(false);
});

test('kill -9 during a build, then restart: the old step is ended and the build redone once', async () => {
  const remote = makeGitRemote(t.dir);
  const rev = remote.commit('main');
  const file = config(
    t.dir,
    gitBranchYaml(
      'b1',
      remote.url,
      'main',
      `    steps:
      - name: slow
        run: 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo $$ > pid.$n; if [ $n = 1 ]; then sleep 60; fi; echo "$STAGEPOST_BUILD $STAGEPOST_REV_APP prev=$STAGEPOST_PREV_REV_APP" >> builds.txt'
`,
    ),
  );
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildStarted('b1'));
  const dir = path.join(t.dir, 'sites/b1');
  // The step starts after the checkout: allow for a loaded machine (the whole suite in parallel).
  const oldPid = await pidFromFile(path.join(dir, 'pid.1'));
  await daemon.kill9();
  expect(processAlive(oldPid)).toBe(true); // the cut-off step outlived its daemon

  daemon = new DaemonProcess(file);
  const [done] = await daemon.waitFor(isBuildFinished('b1'), { what: 'the redone build' });
  expect(done.result).toBe('success');
  expect(processAlive(oldPid)).toBe(false);
  // The cut-off build does not count as "the last build": the redo is still a first build.
  expect(builds(dir)).toEqual([`2 ${rev} prev=`]);
  const seen = daemon.count((e) => e.msg === 'polled');
  await daemon.waitFor((e) => e.msg === 'polled', { count: seen + 3 });
  expect(daemon.count(isBuildStarted('b1'))).toBe(1);
  const status = JSON.parse((await runCli(['status', '--json', '--config', file])).stdout);
  expect(status.branches[0].lastBuild).toMatchObject({ id: 2, result: 'success' });
});

test('poll.quiet: a burst of commits builds once, after the revision stood still', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const file = config(
    t.dir,
    gitBranchYaml(
      'b1',
      remote.url,
      'main',
      `    poll: { interval: 100ms, quiet: 3s }
`,
    ),
  );
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildFinished('b1'), { what: 'first build (after its quiet period)' });
  let last = '';
  for (let i = 0; i < 3; i++) {
    last = remote.commit('main');
    const seen = daemon.count((e) => e.msg === 'polled');
    await daemon.waitFor((e) => e.msg === 'polled', { count: seen + 2 });
  }
  await daemon.waitFor(isBuildFinished('b1'), { count: 2, what: 'one build after the burst' });
  const seen = daemon.count((e) => e.msg === 'polled');
  await daemon.waitFor((e) => e.msg === 'polled', { count: seen + 5 });
  expect(daemon.count(isBuildStarted('b1'))).toBe(2);
  expect(builds(path.join(t.dir, 'sites/b1'))[1]).toMatch(new RegExp(`^2 ${last} `));
});

(haveSvn ? test : test.skip)(
  'svn: a commit on another branch of the repository does not rebuild trunk',
  async () => {
    const repo = makeSvnRemote(t.dir);
    repo.commit('trunk', 'first', { author: 'chris' });
    repo.copy('trunk', 'branches/b1');
    const file = config(
      t.dir,
      `  staging:
    dir: ./sites/staging
    sources:
      - { name: app, vcs: svn, url: "${repo.url}/trunk", path: src/app }
  branch1:
    dir: ./sites/branch1
    sources:
      - { name: app, vcs: svn, url: "${repo.url}/branches/b1", path: src/app }
`,
    );
    daemon = new DaemonProcess(file);
    await daemon.waitFor(isBuildFinished(), { count: 2 });
    const rev = repo.commit('branches/b1', 'branch work');
    await daemon.waitFor(isBuildFinished('branch1'), { count: 2 });
    expect(builds(path.join(t.dir, 'sites/branch1'))[1]).toMatch(new RegExp(`^2 ${rev} `));
    const seen = daemon.count((e) => e.msg === 'polled');
    await daemon.waitFor((e) => e.msg === 'polled', { count: seen + 4 });
    expect(daemon.count(isBuildStarted('staging'))).toBe(1);
    // One svn repository: one query per cycle for both branches.
    expect(
      daemon.events
        .filter((e) => e.msg === 'polled')
        .slice(-3)
        .every((e) => (e.branches as string[]).length === 2),
    ).toBe(true);
  },
);

void isPolled;
