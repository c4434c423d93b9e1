/**
 * Faults in state_dir against the real daemon (issue 16, points 1 and 3): a
 * damaged state file is moved aside and its branch rebuilt while the others go
 * on, with one mail; a build whose lock cannot be taken is tried again with
 * backoff until it runs, and status says why it waits; a lock that cannot be
 * removed after a build is taken over by the next one.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote, type GitRemote } from '../helpers/git.js';
import { isBuildFinished, runCli } from '../helpers/cli.js';
import { hasTool } from '../helpers/tools.js';
import { until } from '../helpers/wait.js';
import { parseMail, startSmtp, type TestSmtp } from '../notify/helpers.js';
import { Daemons, RECORD_STEPS, filesUnder, gitBranchYaml, writeCi } from './helpers.js';

let t: ReturnType<typeof tempDir>;
let smtp: TestSmtp;
let remote: GitRemote;
let file: string;
let stateDir: string;
const daemons = new Daemons();
beforeEach(async () => {
  t = tempDir('stagepost-state-faults-');
  smtp = await startSmtp();
  remote = makeGitRemote(t.dir);
  remote.commit('b1');
  remote.commit('b2');
  file = writeCi(
    t.dir,
    `${RECORD_STEPS}notify:
  - { use: email, transport: "smtp://127.0.0.1:${smtp.port}", from: "s@example.com", to: [ops@example.com], on: [config-error] }
branches:
${gitBranchYaml('b1', remote.url, 'b1')}${gitBranchYaml('b2', remote.url, 'b2')}`,
  );
  stateDir = path.join(t.dir, 'state');
});
afterEach(async () => {
  await daemons.killAll();
  await smtp.close();
  t.cleanup();
});

const builtRevision = (branch: string, rev: string) => (e: { msg: string; branch?: unknown }) =>
  e.msg === 'build started' &&
  e.branch === branch &&
  JSON.stringify((e as { revisions?: unknown }).revisions ?? {}).includes(rev.slice(0, 7));

async function firstBuilds(): Promise<void> {
  const d = daemons.start(file);
  await d.waitFor(isBuildFinished('b1'));
  await d.waitFor(isBuildFinished('b2'));
  await d.stop();
}

/** No temp file and no empty file anywhere in state_dir. */
function leftovers(): string[] {
  return filesUnder(stateDir).filter(
    (f) => f.endsWith('.tmp') || (statSync(f).size === 0 && !f.endsWith('.log')),
  );
}

test('start-up with a damaged poll.json ("tracks": "x") and a garbage branch file: runs, moves both aside, rebuilds that branch only, one mail each', async () => {
  await firstBuilds();
  writeFileSync(path.join(stateDir, 'poll.json'), JSON.stringify({ version: 1, tracks: 'x' }));
  writeFileSync(path.join(stateDir, 'branches', 'b1.json'), '{"attempted": {"app": "trunc');
  const d = daemons.start(file);
  await d.waitFor((e) => e.msg === 'stagepost started');
  // b1 lost its record with the file: built again. b2 kept it: not rebuilt.
  await d.waitFor(isBuildFinished('b1'), { what: 'b1 rebuilt' });
  const mails = await smtp.waitFor(2);
  const rev2 = remote.commit('b2');
  await d.waitFor(builtRevision('b2', rev2), { what: 'b2 built after a commit' });
  await d.waitFor(isBuildFinished('b2'));
  expect(d.count(isBuildFinished('b2'))).toBe(1);
  expect(d.child.exitCode).toBeNull();

  const aside = [
    ...readdirSync(stateDir).filter((n) => n.startsWith('poll.json.corrupt-')),
    ...readdirSync(path.join(stateDir, 'branches')).filter((n) => n.startsWith('b1.json.corrupt-')),
  ];
  expect(aside).toHaveLength(2);
  const texts = mails.map((m) => parseMail(m.raw).text);
  expect(texts.some((x) => x.includes('poll.json') && x.includes('corrupt-'))).toBe(true);
  expect(texts.some((x) => x.includes('b1.json') && x.includes('built again'))).toBe(true);
  expect(smtp.mails).toHaveLength(2);
  expect(d.count((e) => e.msg === 'state file damaged; moved aside and started afresh')).toBe(2);
});

