/**
 * "No work per cycle that does not depend on a change": a daemon whose remotes
 * answer the same thing every cycle writes no file, yet `stagepost status`
 * still learns of a poll error within a second.
 */
import { renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote } from '../helpers/git.js';
import {
  DaemonProcess,
  runCli,
  isBuildFinished,
  stagingConfig,
  type LogEvent,
} from '../helpers/cli.js';
import { readRuntimeFile } from '../../src/daemon/runtime-file.js';

let t: ReturnType<typeof tempDir>;
let daemon: DaemonProcess | null = null;
beforeEach(() => {
  t = tempDir();
});
afterEach(async () => {
  await daemon?.kill9();
  daemon = null;
  t.cleanup();
});

const polled = (e: LogEvent) => e.msg === 'polled';

test('routine polls rewrite nothing; a poll error reaches runtime.json (and `status`) at once', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const file = stagingConfig(t.dir, remote.url);
  const stateDir = path.join(t.dir, 'state');
  const files = () =>
    ['runtime.json', 'poll.json', 'branches/staging.json'].map((f) => {
      const s = statSync(path.join(stateDir, f));
      return `${f} ${s.ino} ${s.mtimeMs}`;
    });
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildFinished('staging'), { what: 'the first build' });
  // Past the last write of the build's news (due 500 ms after it).
  const settled = daemon.count(polled);
  await daemon.waitFor(polled, { count: settled + 10, what: 'ten polls after the build' });
  const before = files();
  await daemon.waitFor(polled, { count: settled + 25, what: 'fifteen more polls' });
  expect(files()).toEqual(before);
  expect(readRuntimeFile(stateDir)?.lastPoll.staging?.error).toBeNull();

  renameSync(remote.bare, `${remote.bare}.gone`);
  await daemon.waitFor((e) => polled(e) && !!e.error, { what: 'a failing poll' });
  const deadline = Date.now() + 5000;
  while (!readRuntimeFile(stateDir)?.lastPoll.staging?.error && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  const status = JSON.parse((await runCli(['status', '--json', '--config', file])).stdout) as {
    branches: Array<{ lastPoll: { error: string | null } }>;
  };
  expect(status.branches[0].lastPoll.error).toMatch(/ls-remote/);
  expect(await daemon.stop()).toBe(0);
});
