// The floor under the daemon's per-query CPU: a bare Node process (no tsx, no
// modules) that starts `git ls-remote URL` the way src/util/exec.ts does
// (own process group, stdout/stderr piped), one after another; with
// `upload-pack DIR`, the `git upload-pack` the daemon runs for a repository
// on this machine, the ls-refs request on its stdin. Plain JS on purpose.
// Prints {"selfMs", "childrenMs"} per query as JSON.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const [mode, url, count = '100'] = process.argv.slice(2);
const pkt = (s) => (Buffer.byteLength(s) + 4).toString(16).padStart(4, '0') + s;
const request =
  pkt('command=ls-refs\n') + '0001' + pkt('peel\n') + pkt('ref-prefix refs/heads/\n') + '0000';
const tickMs =
  1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);
const cpu = () => {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  return { self: (f[11] + f[12]) * tickMs, children: (f[13] + f[14]) * tickMs };
};
const query = () =>
  new Promise((resolve, reject) => {
    const child =
      mode === 'upload-pack'
        ? spawn('git', ['upload-pack', '--stateless-rpc', '--', url], {
            detached: true,
            stdio: ['pipe', 'pipe', 'pipe'],
            env: { ...process.env, GIT_PROTOCOL: 'version=2' },
          })
        : spawn('git', ['ls-remote', '--', url], {
            detached: true,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
    child.stdin?.end(request);
    child.stdout.on('data', () => undefined);
    child.stderr.on('data', () => undefined);
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`git ${mode} exited ${code}`)),
    );
  });
for (let i = 0; i < 10; i++) await query();
const before = cpu();
for (let i = 0; i < Number(count); i++) await query();
const after = cpu();
console.log(
  JSON.stringify({
    selfMs: (after.self - before.self) / Number(count),
    childrenMs: (after.children - before.children) / Number(count),
  }),
);