test('a branch file damaged while the daemon runs: the next commit builds it, the other branch goes on, one mail', async () => {
  const d = daemons.start(file);
  await d.waitFor(isBuildFinished('b1'));
  await d.waitFor(isBuildFinished('b2'));
  writeFileSync(
    path.join(stateDir, 'branches', 'b1.json'),
    JSON.stringify({ builds: 'x', nextId: 'y' }),
  );
  const rev1 = remote.commit('b1');
  const rev2 = remote.commit('b2');
  await d.waitFor(builtRevision('b1', rev1), { what: 'b1 built' });
  await d.waitFor(builtRevision('b2', rev2), { what: 'b2 built' });
  await d.waitFor(isBuildFinished('b1'), { count: 2 });
  await smtp.waitFor(1);
  expect(d.child.exitCode).toBeNull();
  expect(smtp.mails).toHaveLength(1);
  const status = await runCli(['status', '--json', '--config', file]);
  expect(status.code).toBe(0);
  const b1 = (
    JSON.parse(status.stdout) as { branches: Array<{ name: string; lastBuild: unknown }> }
  ).branches.find((b) => b.name === 'b1');
  // Numbered after the logs left behind, not from 1 again. (Whoever reads the
  // damaged file first, the daemon's watch of foreground builds or the
  // commit's poll, decides whether the old revision is rebuilt first: 2 or 3.)
  const last = b1?.lastBuild as { id: number; result: string };
  expect(last.result).toBe('success');
  expect(last.id).toBeGreaterThan(1);
  expect(existsSync(path.join(stateDir, 'logs', 'b1', `${last.id}.log`))).toBe(true);
  expect(readFileSync(path.join(stateDir, 'logs', 'b1', `${last.id}.log`), 'utf8')).toContain(
    rev1.slice(0, 7),
  );
});

test('a build whose lock cannot be taken waits with the reason in status, is tried again with backoff, and runs once the fault is gone', async () => {
  const d = daemons.start(file);
  await d.waitFor(isBuildFinished('b1'));
  await d.waitFor(isBuildFinished('b2'));
  // "build finished" is logged before the build's lock is let go: wait for that,
  // or the release itself meets the fault below.
  await until(
    () => !['b1', 'b2'].some((b) => existsSync(path.join(stateDir, 'locks', `${b}.lock`))),
    'the first builds to let go of their locks',
  );
  // A real fault: locks/ is a plain file, so no lock can be created (ENOTDIR/EEXIST).
  // The daemon may make locks/ again between the two calls (a poll's build taking its lock): retry.
  for (let tries = 1; ; tries++) {
    rmSync(path.join(stateDir, 'locks'), { recursive: true, force: true });
    try {
      writeFileSync(path.join(stateDir, 'locks'), 'in the way');
      break;
    } catch (err) {
      if (tries >= 50) throw err;
    }
  }
  const rev1 = remote.commit('b1');
  const couldNot = (e: { msg: string; branch?: unknown }) =>
    e.msg === 'build could not start; trying again' && e.branch === 'b1';
  await d.waitFor(couldNot, { count: 2, what: 'two tries' });
  const delays = d.events.filter(couldNot).map((e) => e.retryInMs as number);
  expect(delays[1]).toBeGreaterThan(delays[0]);

  const waiting = async () => {
    const r = await runCli(['status', '--json', '--config', file]);
    return (
      JSON.parse(r.stdout) as {
        branches: Array<{ name: string; waiting: { reason: string; retryAt: string } | null }>;
      }
    ).branches.find((b) => b.name === 'b1')?.waiting;
  };
  let w = await waiting();
  for (let i = 0; i < 60 && !w; i++) {
    await new Promise((r) => setTimeout(r, 250));
    w = await waiting();
  }
  expect(w?.reason).toMatch(/lock/);
  expect(Date.parse(w!.retryAt)).not.toBeNaN();
  const text = await runCli(['status', '--config', file]);
  expect(text.stdout).toMatch(/b1\s+waiting: cannot create the lock directory/);

  rmSync(path.join(stateDir, 'locks'));
  // No new commit: the retry alone builds it.
  await d.waitFor(builtRevision('b1', rev1), {
    what: 'b1 built after the fault',
    timeoutMs: 20_000,
  });
  await d.waitFor(isBuildFinished('b1'), { count: 2 });
  expect(d.child.exitCode).toBeNull();
  // The runtime file follows within 500 ms of the news; a loaded machine may take longer.
  await until(async () => (await waiting()) === null, 'b1 no longer waiting in status', 10_000);
  expect(leftovers()).toEqual([]);
  expect(existsSync(path.join(stateDir, 'locks', 'b1.lock'))).toBe(false);
}, 40_000);

