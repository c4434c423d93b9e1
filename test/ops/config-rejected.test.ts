/**
 * A rejected edit of ci.yaml is visible — /api/status, `status` — and the
 * read-only commands (`status`, `log`, `poll`) go on with the last good
 * config, saying so. Real git, the real daemon and CLI.
 */
import { readFileSync, watch, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote, gitBranchYaml } from '../helpers/git.js';
import { DaemonProcess, runCli, isBuildFinished } from '../helpers/cli.js';
import { freePort } from '../plugins/vcs-helpers.js';
import type { StatusDocument } from '../../src/api.js';

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

/** Resolves once the daemon's runtime.json carries a config rejection. */
function runtimeHasConfigError(stateDir: string): Promise<void> {
  const has = () => {
    try {
      const runtime = JSON.parse(readFileSync(path.join(stateDir, 'runtime.json'), 'utf8')) as {
        configError?: unknown;
      };
      return !!runtime.configError;
    } catch {
      return false;
    }
  };
  return new Promise((resolve) => {
    const watcher = watch(stateDir, () => {
      if (has()) resolve(watcher.close());
    });
    if (has()) resolve(watcher.close());
  });
}

function config(url: string, port: number, extra = ''): string {
  return `version: 1
state_dir: ./state
poll: { interval: 200ms, timeout: 5s }
http: { listen: ${port} }
steps: [{ name: hello, run: "echo built the site" }]
${extra}branches:
${gitBranchYaml('staging', url, 'main')}`;
}

test('a rejected edit shows in the API and status; status, log and poll keep working', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const port = await freePort();
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(file, config(remote.url, port));
  daemon = new DaemonProcess(file);
  await daemon.waitFor(isBuildFinished('staging'), { what: 'the first build' });

  // Line 6: a typo of a key.
  writeFileSync(file, config(remote.url, port, 'stepz: []\n'));
  await daemon.waitFor((e) => e.msg === 'ci.yaml edit rejected; keeping the last good config', {
    what: 'the rejection',
  });
  const api = (await (await fetch(`http://127.0.0.1:${port}/api/status`)).json()) as StatusDocument;
  expect(api.configError).toMatchObject({ file, line: 6 });
  expect(api.configError!.message).toMatch(/stepz/);
  expect(Date.parse(api.configError!.since)).toBeGreaterThan(0);
  expect(api.branches.map((b) => b.name)).toEqual(['staging']);

  // The daemon tells the CLI through its runtime file, written soon after news.
  await runtimeHasConfigError(path.join(t.dir, 'state'));
  const status = await runCli(['status', '--json', '--config', file]);
  expect(status.code).toBe(0);
  const doc = JSON.parse(status.stdout) as StatusDocument;
  expect(doc.configError).toEqual(api.configError);
  expect(doc.branches[0].lastBuild?.result).toBe('success');

  const text = await runCli(['status', '--config', file]);
  expect(text.code).toBe(0);
  expect(text.stdout).toMatch(
    new RegExp(`config: edit REJECTED at ${file}:6 since .* running on the last good config`),
  );
  expect(text.stderr).toMatch(/ci\.yaml edit rejected .*showing the last good config/);

  const log = await runCli(['log', 'staging', '--config', file]);
  expect(log.code).toBe(0);
  expect(log.stdout).toContain('built the site');
  expect(log.stderr).toMatch(/showing the last good config/);

  const poll = await runCli(['poll', '--config', file]);
  expect(poll.code).toBe(0);
  expect(poll.stdout).toMatch(/staging\s+app/);
  expect(poll.stderr).toMatch(/showing the last good config/);

  // Fixed: the rejection is gone everywhere.
  writeFileSync(file, config(remote.url, port));
  await daemon.waitFor((e) => e.msg === 'ci.yaml reloaded', { what: 'the fixed config' });
  const fixed = (await (
    await fetch(`http://127.0.0.1:${port}/api/status`)
  ).json()) as StatusDocument;
  expect(fixed.configError).toBeNull();
});

test('without a daemon, status still works on the last good config after a rejected edit', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(file, config(remote.url, await freePort()));
  expect((await runCli(['update', 'staging', '--config', file])).code).toBe(0);
  writeFileSync(file, config(remote.url, await freePort(), 'stepz: []\n'));
  const status = await runCli(['status', '--json', '--config', file]);
  expect(status.code).toBe(0);
  expect((JSON.parse(status.stdout) as StatusDocument).configError).toMatchObject({
    file,
    line: 6,
  });
  // A command that changes things still refuses.
  expect((await runCli(['update', 'staging', '--config', file])).code).toBe(2);
});
