/**
 * Builds and jobs keep apart histories, and a first build mails nobody but
 * the operators: the real daemon, real git, a real SMTP server.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { gitBranchYaml, makeGitRemote } from '../helpers/git.js';
import { DaemonProcess, isBuildFinished, runCli } from '../helpers/cli.js';
import { startSmtp, type TestSmtp } from '../notify/helpers.js';
import type { BranchState } from '../../src/state/store.js';

let t: ReturnType<typeof tempDir>;
let daemon: DaemonProcess | null = null;
let smtp: TestSmtp | null = null;
beforeEach(() => {
  t = tempDir();
});
afterEach(async () => {
  await daemon?.kill9();
  daemon = null;
  await smtp?.close();
  smtp = null;
  t.cleanup();
});

const isJobFinished = (e: { msg: string }) => e.msg === 'job finished';

function writeConfig(remoteUrl: string, notify = ''): string {
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
poll: { interval: 200ms, timeout: 5s }
builds: { keep: 2, step_timeout: 30s, shutdown_grace: 5s }
steps:
  - name: record
    run: 'echo "$STAGEPOST_BUILD prev=$STAGEPOST_PREV_REV_APP" >> builds.txt'
${notify}
jobs:
  sync:
    schedule: "* * * * * *"
    branches: [staging]
    run: 'echo "sync run"'
branches:
${gitBranchYaml('staging', remoteUrl, 'main')}`,
  );
  return file;
}

test('a job every second does not push builds out: status, log and the next build still see the last build', async () => {
  const remote = makeGitRemote(t.dir);
  const first = remote.commit('main', 'first');
  const file = writeConfig(remote.url);
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildFinished('staging'));
  await daemon.waitFor(isJobFinished, { count: 4, what: 'four job runs' });

  const status = JSON.parse((await runCli(['status', '--json', '--config', file])).stdout) as {
    branches: Array<{ lastBuild: unknown }>;
  };
  expect(status.branches[0].lastBuild).toMatchObject({ id: 1, result: 'success' });
  const buildLog = await runCli(['log', 'staging', '--config', file]);
  expect(buildLog.code).toBe(0);
  expect(buildLog.stdout).toContain('stagepost build staging#1 started');
  const jobLog = await runCli(['log', 'staging', '--job', 'sync', '--config', file]);
  expect(jobLog.code).toBe(0);
  expect(jobLog.stdout).toMatch(/stagepost job sync for staging#\d+ started/);
  expect(jobLog.stdout).toContain('sync run');
  const firstRun = await runCli(['log', 'staging', '1', '--job', 'sync', '--config', file]);
  expect(firstRun.code).toBe(2);
  expect(firstRun.stderr).toMatch(/no log for staging run of job sync #1 \(kept: \d+, \d+\)/);
  const unknownJob = await runCli(['log', 'staging', '--job', 'nope', '--config', file]);
  expect(unknownJob.code).toBe(2);

  // Jobs keep `keep` runs of their own, numbered from 1; the build stays #1.
  const state = JSON.parse(
    readFileSync(path.join(t.dir, 'state/branches/staging.json'), 'utf8'),
  ) as BranchState;
  expect(state.builds.map((b) => b.id)).toEqual([1]);
  expect(state.jobs.sync.runs).toHaveLength(2);
  expect(state.jobs.sync.runs[0].id).toBeGreaterThanOrEqual(4);

  // The next commit builds #2 on top of the first build, not as a first build.
  remote.commit('main', 'second');
  await daemon.waitFor(isBuildFinished('staging'), { count: 2 });
  const builds = readFileSync(path.join(t.dir, 'sites/staging/builds.txt'), 'utf8');
  expect(builds.trim().split('\n')).toEqual(['1 prev=', `2 prev=${first}`]);
  expect(await daemon.stop()).toBe(0);
});

test('a first build mails the operators only; later builds mail the committers of their range', async () => {
  smtp = await startSmtp();
  const remote = makeGitRemote(t.dir);
  remote.commit('main', 'old upstream work', {
    author: 'Upstream',
    email: 'upstream@elsewhere.test',
  });
  const file = writeConfig(
    remote.url,
    `notify:
  - use: email
    transport: smtp://127.0.0.1:${smtp.port}
    from: "Staging <staging@example.test>"
    to: [ops@example.test]
    committers: true
    on: [success]`,
  );
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildFinished('staging'));
  const [firstMail] = await smtp.waitFor(1);
  expect(firstMail.rcpt).toEqual(['ops@example.test']);
  expect(firstMail.raw).toContain('old upstream work');

  // Jobs in between must not make the next build look like a first one.
  await daemon.waitFor(isJobFinished, { count: 3, what: 'three job runs' });
  remote.commit('main', 'team work', { author: 'Dana Dev', email: 'dana@example.test' });
  await daemon.waitFor(isBuildFinished('staging'), { count: 2 });
  const mails = await smtp.waitFor(2);
  expect(mails[1].rcpt.sort()).toEqual(['dana@example.test', 'ops@example.test']);
  expect(mails[1].raw).toContain('team work');
  expect(mails[1].raw).not.toContain('old upstream work');
  expect(await daemon.stop()).toBe(0);
});
