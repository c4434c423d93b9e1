/**
 * Mail from the real daemon to a real SMTP server: recipients, events,
 * subjects, and the outbox across an SMTP outage plus a kill -9.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { freePort } from '../plugins/vcs-helpers.js';
import { makeGitRemote } from '../helpers/git.js';
import { DaemonProcess, isBuildFinished } from '../helpers/cli.js';
import { startSmtp, type TestSmtp } from '../notify/helpers.js';

const subject = (raw: string) => /^Subject: (.*)$/m.exec(raw)?.[1] ?? '';

let t: ReturnType<typeof tempDir>;
let daemon: DaemonProcess | null = null;
let smtp: TestSmtp | null = null;
beforeEach(() => {
  t = tempDir();
});
afterEach(async () => {
  await daemon?.kill9();
  await smtp?.close();
  t.cleanup();
});

function writeConfig(file: string, smtpPort: number, remoteUrl: string): void {
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
poll: { interval: 200ms, timeout: 5s }
steps:
  - { name: compile, run: 'test ! -f src/app/BROKEN' }
notify:
  - use: email
    transport: smtp://127.0.0.1:${smtpPort}
    from: "Staging <staging@example.test>"
    to: [ops@example.test]
    committers: true
    on: [failure, fixed]
branches:
  b1:
    dir: ./sites/b1
    sources: [{ name: app, vcs: git, url: "${remoteUrl}", ref: main, path: src/app }]
`,
  );
}

test('failure goes to ops and the committer, a repair is FIXED, successes are not sent when not chosen', async () => {
  smtp = await startSmtp();
  const remote = makeGitRemote(t.dir);
  const fine = remote.commit('main', 'fine');
  const file = path.join(t.dir, 'ci.yaml');
  writeConfig(file, smtp.port, remote.url);
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildFinished('b1'));
  const broken = remote.commit('main', 'break it', {
    file: 'BROKEN',
    author: 'Dana Dev',
    email: 'dana@example.test',
  });
  await daemon.waitFor(isBuildFinished('b1'), { count: 2 });
  const [failed] = await smtp.waitFor(1);
  expect(subject(failed.raw)).toBe(`[stagepost] b1 FAILED (compile) app@${broken.slice(0, 7)}`);
  expect(failed.rcpt.sort()).toEqual(['dana@example.test', 'ops@example.test']);
  expect(failed.raw).toContain('break it');
  expect(failed.raw).toContain(`(was ${fine.slice(0, 7)})`);
  expect(failed.raw).not.toContain(fine);

  // Removing the file repairs the build: commit a deletion.
  const { execFileSync } = await import('node:child_process');
  execFileSync('git', ['rm', '-q', 'BROKEN'], { cwd: remote.work });
  execFileSync(
    'git',
    [
      '-c',
      'user.name=Erin',
      '-c',
      'user.email=erin@example.test',
      'commit',
      '-qm',
      'really repair',
    ],
    { cwd: remote.work },
  );
  execFileSync('git', ['push', '-q', 'origin', 'main'], { cwd: remote.work });
  await daemon.waitFor((e) => e.msg === 'build finished' && e.result === 'success', { count: 2 });
  await smtp.waitFor(2);
  const seen = daemon.count((e) => e.msg === 'polled');
  await daemon.waitFor((e) => e.msg === 'polled', { count: seen + 3 });
  expect(smtp.mails).toHaveLength(2);
  const subjects = smtp.mails.map((m) => subject(m.raw));
  expect(subjects.filter((s) => s.includes('FIXED'))).toHaveLength(1);
  expect(subjects.filter((s) => s.includes('SUCCESS'))).toHaveLength(0);
  expect(smtp.mails.at(-1)!.rcpt).toContain('erin@example.test');
  expect(await daemon.stop()).toBe(0);
});

test('mail waits in the outbox across an SMTP outage and a kill -9, and is delivered once', async () => {
  const port = await freePort();
  const remote = makeGitRemote(t.dir);
  const rev = remote.commit('main', 'broken from the start', { file: 'BROKEN' });
  const file = path.join(t.dir, 'ci.yaml');
  writeConfig(file, port, remote.url);
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildFinished('b1'));
  const outbox = path.join(t.dir, 'state', 'outbox');
  await daemon.waitFor(
    () => existsSync(outbox) && readdirSync(outbox).some((f) => f.endsWith('.json')),
    { what: 'a message in the outbox' },
  );
  await daemon.kill9();

  smtp = await startSmtp(port);
  daemon = new DaemonProcess(file);
  const [mail] = await smtp.waitFor(1);
  expect(subject(mail.raw)).toBe(`[stagepost] b1 FAILED (compile) app@${rev.slice(0, 7)}`);
  await daemon.waitFor(() => readdirSync(outbox).filter((f) => f.endsWith('.json')).length === 0, {
    what: 'the outbox emptied',
  });
  // Give a duplicate every chance to show up: a few more poll cycles.
  const seen = daemon.count((e) => e.msg === 'polled');
  await daemon.waitFor((e) => e.msg === 'polled', { count: seen + 5 });
  expect(smtp.mails).toHaveLength(1);
  expect(daemon.count((e) => e.msg === 'build started')).toBe(0);
});

test('a notification recorded with its build but not yet in the outbox (a crash in between) is sent on the next start', async () => {
  smtp = await startSmtp();
  const remote = makeGitRemote(t.dir);
  const rev = remote.commit('main', 'broken', { file: 'BROKEN' });
  const file = path.join(t.dir, 'ci.yaml');
  writeConfig(file, smtp.port, remote.url);
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildFinished('b1'));
  await smtp.waitFor(1);
  await daemon.stop();
  // What a kill -9 between recording the build and filing its mail leaves behind.
  const stateFile = path.join(t.dir, 'state', 'branches', 'b1.json');
  const state = JSON.parse(readFileSync(stateFile, 'utf8'));
  state.pendingNotification = {
    notification: {
      type: 'build',
      branch: 'b1',
      revisions: [
        { source: 'app', vcs: 'git', revision: rev, short: rev.slice(0, 7), previous: null },
      ],
      customerUrls: [],
      commits: [],
      build: {
        id: 1,
        result: 'failure',
        startedAt: new Date().toISOString(),
        durationMs: 5,
        failedStep: 'compile',
        steps: [],
        logTail: [],
        forced: false,
      },
    },
    events: ['failure'],
  };
  writeFileSync(stateFile, JSON.stringify(state));
  daemon = new DaemonProcess(file);
  await smtp.waitFor(2);
  expect(subject(smtp.mails[1].raw)).toBe(`[stagepost] b1 FAILED (compile) app@${rev.slice(0, 7)}`);
  await daemon.waitFor(
    (e) => e.msg === 'sent the notification of a build recorded just before a crash',
  );
  expect(JSON.parse(readFileSync(stateFile, 'utf8')).pendingNotification).toBeUndefined();
  const seen = daemon.count((e) => e.msg === 'polled');
  await daemon.waitFor((e) => e.msg === 'polled', { count: seen + 3 });
  expect(smtp.mails).toHaveLength(2);
});
