/**
 * Operating the daemon: ci.yaml edited while it runs, jobs, signals, one
 * daemon per state_dir, `switch` and `create`. Real git, real daemon.
 */
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote, type GitRemote } from '../helpers/git.js';
import { DaemonProcess, runCli, isBuildFinished, isBuildStarted } from '../helpers/cli.js';

let t: ReturnType<typeof tempDir>;
let daemons: DaemonProcess[] = [];
beforeEach(() => {
  t = tempDir();
  daemons = [];
});
afterEach(async () => {
  for (const d of daemons) await d.kill9();
  t.cleanup();
});

function start(file: string, env: NodeJS.ProcessEnv = {}): DaemonProcess {
  const d = new DaemonProcess(file, env);
  daemons.push(d);
  return d;
}

function branchYaml(name: string, remote: GitRemote, ref: string, extra = ''): string {
  return `  ${name}:   # the ${name} site
    dir: ./sites/${name}
    sources:
      - { name: app, vcs: git, url: "${remote.url}", ref: ${ref}, path: src/app }
${extra}`;
}

function writeConfig(file: string, branches: string, extra = ''): void {
  // Written beside and renamed into place, as editors do.
  const tmp = `${file}.tmp`;
  writeFileSync(
    tmp,
    `# stagepost test config
version: 1
state_dir: ./state
poll: { interval: 200ms, timeout: 5s }
builds: { concurrency: 2, shutdown_grace: 200ms }
steps:
  - name: record
    run: 'echo "$STAGEPOST_BUILD $STAGEPOST_REV_APP \${MARK:-plain}" >> builds.txt'
${extra}
branches:
${branches}`,
  );
  renameSync(tmp, file);
}

const builds = (dir: string) =>
  existsSync(path.join(dir, 'builds.txt'))
    ? readFileSync(path.join(dir, 'builds.txt'), 'utf8').trim().split('\n')
    : [];

test('add, change, break and remove a branch in a running daemon', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const f1 = remote.commit('feature');
  const file = path.join(t.dir, 'ci.yaml');
  writeConfig(file, branchYaml('staging', remote, 'main'));
  const d = start(file);
  await d.waitFor(isBuildFinished('staging'));
  const pid = d.child.pid;

  // Add a branch: it is polled and built, same process.
  writeConfig(
    file,
    branchYaml('staging', remote, 'main') + branchYaml('branch1', remote, 'feature'),
  );
  await d.waitFor(isBuildFinished('branch1'), { what: 'the added branch built' });
  expect(builds(path.join(t.dir, 'sites/branch1'))).toEqual([`1 ${f1} plain`]);
  expect(d.child.pid).toBe(pid);

  // Break it: the old config goes on, the error names the line.
  writeFileSync(file, readFileSync(file, 'utf8').replace('version: 1', 'version: 1\nbogus_key: 3'));
  const [rejected] = await d.waitFor(
    (e) => e.msg === 'ci.yaml edit rejected; keeping the last good config',
  );
  expect(String(rejected.error)).toMatch(/ci\.yaml:\d+/);
  expect(String(rejected.error)).toMatch(/bogus_key/);
  const f2 = remote.commit('feature');
  await d.waitFor(isBuildFinished('branch1'), {
    count: 2,
    what: 'builds go on under the last good config',
  });
  expect(builds(path.join(t.dir, 'sites/branch1'))[1]).toBe(`2 ${f2} plain`);

  // Change a branch's steps: used from its next build.
  writeConfig(
    file,
    branchYaml('staging', remote, 'main') +
      branchYaml(
        'branch1',
        remote,
        'feature',
        `    steps:
      - name: record
        run: 'echo "$STAGEPOST_BUILD $STAGEPOST_REV_APP changed" >> builds.txt'
`,
      ),
  );
  await d.waitFor((e) => e.msg === 'ci.yaml reloaded', { count: 2 });
  const f3 = remote.commit('feature');
  await d.waitFor(isBuildFinished('branch1'), { count: 3 });
  expect(builds(path.join(t.dir, 'sites/branch1'))[2]).toBe(`3 ${f3} changed`);

  // Remove it: no more builds of it.
  writeConfig(file, branchYaml('staging', remote, 'main'));
  await d.waitFor((e) => e.msg === 'ci.yaml reloaded', { count: 3 });
  remote.commit('feature');
  const seen = d.count((e) => e.msg === 'polled');
  await d.waitFor((e) => e.msg === 'polled', { count: seen + 4 });
  expect(d.count(isBuildStarted('branch1'))).toBe(3);
  expect(await d.stop()).toBe(0);
});

