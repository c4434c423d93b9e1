/**
 * README's exit statuses for wrong arguments: an unknown branch, job or build
 * number is a usage error (2), and a bad `switch` argument is blamed, not
 * ci.yaml. The real CLI on a real git remote.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote, gitBranchYaml } from '../helpers/git.js';
import { runCli } from '../helpers/cli.js';

let t: ReturnType<typeof tempDir>;
let file: string;
beforeEach(() => {
  t = tempDir();
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
steps: [{ name: noop, run: "true" }]
jobs:
  sync: { schedule: "0 2 * * *", branches: all, run: "true" }
branches:
${gitBranchYaml('staging', remote.url, 'main')}`,
  );
});
afterEach(() => t.cleanup());

test.each([
  [['create', 'nosuch'], /branch "nosuch" is not in/],
  [['job', 'nosuch'], /job "nosuch" is not in/],
  [['job', 'sync', '--branch', 'nosuch'], /does not run for branch nosuch/],
  [['log', 'nosuch'], /branch "nosuch" is not in/],
  [['log', 'staging', '7'], /no log for staging build #7/],
  [['switch', 'nosuch', 'main'], /branch "nosuch" is not in/],
  [['mail', 'nosuch'], /branch "nosuch" is not in/],
])('stagepost %p is a usage error (exit 2)', async (args, message) => {
  const r = await runCli([...args, '--config', file]);
  expect(r.stderr).toMatch(message);
  expect(r.code).toBe(2);
});

test('switch to something that is not a URL blames the argument, not ci.yaml', async () => {
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
steps: [{ name: noop, run: "true" }]
branches:
  staging:
    dir: ./sites/staging
    sources:
      - { name: app, vcs: svn, url: "file://${t.dir}/svnrepo/trunk", path: src/app }
`,
  );
  const r = await runCli(['switch', 'staging', 'not/a/url', '--config', file]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/url "not\/a\/url" given to switch/);
  expect(r.stderr).not.toMatch(/in ci\.yaml/);
});
