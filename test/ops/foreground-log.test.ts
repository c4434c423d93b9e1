/**
 * Builds run by the CLI while the daemon runs reach the daemon's log (the
 * service's journal) like its own. Real git, the real daemon and CLI.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote } from '../helpers/git.js';
import { DaemonProcess, isBuildFinished, runCli, stagingConfig } from '../helpers/cli.js';

let t: ReturnType<typeof tempDir>;
let daemon: DaemonProcess | null = null;
beforeEach(() => {
  t = tempDir();
});
afterEach(async () => {
  await daemon?.kill9();
  t.cleanup();
});

test('a build (update) and a job run by the CLI show in the daemon log as foreground runs', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const file = stagingConfig(t.dir, remote.url);
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildFinished('staging'), { what: 'the first build' });

  const update = await runCli(['update', 'staging', '--force', '--config', file]);
  expect(update.code).toBe(0);
  const [started] = await daemon.waitFor((e) => e.msg === 'foreground build started', {
    what: 'the CLI build started',
  });
  const [finished] = await daemon.waitFor((e) => e.msg === 'foreground build finished', {
    what: 'the CLI build finished',
  });
  expect(started).toMatchObject({ branch: 'staging', build: 2, kind: 'build', forced: true });
  expect(started.pid).not.toBe(daemon.child.pid);
  expect(finished).toMatchObject({ branch: 'staging', build: 2, kind: 'build', result: 'success' });
  // The daemon's own builds are not told twice.
  expect(daemon.count((e) => e.msg === 'foreground build started')).toBe(1);

  // A job run is numbered apart from builds: its own record, not build #1.
  writeFileSync(
    file,
    readFileSync(file, 'utf8').replace(
      'branches:',
      'jobs:\n  sync: { schedule: "0 0 1 1 *", branches: all, run: "sleep 0.3; exit 3" }\nbranches:',
    ),
  );
  await daemon.waitFor((e) => e.msg === 'ci.yaml reloaded', { what: 'the job in ci.yaml' });
  expect((await runCli(['job', 'sync', '--config', file])).code).toBe(1);
  const jobs = await daemon.waitFor((e) => e.msg === 'foreground build finished', {
    count: 2,
    what: 'the CLI job finished',
  });
  expect(jobs[1]).toMatchObject({
    branch: 'staging',
    build: 1,
    kind: 'job:sync',
    result: 'failure',
  });
});
