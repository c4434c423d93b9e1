/**
 * GET /api/branches/:b/history and the duration histograms against the real
 * daemon: steps and a job that sleep a known time.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { freePort } from '../plugins/vcs-helpers.js';
import { gitBranchYaml, makeGitRemote } from '../helpers/git.js';
import { DaemonProcess, isBuildFinished, runCli } from '../helpers/cli.js';
import type { RunHistory } from '../../src/api.js';

let t: ReturnType<typeof tempDir>;
let daemon: DaemonProcess | null = null;
beforeEach(() => {
  t = tempDir();
});
afterEach(async () => {
  await daemon?.kill9();
  t.cleanup();
});

test('history keeps builds and each job apart, with durations per step; histograms per branch and job', async () => {
  const remote = makeGitRemote(t.dir);
  const rev = remote.commit('main');
  const port = await freePort();
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
poll: { interval: 200ms, timeout: 5s }
http: { listen: ${port} }
steps:
  - { name: nap, run: 'sleep 0.4' }
  - { name: quick, run: 'true' }
jobs:
  sync:
    schedule: "* * * * * *"
    branches: [staging]
    run: 'sleep 0.2; echo synced'
branches:
${gitBranchYaml('staging', remote.url, 'main')}`,
  );
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildFinished('staging'));
  // A tick before the first checkout made the site's dir is skipped; count the runs after it.
  await daemon.waitFor((e) => e.msg === 'job finished' && e.result === 'success', {
    count: 2,
    what: 'two job runs',
  });
  const base = `http://127.0.0.1:${port}`;

  const response = await fetch(`${base}/api/branches/staging/history`);
  expect(response.status).toBe(200);
  const history = (await response.json()) as RunHistory;
  expect(history.builds).toHaveLength(1);
  const [build] = history.builds;
  expect(build).toMatchObject({ id: 1, kind: 'build', result: 'success', revisions: { app: rev } });
  expect(build.steps.map((s) => [s.name, s.result])).toEqual([
    ['checkout', 'success'],
    ['nap', 'success'],
    ['quick', 'success'],
  ]);
  const nap = build.steps.find((s) => s.name === 'nap')!;
  expect(nap.durationMs).toBeGreaterThanOrEqual(400);
  expect(build.durationMs).toBeGreaterThanOrEqual(
    build.steps.reduce((sum, s) => sum + s.durationMs, 0),
  );
  expect(Date.parse(build.startedAt)).toBeLessThanOrEqual(Date.now());
  const runs = history.jobs.sync.filter((r) => r.startedAt >= build.startedAt);
  expect(runs.length).toBeGreaterThanOrEqual(2);
  // Numbered on from the runs before them, newest first.
  expect(runs.map((r) => r.id)).toEqual(runs.map((_, i) => runs[0].id - i));
  for (const r of runs) {
    expect(r).toMatchObject({ kind: 'job:sync', result: 'success' });
    expect(r.durationMs).toBeGreaterThanOrEqual(200);
    expect(r.steps).toEqual([expect.objectContaining({ name: 'sync', result: 'success' })]);
  }
  expect((await fetch(`${base}/api/branches/nope/history`)).status).toBe(404);

  const jobLog = await fetch(
    `${base}/api/branches/staging/jobs/sync/runs/${runs[runs.length - 1].id}/log`,
  );
  expect(jobLog.status).toBe(200);
  expect(await jobLog.text()).toContain('synced');
  expect((await fetch(`${base}/api/branches/staging/jobs/sync/runs/999/log`)).status).toBe(404);

  const metrics = await (await fetch(`${base}/metrics`)).text();
  expect(metrics).toMatch(/^stagepost_build_duration_seconds_count\{branch="staging"\} 1$/m);
  const jobCount =
    /^stagepost_job_duration_seconds_count\{branch="staging",job="sync"\} (\d+)$/m.exec(metrics);
  expect(Number(jobCount?.[1])).toBeGreaterThanOrEqual(2);
  // Every run of about 0.2 s falls in the first bucket (1 s).
  const firstBucket =
    /^stagepost_job_duration_seconds_bucket\{le="1",branch="staging",job="sync"\} (\d+)$/m.exec(
      metrics,
    );
  expect(Number(firstBucket?.[1])).toBe(Number(jobCount?.[1]));
  expect(await daemon.stop()).toBe(0);

  // The same history on the terminal.
  const json = await runCli(['history', 'staging', '--json', '--config', file]);
  expect(json.code).toBe(0);
  const printed = JSON.parse(json.stdout) as RunHistory;
  expect(printed.builds).toEqual(history.builds);
  expect(printed.jobs.sync.length).toBeGreaterThanOrEqual(runs.length);
  const builds = await runCli(['history', 'staging', '--config', file]);
  expect(builds.stdout).toMatch(
    new RegExp(
      `^1\\s+success\\s+\\S+ \\S+\\s+\\S+\\s+app@${rev.slice(0, 7)}\\s+checkout \\S+, nap \\S+, quick \\S+$`,
      'm',
    ),
  );
  expect(builds.stdout).toMatch(/^median: \S+ \(of 1 successful\)$/m);
  expect(builds.stdout).toMatch(/^job sync: \d+ runs kept, median: \S+ \(of \d+ successful\)/m);
  const jobRuns = await runCli(['history', 'staging', '--job', 'sync', '--config', file]);
  // The runs after the first build (run 1 may be a tick that came before it).
  for (const r of runs)
    expect(jobRuns.stdout).toMatch(new RegExp(`^${r.id}\\s+success\\s+.*\\s+sync \\S+$`, 'm'));
  expect((await runCli(['history', 'staging', '--job', 'nope', '--config', file])).code).toBe(2);
  const status = await runCli(['status', '--config', file]);
  const [header, row] = status.stdout.split('\n');
  const at = header.indexOf('MEDIAN');
  expect(at).toBeGreaterThan(0);
  expect(row.slice(at).split(/\s+/)[0]).toMatch(/^\d+(\.\d)?(ms|s)$/);
});