test('a 6-field schedule runs a job for its branches, never overlapping a build of the branch', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const file = path.join(t.dir, 'ci.yaml');
  const log = path.join(t.dir, 'events.txt');
  writeConfig(
    file,
    branchYaml(
      'staging',
      remote,
      'main',
      `    steps:
      - name: slow
        run: 'echo "build-start $STAGEPOST_BUILD" >> "$EVENTS"; sleep 1.2; echo "build-end $STAGEPOST_BUILD" >> "$EVENTS"'
`,
    ) + branchYaml('other', remote, 'main'),
    `env: { pass: [EVENTS] }
jobs:
  sync:
    schedule: "* * * * * *"
    branches: [staging]
    run: 'echo "job-start $STAGEPOST_BUILD $STAGEPOST_JOB" >> "$EVENTS"; sleep 0.3; echo "job-end $STAGEPOST_BUILD" >> "$EVENTS"'
`,
  );
  const d = start(file, { EVENTS: log });
  await d.waitFor((e) => e.msg === 'job finished' && e.branch === 'staging', {
    count: 2,
    what: 'two job runs',
  });
  expect(d.count((e) => e.msg === 'job finished' && e.branch === 'other')).toBe(0);
  await d.stop();
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  // Starts and ends strictly alternate: nothing of this branch overlapped.
  let open: string | null = null;
  for (const line of lines) {
    const [what] = line.split(' ');
    if (what.endsWith('-start')) {
      expect(open).toBeNull();
      open = what!;
    } else {
      expect(open).toBe(what.replace('-end', '-start'));
      open = null;
    }
  }
  expect(lines.some((l) => l.startsWith('job-start') && l.endsWith(' sync'))).toBe(true);
  const status = JSON.parse((await runCli(['status', '--json', '--config', file])).stdout);
  expect(status.branches.find((b: { name: string }) => b.name === 'staging').lastBuild.result).toBe(
    'success',
  );
  const jobLog = await runCli(['log', 'staging', '--config', file]);
  expect(jobLog.code).toBe(0);
});

test('SIGTERM during a build: interrupted after the grace, redone on the next start; a second daemon is refused', async () => {
  const remote = makeGitRemote(t.dir);
  const rev = remote.commit('main');
  const file = path.join(t.dir, 'ci.yaml');
  writeConfig(
    file,
    branchYaml(
      'b1',
      remote,
      'main',
      `    steps:
      - name: slow
        run: 'if [ ! -f done-once ]; then touch done-once; sleep 30; fi; echo "$STAGEPOST_BUILD $STAGEPOST_REV_APP" >> builds.txt'
`,
    ),
  );
  const d = start(file);
  await d.waitFor(isBuildStarted('b1'));
  for (let i = 0; i < 200 && !existsSync(path.join(t.dir, 'sites/b1/done-once')); i++)
    await new Promise((r) => setTimeout(r, 25));

  const second = await runCli(['run', '--config', file]);
  expect(second.code).toBe(1);
  expect(second.stderr).toMatch(/another stagepost daemon \(pid \d+\) already runs/);

  expect(await d.stop()).toBe(0);
  expect(d.events.some((e) => e.msg === 'build finished' && e.result === 'interrupted')).toBe(true);

  const again = start(file);
  const [done] = await again.waitFor(isBuildFinished('b1'));
  expect(done.result).toBe('success');
  expect(builds(path.join(t.dir, 'sites/b1'))).toEqual([`2 ${rev}`]);
});

test('switch keeps every comment of ci.yaml, refuses a ref that does not exist; the daemon rebuilds from the next poll', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const other = remote.commit('other-feature');
  const file = path.join(t.dir, 'ci.yaml');
  writeConfig(file, branchYaml('b1', remote, 'main'));
  const before = readFileSync(file, 'utf8');
  const refused = await runCli(['switch', 'b1', 'no-such-branch', '--config', file]);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/does not exist/);
  expect(readFileSync(file, 'utf8')).toBe(before);

  const d = start(file);
  await d.waitFor(isBuildFinished('b1'));
  const switched = await runCli(['switch', 'b1', 'other-feature', '--config', file]);
  expect(switched.code).toBe(0);
  const after = readFileSync(file, 'utf8');
  expect(after).toContain('# stagepost test config');
  expect(after).toContain('# the b1 site');
  expect(after).toContain('ref: other-feature');
  await d.waitFor(isBuildFinished('b1'), { count: 2, what: 'the switched site rebuilt' });
  expect(builds(path.join(t.dir, 'sites/b1'))[1]).toBe(`2 ${other} plain`);
});

test('create makes a new branch site in the foreground and refuses an existing directory', async () => {
  const remote = makeGitRemote(t.dir);
  const rev = remote.commit('main');
  const file = path.join(t.dir, 'ci.yaml');
  writeConfig(
    file,
    branchYaml('b1', remote, 'main'),
    `create:
  - name: bootstrap
    run: 'test -d src/app/.git && echo bootstrapped > bootstrap.txt'
`,
  );
  const made = await runCli(['create', 'b1', '--config', file]);
  expect(made.code).toBe(0);
  expect(made.stdout).toMatch(/==> bootstrap/);
  expect(readFileSync(path.join(t.dir, 'sites/b1/bootstrap.txt'), 'utf8')).toBe('bootstrapped\n');
  expect(builds(path.join(t.dir, 'sites/b1'))).toEqual([`1 ${rev} plain`]);
  const again = await runCli(['create', 'b1', '--config', file]);
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(/already exists/);
});

test('an edited poll interval takes effect at once, not after the old interval', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const file = path.join(t.dir, 'ci.yaml');
  writeConfig(file, branchYaml('b1', remote, 'main', '    poll: { interval: 1h }\n'));
  const d = start(file);
  await d.waitFor(isBuildFinished('b1'));
  const rev = remote.commit('main');
  writeConfig(file, branchYaml('b1', remote, 'main', '    poll: { interval: 200ms }\n'));
  await d.waitFor(isBuildFinished('b1'), {
    count: 2,
    timeoutMs: 15_000,
    what: 'the commit built under the new interval',
  });
  expect(builds(path.join(t.dir, 'sites/b1'))[1]).toBe(`2 ${rev} plain`);
});