test('a lock that cannot be removed after a build: the build stands, and the next one takes the lock over', async () => {
  // The step itself puts a plain file in locks/'s place, so the fault meets the release, not the take.
  const ci = writeCi(
    t.dir,
    `${RECORD_STEPS}  - name: fault
    run: 'if [ -e break ]; then rm break; mv ../../state/locks ../../state/locks.aside; echo x > ../../state/locks; fi'
branches:
${gitBranchYaml('b1', remote.url, 'b1')}`,
    { name: 'one.yaml' },
  );
  const d = daemons.start(ci);
  await d.waitFor(isBuildFinished('b1'));
  writeFileSync(path.join(t.dir, 'sites/b1/break'), '');
  const rev2 = remote.commit('b1');
  await d.waitFor(builtRevision('b1', rev2), { what: 'the build that meets the fault' });
  const [second] = await d.waitFor(isBuildFinished('b1'), { count: 2 });
  expect(second.result).toBe('success');
  await d.waitFor((e) => e.msg.startsWith('could not remove the branch lock file'), {
    what: 'the warning',
  });
  expect(d.count((e) => e.msg === 'build could not start; trying again')).toBe(0);

  // The fault goes away; the lock file is back, naming the daemon that let go of it.
  rmSync(path.join(stateDir, 'locks'));
  renameSync(path.join(stateDir, 'locks.aside'), path.join(stateDir, 'locks'));
  expect(JSON.parse(readFileSync(path.join(stateDir, 'locks', 'b1.lock'), 'utf8'))).toMatchObject({
    pid: d.child.pid,
  });
  const rev3 = remote.commit('b1');
  await d.waitFor(builtRevision('b1', rev3), { what: 'the next build, not waiting on itself' });
  const [, , third] = await d.waitFor(isBuildFinished('b1'), { count: 3 });
  expect(third.result).toBe('success');
  // "build finished" is logged before the lock is let go.
  await until(() => !existsSync(path.join(stateDir, 'locks', 'b1.lock')), 'the lock let go');
  expect(leftovers()).toEqual([]);
});

test('EMFILE while a commit arrives (the daemon held to 10 open files): no crash, the build waits and runs once files can be opened again', async () => {
  if (!hasTool('prlimit')) return;
  // A quiet period lets the daemon see the commit (git runs as its child, which
  // needs descriptors too) before the limit drops and the build reads its state.
  const quietFile = writeCi(t.dir, readFileSync(file, 'utf8').split('\n').slice(4).join('\n'), {
    poll: '{ interval: 200ms, timeout: 5s, quiet: 3s }',
    name: 'ci-quiet.yaml',
  });
  const d = daemons.start(quietFile);
  await d.waitFor(isBuildFinished('b1'));
  await d.waitFor(isBuildFinished('b2'));
  const pid = String(d.child.pid);
  const soft = /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))![1];
  const rev1 = remote.commit('b1');
  const pollFile = path.join(stateDir, 'poll.json');
  await until(
    () => existsSync(pollFile) && readFileSync(pollFile, 'utf8').includes(rev1),
    'the new revision in poll.json',
  );
  // A real EMFILE: the daemon can open nothing, the branch's state file included.
  execFileSync('prlimit', ['--pid', pid, '--nofile=10:']);
  const waits = (e: { msg: string; branch?: unknown }) =>
    (e.msg === 'cannot read branch state' || e.msg === 'build could not start; trying again') &&
    e.branch === 'b1';
  const [first] = await d.waitFor(waits, { what: 'the read refused with EMFILE' });
  expect(JSON.stringify(first)).toContain('EMFILE');
  await d.waitFor(waits, { count: 2, what: 'a second try' });
  expect(d.child.exitCode).toBeNull();
  execFileSync('prlimit', ['--pid', pid, `--nofile=${soft}:`]);
  await d.waitFor(builtRevision('b1', rev1), { what: 'b1 built after EMFILE', timeoutMs: 20_000 });
  await d.waitFor(isBuildFinished('b1'), { count: 2 });
  expect(d.child.exitCode).toBeNull();
}, 40_000);

test('`stagepost status` with a damaged branch file: exit 0, a warning naming the file, the file left for the daemon', async () => {
  const branchFile = path.join(stateDir, 'branches', 'b1.json');
  mkdirSync(path.dirname(branchFile), { recursive: true });
  writeFileSync(branchFile, '{"nextId": "seven"');
  const r = await runCli(['status', '--json', '--config', file]);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain(`warning: ${branchFile} is damaged`);
  expect(
    (JSON.parse(r.stdout) as { branches: Array<{ name: string }> }).branches.map((b) => b.name),
  ).toEqual(['b1', 'b2']);
  expect(readFileSync(branchFile, 'utf8')).toBe('{"nextId": "seven"');
});
