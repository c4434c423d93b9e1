/**
 * The CLI as a Unix tool: a reader that goes away (`stagepost status | head -1`)
 * ends the command quietly with status 0. The real CLI, real git.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote, gitBranchYaml } from '../helpers/git.js';
import { BIN } from '../helpers/cli.js';

let t: ReturnType<typeof tempDir>;
let file: string;
beforeEach(() => {
  t = tempDir();
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  file = path.join(t.dir, 'ci.yaml');
  const branches = Array.from({ length: 40 }, (_, i) =>
    gitBranchYaml(`site${i}`, remote.url, 'main', `    port: ${7000 + i}\n    customers: [a, b]\n`),
  ).join('');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
site: { base_url: "https://staging.example.com" }
steps: [{ name: noop, run: "true" }]
branches:
${branches}`,
  );
});
afterEach(() => t.cleanup());

/** Run the CLI with a stdout whose reader is gone before the command writes. */
function withClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: t.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`stagepost ${args.join(' ')} hung with a closed stdout`));
    }, 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

test.each([
  [['status']],
  [['status', '--json']],
  [['poll', '--json']],
  [['proxy-config', '--http']],
])('stagepost %p with a closed stdout ends quietly with 0', async (args) => {
  const r = await withClosedStdout([...args, '--config', file]);
  expect(r.stderr).not.toMatch(/EPIPE|Error|at /);
  expect(r.code).toBe(0);
});
