/**
 * Issue 16.11: deleting ci.yaml while the daemon runs is logged, and the
 * last good config goes on (polling and building); putting it back reloads.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote } from '../helpers/git.js';
import { DaemonProcess, isBuildFinished, stagingConfig } from '../helpers/cli.js';

let t: ReturnType<typeof tempDir>;
let daemon: DaemonProcess | null = null;
beforeEach(() => {
  t = tempDir();
});
afterEach(async () => {
  await daemon?.kill9();
  t.cleanup();
});

const GONE = 'ci.yaml is gone; keeping the last good config until it is back';

test('a deleted ci.yaml is logged and the daemon goes on building', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const file = stagingConfig(t.dir, remote.url);
  const text = readFileSync(file, 'utf8');
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildFinished('staging'), { what: 'the first build' });

  rmSync(file);
  const [gone] = await daemon.waitFor((e) => e.msg === GONE, { what: 'the warning' });
  expect(gone).toMatchObject({ level: 'warn', config: file });

  remote.commit('main');
  await daemon.waitFor(isBuildFinished('staging'), { count: 2, what: 'a build without ci.yaml' });
  expect(daemon.count((e) => e.msg === GONE)).toBe(1);

  writeFileSync(file, text);
  await daemon.waitFor((e) => e.msg === 'ci.yaml reloaded', { what: 'the reload' });
  expect(daemon.child.exitCode).toBeNull();
});
