/** The foreground commands as an operator uses them: check, poll, update --all, log, exit codes. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { gitBranchYaml, makeGitRemote } from '../helpers/git.js';
import { runCli } from '../helpers/cli.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir();
});
afterEach(() => t.cleanup());

function setup() {
  const remote = makeGitRemote(t.dir);
  const main = remote.commit('main');
  const feature = remote.commit('feature');
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
steps:
  - { name: build, run: 'echo "built $STAGEPOST_BRANCH at $STAGEPOST_REV_APP"' }
branches:
${gitBranchYaml('staging', remote.url, 'main')}${gitBranchYaml('branch1', remote.url, 'feature')}`,
  );
  return { remote, main, feature, file };
}

test('check: 0 for a valid file, 2 with file:line for a broken one, 1 with --remote when a ref is missing', async () => {
  const { file } = setup();
  const ok = await runCli(['check', '--config', file]);
  expect(ok.code).toBe(0);
  expect(ok.stdout).toMatch(/valid — 2 branch/);
  expect((await runCli(['check', '--remote', '--config', file])).code).toBe(0);

  writeFileSync(
    file,
    (await import('node:fs'))
      .readFileSync(file, 'utf8')
      .replace('ref: "feature"', 'ref: "no-such-branch"'),
  );
  const remote = await runCli(['check', '--remote', '--config', file]);
  expect(remote.code).toBe(1);
  expect(remote.stderr).toMatch(/branch1: ref missing: source app: .*no-such-branch/);

  writeFileSync(
    file,
    'version: 1\nnotify:\n  - use: email\n    to: [ops@example.com]\n    bogus: 1\nbranches: {}\n',
  );
  const plugin = await runCli(['check', '--config', file]);
  expect(plugin.code).toBe(2);
  expect(plugin.stderr).toMatch(/ci\.yaml:3: notify \(email\): bogus: unknown option/);

  writeFileSync(file, 'version: 1\nbranches:\n  ../evil:\n    dir: x\n');
  const bad = await runCli(['check', '--config', file]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:`));
  expect((await runCli(['check', '--config', path.join(t.dir, 'missing.yaml')])).code).toBe(2);
  expect((await runCli(['no-such-command'])).code).toBe(2);
});

test('poll shows built and remote revisions and builds nothing; update --all builds all with a summary', async () => {
  const { main, feature, file, remote } = setup();
  const before = await runCli(['poll', '--json', '--config', file]);
  expect(before.code).toBe(0);
  const doc = JSON.parse(before.stdout) as {
    branches: Array<{
      name: string;
      sources: Array<{ built: string | null; remote: string; changed: boolean }>;
    }>;
  };
  expect(
    doc.branches.map((b) => [
      b.name,
      b.sources[0].built,
      b.sources[0].remote,
      b.sources[0].changed,
    ]),
  ).toEqual([
    ['staging', null, main, true],
    ['branch1', null, feature, true],
  ]);
  // Start-up and the queries are timed apart (the bench reads these).
  const timing = (JSON.parse(before.stdout) as { timing: { startupMs: number; pollMs: number } })
    .timing;
  expect(timing.startupMs).toBeGreaterThan(0);
  expect(timing.pollMs).toBeGreaterThan(0);

  const all = await runCli(['update', '--all', '--config', file]);
  expect(all.code).toBe(0);
  expect(all.stderr).toMatch(/\[1\/2\] staging/);
  expect(all.stdout).toContain(`[staging] built staging at ${main}`);
  expect(all.stdout).toMatch(/staging\s+success\s+#1/);
  expect(all.stdout).toMatch(/branch1\s+success\s+#1/);

  const next = remote.commit('main');
  const again = await runCli(['update', '--all', '--config', file]);
  expect(again.stdout).toMatch(/staging\s+success\s+#2/);
  expect(again.stdout).toMatch(/branch1\s+up to date/);
  const after = JSON.parse(
    (await runCli(['poll', '--json', '--config', file])).stdout,
  ) as typeof doc;
  expect(after.branches[0].sources[0]).toMatchObject({
    built: next,
    remote: next,
    changed: false,
  });

  const log = await runCli(['log', 'staging', '--config', file]);
  expect(log.stdout).toContain(`built staging at ${next}`);
  const first = await runCli(['log', 'staging', '1', '--config', file]);
  expect(first.stdout).toContain(`built staging at ${main}`);
  expect((await runCli(['log', 'nope', '--config', file])).code).toBe(2);
  expect((await runCli(['update', '--config', file])).code).toBe(2);
});
