/**
 * A local connection flood (issue 16, point 2): a thousand idle and half-sent
 * connections to the dashboard port while the daemon runs with 400 file
 * descriptors. The connections are capped and closed within the header
 * timeout, and the daemon keeps polling and building.
 */
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote } from '../helpers/git.js';
import { hasTool } from '../helpers/tools.js';
import { isBuildFinished, type LogEvent } from '../helpers/cli.js';
import { freePort } from '../plugins/vcs-helpers.js';
import { Daemons, RECORD_STEPS, gitBranchYaml, lines, writeCi } from './helpers.js';

const daemons = new Daemons();
let t: ReturnType<typeof tempDir>;
const sockets: net.Socket[] = [];
beforeEach(() => {
  t = tempDir('stagepost-flood-');
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await daemons.killAll();
  t.cleanup();
});

/** Open `n` connections; resolves with when each one was closed by the server (ms after open). */
export function flood(port: number, n: number, halfSent: boolean, read = true): Promise<number>[] {
  return Array.from({ length: n }, () => {
    const opened = Date.now();
    const s = net.connect(port, '127.0.0.1');
    sockets.push(s);
    s.on('error', () => undefined);
    // Read what the server sends (its 408 and end), else the end is never seen here.
    if (read) s.resume();
    if (halfSent) s.on('connect', () => s.write('GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
    return new Promise<number>((resolve) => s.on('close', () => resolve(Date.now() - opened)));
  });
}

test('1,000 idle and half-sent connections with 400 fds: all closed within seconds, the next commit is built, status answers', async () => {
  if (!hasTool('prlimit')) return;
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const port = await freePort();
  const file = writeCi(
    t.dir,
    `${RECORD_STEPS}http:
  listen: ${port}
branches:
${gitBranchYaml('b1', remote.url, 'main')}`,
  );
  const d = daemons.start(file);
  await d.waitFor(isBuildFinished('b1'));
  const baseline = readdirSync(`/proc/${d.child.pid}/fd`).length;
  // The daemon's own limit, lowered while it runs: a flood without a cap takes them all.
  execFileSync('prlimit', ['--pid', String(d.child.pid), '--nofile=400:400']);

  const closed = [...flood(port, 500, false), ...flood(port, 300, true)];
  // Clients that never read: only the daemon's fd count shows their server ends are gone.
  void Promise.all(flood(port, 200, false, false));
  await new Promise((r) => setTimeout(r, 1000));
  const rev = remote.commit('main');
  await d.waitFor(
    (e: LogEvent) =>
      e.msg === 'build finished' &&
      e.branch === 'b1' &&
      e.result === 'success' &&
      d.count(isBuildFinished('b1')) >= 2,
    { what: 'the commit built during the flood', timeoutMs: 20_000 },
  );
  expect(lines(path.join(t.dir, 'sites', 'b1', 'builds.txt')).pop()).toBe(`2 ${rev}`);

  const times = await Promise.all(closed);
  // Header timeout 5 s, checked every second; past the cap they are closed at once.
  expect(Math.max(...times)).toBeLessThan(9000);
  const fds = readdirSync(`/proc/${d.child.pid}/fd`).length;
  // The server's ends are closed too (a client that never reads cannot pin them).
  expect(fds).toBeLessThanOrEqual(baseline + 10);
  const status = (await (await fetch(`http://127.0.0.1:${port}/api/status`)).json()) as {
    branches: Array<{ name: string; lastBuild: { id: number } }>;
  };
  expect(status.branches[0].lastBuild.id).toBe(2);
  expect(d.count((e) => /EMFILE/.test(JSON.stringify(e)))).toBe(0);
  expect(d.child.exitCode).toBeNull();
}, 45_000);
