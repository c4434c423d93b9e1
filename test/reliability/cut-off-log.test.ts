/**
 * A build cut off by kill -9: after the restart its log ends with why it
 * stopped and which build redid it. Real git, the real daemon, kill -9.
 */
import { existsSync, readFileSync, watch, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote, gitBranchYaml } from '../helpers/git.js';
import { DaemonProcess, isBuildFinished, isBuildStarted } from '../helpers/cli.js';
import { StateStore } from '../../src/state/store.js';

let t: ReturnType<typeof tempDir>;
let daemons: DaemonProcess[] = [];
beforeEach(() => {
  t = tempDir();
  daemons = [];
});
afterEach(async () => {
  for (const d of daemons) await d.kill9();
  t.cleanup();
});

test('the log of a build cut off by kill -9 names the build that redid it', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const file = path.join(t.dir, 'ci.yaml');
  // The first run of the step hangs (and is killed with the daemon); the redo passes.
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
poll: { interval: 100ms, timeout: 5s }
steps:
  - name: slow-once
    run: 'echo step begins; if [ ! -e ../../mark ]; then touch ../../mark; sleep 60; fi; echo step ends'
branches:
${gitBranchYaml('b1', remote.url, 'main')}`,
  );
  const first = new DaemonProcess(file);
  daemons.push(first);
  await first.waitFor(isBuildStarted('b1'), { what: 'the first build' });
  const mark = path.join(t.dir, 'mark');
  // The step is past its touch: the build is in its long sleep.
  await new Promise<void>((resolve) => {
    const watcher = watch(t.dir, () => {
      if (existsSync(mark)) resolve(watcher.close());
    });
    if (existsSync(mark)) resolve(watcher.close());
  });
  await first.kill9();

  const second = new DaemonProcess(file);
  daemons.push(second);
  await second.waitFor(isBuildFinished('b1'), { what: 'the redo' });
  const store = new StateStore(path.join(t.dir, 'state'));
  const [redo, cut] = store.readBranch('b1').builds;
  expect([cut.result, redo.result]).toEqual(['interrupted', 'success']);
  const lines = readFileSync(store.logFile('b1', cut.id), 'utf8').trimEnd().split('\n');
  expect(lines.at(-2)).toMatch(
    new RegExp(
      `^==> cut off: stagepost \\(pid ${first.child.pid}\\) ended while this ran; 1 process group`,
    ),
  );
  expect(lines.at(-1)).toBe(`==> redone as build #${redo.id}`);
});
