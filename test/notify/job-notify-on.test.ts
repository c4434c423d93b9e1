/**
 * `jobs.<name>.notify_on` decides which of a job's events reach the notifiers:
 * a failing job mails by default (`job-failure`), and `notify_on: []` mutes it.
 * `stagepost job` delivers before it exits, so after it the SMTP server has
 * received all it ever will from that run. A scheduled tick for a site not yet
 * checked out is skipped, not a failure to mail.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote } from '../helpers/git.js';
import { DaemonProcess, isBuildFinished, runCli, type LogEvent } from '../helpers/cli.js';
import { startSmtp, type TestSmtp } from './helpers.js';

let t: ReturnType<typeof tempDir>;
let smtp: TestSmtp;
beforeEach(async () => {
  t = tempDir();
  smtp = await startSmtp();
});
afterEach(async () => {
  await smtp.close();
  t.cleanup();
});

/** ci.yaml with branch b1 on `ref`, ops mailed on job-failure, and these `jobs:` entries. */
function writeJobsCi(url: string, ref: string, jobs: string): string {
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
poll: { interval: 200ms, timeout: 5s }
steps: [{ name: noop, run: "true" }]
notify:
  - use: email
    transport: smtp://127.0.0.1:${smtp.port}
    from: "Staging <staging@example.test>"
    to: [ops@example.test]
    on: [job-failure]
jobs:
${jobs}branches:
  b1:
    dir: ./sites/b1
    sources: [{ name: app, vcs: git, url: "${url}", ref: ${ref} }]
`,
  );
  return file;
}

test('a failing job mails by default, and not at all with notify_on: []', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main', 'first');
  mkdirSync(path.join(t.dir, 'sites', 'b1'), { recursive: true });
  const file = writeJobsCi(
    remote.url,
    'main',
    `  quiet-sync:
    schedule: "0 2 * * *"
    branches: [b1]
    run: "exit 3"
    notify_on: []
  loud-sync:
    schedule: "0 2 * * *"
    branches: [b1]
    run: "exit 4"
`,
  );

  const muted = await runCli(['job', 'quiet-sync', '--config', file]);
  expect(muted.code).toBe(1);
  expect(smtp.mails).toEqual([]);

  const loud = await runCli(['job', 'loud-sync', '--config', file]);
  expect(loud.code).toBe(1);
  const mails = await smtp.waitFor(1);
  expect(mails).toHaveLength(1);
  expect(mails[0].raw).toContain('loud-sync');
  expect(mails[0].raw).not.toContain('quiet-sync');
});

test('a scheduled tick before the site was ever checked out is skipped: no failed run, no mail', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main', 'first');
  // The ref does not exist yet, so the site is never checked out while the job ticks.
  const file = writeJobsCi(
    remote.url,
    'later',
    `  sync:
    schedule: "* * * * * *"
    branches: [b1]
    run: "true"
`,
  );
  const daemon = new DaemonProcess(file);
  try {
    const skipped = (e: LogEvent) =>
      e.msg === 'job skipped: the site has not been checked out yet' && e.branch === 'b1';
    await daemon.waitFor(skipped, { count: 2, what: 'two skipped ticks' });
    expect(daemon.count((e) => e.msg === 'job started')).toBe(0);

    // Once the branch exists and is built, the ticks run.
    remote.commit('later', 'now it exists');
    await daemon.waitFor(isBuildFinished('b1'), { what: 'the first build' });
    await daemon.waitFor((e) => e.msg === 'job finished' && e.result === 'success', {
      what: 'a job run after the build',
    });
    expect(await daemon.stop()).toBe(0);
  } finally {
    await daemon.kill9();
  }
  const history = JSON.parse(
    (await runCli(['history', 'b1', '--json', '--config', file])).stdout,
  ) as { jobs: { sync: Array<{ id: number; result: string }> } };
  expect(history.jobs.sync.length).toBeGreaterThan(0);
  expect(history.jobs.sync.every((r) => r.result === 'success')).toBe(true);
  expect(history.jobs.sync.at(-1)?.id).toBe(1);
  expect(smtp.mails).toEqual([]);
});
