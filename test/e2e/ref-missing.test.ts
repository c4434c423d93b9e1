/**
 * A remote branch that is deleted: a poll error of its branch (API, status),
 * one `ref-missing` mail and one `ref-back` mail through a real SMTP server,
 * and `poll`/`update` exit 1 meanwhile. Real git, the real daemon and CLI.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { freePort } from '../plugins/vcs-helpers.js';
import { git, makeGitRemote } from '../helpers/git.js';
import { DaemonProcess, isBuildFinished, isPolled, runCli } from '../helpers/cli.js';
import { parseMail, startSmtp, type TestSmtp } from '../notify/helpers.js';
import type { StatusDocument } from '../../src/api.js';

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

const subject = (raw: string) => parseMail(raw).headers.subject ?? '';

test('a deleted remote branch is a poll error, mailed once when gone and once when back', async () => {
  smtp = await startSmtp();
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const feature = remote.commit('feature-x');
  const port = await freePort();
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
poll: { interval: 100ms, timeout: 5s }
http: { listen: ${port} }
steps: [{ name: noop, run: "true" }]
notify:
  - use: email
    transport: smtp://127.0.0.1:${smtp.port}
    from: "Staging <staging@example.test>"
    to: [ops@example.test]
branches:
  b1:
    dir: ./sites/b1
    sources: [{ name: app, vcs: git, url: "${remote.url}", ref: feature-x, path: src/app }]
`,
  );
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildFinished('b1'), { what: 'the first build' });

  git(remote.bare, ['branch', '-D', 'feature-x']);
  await daemon.waitFor((e) => e.msg === 'ref changed' && e.event === 'ref-missing', {
    what: 'ref-missing',
  });
  const api = (await (await fetch(`http://127.0.0.1:${port}/api/status`)).json()) as StatusDocument;
  expect(api.branches[0].lastPoll?.error).toMatch(
    /^ref missing: source app: no branch or tag "feature-x"/,
  );
  // Many more polls, still one mail.
  const polls = daemon.count(isPolled('b1'));
  await daemon.waitFor(isPolled('b1'), { count: polls + 10, what: 'ten more polls' });
  const [gone] = await smtp.waitFor(1);
  expect(subject(gone.raw)).toBe('[stagepost] b1 REF MISSING app');
  expect(gone.rcpt).toEqual(['ops@example.test']);
  expect(parseMail(gone.raw).text).toMatch(/ref is gone from its remote/);

  const status = await runCli(['status', '--config', file]);
  expect(status.stdout).toMatch(/b1 .*ERROR ref missing: source app/);
  const poll = await runCli(['poll', 'b1', '--config', file]);
  expect(poll.stdout).toMatch(/ref missing/);
  expect(poll.code).toBe(1);
  const update = await runCli(['update', 'b1', '--config', file]);
  expect(update.stderr).toMatch(/ref missing/);
  expect(update.code).toBe(1);

  git(remote.bare, ['branch', 'feature-x', feature]);
  await daemon.waitFor((e) => e.msg === 'ref changed' && e.event === 'ref-back', {
    what: 'ref-back',
  });
  const mails = await smtp.waitFor(2);
  expect(subject(mails[1].raw)).toBe('[stagepost] b1 REF BACK app');
  expect(parseMail(mails[1].raw).text).toMatch(/was missing: source app/);
  const back = (await (
    await fetch(`http://127.0.0.1:${port}/api/status`)
  ).json()) as StatusDocument;
  expect(back.branches[0].lastPoll?.error).toBeNull();
  expect(smtp.mails).toHaveLength(2);
  expect((await runCli(['poll', 'b1', '--config', file])).code).toBe(0);
});
