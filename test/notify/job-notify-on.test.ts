/**
 * `jobs.<name>.notify_on` decides which of a job's events reach the notifiers:
 * a failing job mails by default (`job-failure`), and `notify_on: []` mutes it.
 * `stagepost job` delivers before it exits, so after it the SMTP server has
 * received all it ever will from that run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote } from '../helpers/git.js';
import { runCli } from '../helpers/cli.js';
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

test('a failing job mails by default, and not at all with notify_on: []', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main', 'first');
  mkdirSync(path.join(t.dir, 'sites', 'b1'), { recursive: true });
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
steps: [{ name: noop, run: "true" }]
notify:
  - use: email
    transport: smtp://127.0.0.1:${smtp.port}
    from: "Staging <staging@example.test>"
    to: [ops@example.test]
    on: [job-failure]
jobs:
  quiet-sync:
    schedule: "0 2 * * *"
    branches: [b1]
    run: "exit 3"
    notify_on: []
  loud-sync:
    schedule: "0 2 * * *"
    branches: [b1]
    run: "exit 4"
branches:
  b1:
    dir: ./sites/b1
    sources: [{ name: app, vcs: git, url: "${remote.url}", ref: main }]
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
