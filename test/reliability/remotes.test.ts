/**
 * Remotes that hang, refuse, reject the credentials, lose their ref or are
 * force-pushed, against the real daemon: reported once when they start
 * failing and once when they recover, nothing else held up.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { git, makeGitRemote } from '../helpers/git.js';
import { processAlive } from '../helpers/tools.js';
import { runCli, isBuildFinished, isBuildStarted, type LogEvent } from '../helpers/cli.js';
import { freePort } from '../plugins/vcs-helpers.js';
import { parseMail, startSmtp } from '../notify/helpers.js';
import {
  Daemons,
  RECORD_STEPS,
  gitBranchYaml,
  gitHttpServer,
  lines,
  morePolls,
  writeCi,
} from './helpers.js';

let t: ReturnType<typeof tempDir>;
const daemons = new Daemons();
beforeEach(() => {
  t = tempDir('stagepost-rel-');
});
afterEach(async () => {
  await daemons.killAll();
  t.cleanup();
});

const failingFor = (needle: string) => (e: LogEvent) =>
  e.msg === 'remote failing' && String(e.repository).includes(needle);
const recoveredFor = (needle: string) => (e: LogEvent) =>
  e.msg === 'remote recovered' && String(e.repository).includes(needle);
const pollOf = (branch: string) => (e: LogEvent) =>
  (e.branches as string[] | undefined)?.includes(branch) === true;

test('hung, refusing and wrong-password remotes are each reported once; the good branch goes on; no hung child outlives its timeout', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const http = await gitHttpServer(t.dir, 'deploy', 'right-pass');
  try {
    const bin = path.join(t.dir, 'bin');
    mkdirSync(bin);
    const pidsFile = path.join(t.dir, 'ssh.pids');
    writeFileSync(path.join(bin, 'ssh'), `#!/bin/sh\necho $$ >> "${pidsFile}"\nexec sleep 60\n`);
    chmodSync(path.join(bin, 'ssh'), 0o755);
    const closed = await freePort();
    const file = writeCi(
      t.dir,
      `${RECORD_STEPS}branches:
${gitBranchYaml('good', remote.url, 'main')}${gitBranchYaml('hung', 'ssh://git@127.0.0.1:1/never.git', 'main', '    poll: { timeout: 700ms }\n')}${gitBranchYaml('refused', `git://127.0.0.1:${closed}/x`, 'main')}${gitBranchYaml('badpass', `http://deploy:wrong-pass-123@127.0.0.1:${http.port}/repo.git`, 'main')}`,
    );
    const d = daemons.start(file, { PATH: `${bin}:${process.env.PATH}` });
    await d.waitFor(isBuildFinished('good'), { what: 'the good branch built' });
    const [hung] = await d.waitFor(failingFor('ssh://'), { what: 'the hung remote reported' });
    const [refused] = await d.waitFor(failingFor('git://'), {
      what: 'the refusing remote reported',
    });
    const [badpass] = await d.waitFor(failingFor('http://'), { what: 'the bad password reported' });
    expect(String(hung.error)).toMatch(/timed out/i);
    expect(String(refused.error)).toMatch(/refused|unable to connect/i);
    expect(String(badpass.error)).toMatch(/authentication failed|401|could not read/i);

    // The good branch keeps building commits while the others fail; at no
    // moment is more than the one query in flight of the hung repository alive.
    const maxAlive: number[] = [];
    for (let i = 2; i <= 4; i++) {
      const rev = remote.commit('main');
      await d.waitFor(isBuildFinished('good'), { count: i, what: `good build ${i}` });
      expect(lines(path.join(t.dir, 'sites/good/builds.txt'))[i - 1]).toBe(`${i} ${rev}`);
      maxAlive.push(lines(pidsFile).map(Number).filter(processAlive).length);
    }
    await morePolls(d, 1, pollOf('refused'));
    expect(Math.max(...maxAlive)).toBeLessThanOrEqual(1);
    expect(lines(pidsFile).length).toBeGreaterThan(1);
    // Reported when they started failing, not every cycle.
    for (const needle of ['ssh://', 'git://', 'http://'])
      expect(d.count(failingFor(needle))).toBe(1);
    expect(
      d.count((e) => e.msg === 'polled' && pollOf('refused')(e) && !!e.error),
    ).toBeGreaterThanOrEqual(3);
    expect(
      d.count(isBuildStarted('hung')) +
        d.count(isBuildStarted('refused')) +
        d.count(isBuildStarted('badpass')),
    ).toBe(0);
    expect(d.stderr).not.toContain('wrong-pass-123');

    const status = JSON.parse((await runCli(['status', '--json', '--config', file])).stdout) as {
      branches: Array<{ name: string; lastPoll: { error: string | null } }>;
    };
    const byName = Object.fromEntries(status.branches.map((b) => [b.name, b]));
    expect(byName.good.lastPoll.error).toBeNull();
    for (const name of ['hung', 'refused', 'badpass'])
      expect(byName[name].lastPoll.error).toEqual(expect.any(String));
    expect(await d.stop()).toBe(0);
    expect(lines(pidsFile).map(Number).filter(processAlive)).toEqual([]);
  } finally {
    await http.close();
  }
});

test('a refusing remote is reported when it starts failing and once when it recovers, then builds', async () => {
  const remote = makeGitRemote(t.dir);
  const rev = remote.commit('main');
  const port = await freePort();
  const url = `http://deploy:pw-1234@127.0.0.1:${port}/repo.git`;
  const file = writeCi(t.dir, `${RECORD_STEPS}branches:\n${gitBranchYaml('later', url, 'main')}`);
  const d = daemons.start(file);
  await d.waitFor(failingFor('127.0.0.1'), { what: 'the remote reported failing' });
  await morePolls(d, 3);
  expect(d.count(failingFor('127.0.0.1'))).toBe(1);

  // The server comes up (backoff makes the next poll take a few seconds at most).
  const server = await gitHttpServer(t.dir, 'deploy', 'pw-1234', port);
  try {
    await d.waitFor(recoveredFor('127.0.0.1'), { what: 'the remote recovered' });
    await d.waitFor(isBuildFinished('later'), { what: 'the first build after recovery' });
    expect(lines(path.join(t.dir, 'sites/later/builds.txt'))).toEqual([`1 ${rev}`]);
    await morePolls(d, 3);
    expect(d.count(recoveredFor('127.0.0.1'))).toBe(1);
    expect(d.count(failingFor('127.0.0.1'))).toBe(1);
  } finally {
    await server.close();
  }
  // Failing again is a new episode, reported again.
  await d.waitFor(failingFor('127.0.0.1'), { count: 2, what: 'the second failure' });
  expect(d.stderr).not.toContain('pw-1234');
});

test('a deleted ref is reported in the log and by poll; the site is kept and not rebuilt; the ref coming back builds', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const f1 = remote.commit('feature');
  const file = writeCi(
    t.dir,
    `${RECORD_STEPS}branches:\n${gitBranchYaml('feat', remote.url, 'feature')}`,
  );
  const d = daemons.start(file);
  await d.waitFor(isBuildFinished('feat'));
  git(remote.bare, ['update-ref', '-d', 'refs/heads/feature']);
  const [gone] = await d.waitFor((e) => e.msg === 'ref not found on remote', {
    what: 'the deleted ref reported',
  });
  expect(String(gone.reason)).toMatch(/no branch or tag "feature"/);
  await morePolls(d, 5);
  expect(d.count((e) => e.msg === 'ref not found on remote')).toBe(1);
  expect(d.count(isBuildStarted('feat'))).toBe(1);
  expect(existsSync(path.join(t.dir, 'sites/feat/src/app/.git'))).toBe(true);

  const polled = await runCli(['poll', '--json', '--config', file]);
  const source = JSON.parse(polled.stdout).branches[0].sources[0];
  expect(source.missing).toMatch(/no branch or tag "feature"/);
  expect(source.built).toBe(f1);
  const status = JSON.parse((await runCli(['status', '--json', '--config', file])).stdout);
  expect(status.branches[0]).toMatchObject({
    state: 'idle',
    lastBuild: { id: 1, result: 'success' },
    sources: [{ revision: f1 }],
  });

  git(remote.work, ['checkout', '-q', 'main']);
  git(remote.work, ['branch', '-q', '-D', 'feature']);
  const f2 = remote.commit('feature', 'the feature is back');
  await d.waitFor(isBuildFinished('feat'), { count: 2, what: 'the returned ref built' });
  expect(lines(path.join(t.dir, 'sites/feat/builds.txt'))).toEqual([`1 ${f1}`, `2 ${f2}`]);
});

test('a force-push is built, and its mail lists the new commit, not the discarded one nor old history', async () => {
  const smtp = await startSmtp();
  try {
    const remote = makeGitRemote(t.dir);
    const a = remote.commit('main', 'subject A (base)');
    const file = writeCi(
      t.dir,
      `${RECORD_STEPS}notify:
  - use: email
    transport: smtp://127.0.0.1:${smtp.port}
    from: "Staging <staging@example.com>"
    to: [ops@example.com]
    on: [success]
branches:
${gitBranchYaml('b1', remote.url, 'main')}`,
    );
    const d = daemons.start(file);
    await d.waitFor(isBuildFinished('b1'));
    const b = remote.commit('main', 'subject B (to be discarded)');
    await d.waitFor(isBuildFinished('b1'), { count: 2 });
    git(remote.work, ['reset', '-q', '--hard', a]);
    const c = remote.commit('main', 'subject C (after the force-push)');
    await d.waitFor(isBuildFinished('b1'), { count: 3, what: 'the force-pushed revision built' });
    expect(lines(path.join(t.dir, 'sites/b1/builds.txt'))).toEqual([`1 ${a}`, `2 ${b}`, `3 ${c}`]);
    expect(git(path.join(t.dir, 'sites/b1/src/app'), ['rev-parse', 'HEAD'])).toBe(c);

    await smtp.waitFor(3);
    const third = smtp.mails
      .map((m) => parseMail(m.raw))
      .find((m) => m.headers.subject?.includes(c.slice(0, 7)));
    expect(third).toBeDefined();
    expect(third!.text).toContain('subject C (after the force-push)');
    expect(third!.text).not.toContain('subject B');
    expect(third!.text).not.toContain('subject A');
    expect(third!.text).toContain(`(was ${b.slice(0, 7)}`);
    expect(readFileSync(path.join(t.dir, 'state/logs/b1/3.log'), 'utf8')).toContain(
      `(was ${b.slice(0, 7)}`,
    );
  } finally {
    await smtp.close();
  }
});
