/**
 * The HTTP side against the real daemon: the commit hook makes a branch with a
 * one-hour poll interval build a new commit at once, and builds nothing unchanged.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { freePort } from '../plugins/vcs-helpers.js';
import { gitBranchYaml, makeGitRemote } from '../helpers/git.js';
import { DaemonProcess, runCli, isBuildFinished, isBuildStarted } from '../helpers/cli.js';

let t: ReturnType<typeof tempDir>;
let daemon: DaemonProcess | null = null;
beforeEach(() => {
  t = tempDir();
});
afterEach(async () => {
  await daemon?.kill9();
  t.cleanup();
});

test('commit hook, forced build, auth, status and metrics over real HTTP', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  remote.commit('other');
  const port = await freePort();
  const token = 'hook-token-1234567890';
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
poll: { interval: 1h, timeout: 5s }
http:
  listen: ${port}
  token: \${STAGEPOST_TOKEN}
steps:
  - { name: record, run: 'echo "$STAGEPOST_BUILD $STAGEPOST_REV_APP" >> builds.txt' }
branches:
${gitBranchYaml('slow', remote.url, 'main')}${gitBranchYaml('other', remote.url, 'other')}`,
  );
  daemon = new DaemonProcess(file, { STAGEPOST_TOKEN: token });
  await daemon.waitFor(isBuildFinished(), { count: 2, what: 'first builds' });
  const base = `http://127.0.0.1:${port}`;
  const auth = { Authorization: `Bearer ${token}` };

  // Without or with a wrong token: 401; unknown branch: 404.
  expect((await fetch(`${base}/api/poll`, { method: 'POST' })).status).toBe(401);
  expect(
    (await fetch(`${base}/api/poll`, { method: 'POST', headers: { Authorization: 'Bearer nope' } }))
      .status,
  ).toBe(401);
  expect(
    (await fetch(`${base}/api/branches/nope/build`, { method: 'POST', headers: auth })).status,
  ).toBe(404);

  // The hook on an unchanged repository builds nothing.
  const quiet = await fetch(`${base}/api/poll`, { method: 'POST', headers: auth });
  expect(quiet.status).toBe(200);
  expect(daemon.count(isBuildStarted())).toBe(2);

  // A commit plus the hook: built now, not in an hour.
  const rev = remote.commit('main');
  const hooked = Date.now();
  expect(
    (await fetch(`${base}/api/poll?branch=slow`, { method: 'POST', headers: auth })).status,
  ).toBe(200);
  await daemon.waitFor(isBuildFinished('slow'), {
    count: 2,
    timeoutMs: 10_000,
    what: 'the hooked build',
  });
  expect(Date.now() - hooked).toBeLessThan(10_000);
  expect(daemon.count(isBuildStarted('other'))).toBe(1);

  // A forced build of an unchanged branch.
  expect(
    (await fetch(`${base}/api/branches/other/build`, { method: 'POST', headers: auth })).status,
  ).toBe(202);
  await daemon.waitFor(isBuildFinished('other'), { count: 2, what: 'the forced build' });

  // /api/status is the same document as `status --json`.
  const api = (await (await fetch(`${base}/api/status`)).json()) as {
    branches: Array<{
      name: string;
      sources: Array<{ revision: string }>;
      lastBuild: { id: number };
    }>;
  };
  const slow = api.branches.find((b) => b.name === 'slow')!;
  expect(slow.sources[0].revision).toBe(rev);
  expect(slow.lastBuild.id).toBe(2);
  const cli = JSON.parse(
    (await runCli(['status', '--json', '--config', file], { env: { STAGEPOST_TOKEN: token } }))
      .stdout,
  );
  expect(
    cli.branches.map((b: { name: string; lastBuild: { id: number } }) => [b.name, b.lastBuild.id]),
  ).toEqual(api.branches.map((b) => [b.name, b.lastBuild.id]));

  // The log of a build, and metrics with per-branch series.
  const log = await (await fetch(`${base}/api/branches/slow/builds/2/log`)).text();
  expect(log).toContain(rev.slice(0, 7));
  const metrics = await (await fetch(`${base}/metrics`)).text();
  expect(metrics).toMatch(/^stagepost_builds_total\{branch="slow",result="success"\} 2$/m);
  expect(metrics).toMatch(/^stagepost_polls_total\{branch="other"\} \d+$/m);
  const page = await (await fetch(`${base}/`)).text();
  expect(page).not.toContain(token);
  expect(await daemon.stop()).toBe(0);
});
