/**
 * `stagepost demo` as a user runs it: the real CLI in a child process, real
 * git (and svn when installed), the real daemon, app servers and mail. It must
 * build all three sites, write mail, show a failure on branch2, serve the
 * customer links, and on Ctrl-C exit 0 leaving nothing running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { BIN } from '../helpers/cli.js';
import { hasTool, describeIf } from '../helpers/tools.js';

const BRANCHES = ['staging', 'branch1', 'branch2'];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function groupAlive(pgid: number): boolean {
  try { process.kill(-pgid, 0); return true; } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM'; }
}

interface Build { kind: string; result: string | null }
function builds(sandbox: string, branch: string): Build[] {
  const file = path.join(sandbox, 'state', 'branches', `${branch}.json`);
  if (!existsSync(file)) return [];
  try { return (JSON.parse(readFileSync(file, 'utf8')) as { builds: Build[] }).builds; } catch { return []; }
}
const emlFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.eml')) : []);
const appPidFiles = (sandbox: string) => BRANCHES.map((b) => path.join(sandbox, 'sites', b, 'var', 'app-server.pid')).filter((f) => existsSync(f));

/** Poll `check` until it returns a value, the child dies, or the deadline passes. */
async function until<T>(what: string, child: ChildProcess, output: () => string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (child.exitCode !== null) throw new Error(`demo exited (${child.exitCode}) while waiting for ${what}\n${output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const d = describeIf(hasTool('git'));

d('stagepost demo', () => {
  let t: ReturnType<typeof tempDir>;
  let child: ChildProcess | null = null;
  let sandbox = '';
  beforeEach(() => { t = tempDir('stagepost-demo-'); });
  afterEach(() => {
    // Only when the test failed half-way: leave nothing behind.
    if (child && child.exitCode === null) child.kill('SIGKILL');
    for (const f of appPidFiles(sandbox)) { try { process.kill(-Number(readFileSync(f, 'utf8')), 'SIGKILL'); } catch { /* gone */ } }
    t.cleanup();
  });

  test('builds three sites, mails, commits, and Ctrl-C ends everything with exit 0', async () => {
    const port = await freePort();
    sandbox = path.join(t.dir, 'sandbox');
    let stdout = '';
    let stderr = '';
    const c = spawn(process.execPath, [BIN, 'demo', '--port', String(port)], {
      cwd: t.dir,
      env: { ...process.env, STAGEPOST_DEMO_DIR: sandbox, STAGEPOST_DEMO_COMMIT_INTERVAL: '1000', STAGEPOST_LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    c.stdout!.on('data', (x) => (stdout += x));
    c.stderr!.on('data', (x) => (stderr += x));
    const exited = new Promise<number | null>((r) => c.on('exit', (code) => r(code)));
    const output = () => `--- stdout\n${stdout}\n--- stderr (tail)\n${stderr.slice(-6000)}`;

    const status = await until('the dashboard', c, output, async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/status`);
        return res.ok ? ((await res.json()) as { branches: Array<{ name: string }> }) : undefined;
      } catch { return undefined; }
    }, 60_000);
    expect(status.branches.map((b) => b.name).sort()).toEqual([...BRANCHES].sort());

    await until('a successful build of every site, a failed one of branch2, and mail', c, output, async () => {
      const built = BRANCHES.every((b) => builds(sandbox, b).some((x) => x.kind === 'build' && x.result === 'success'));
      const broke = builds(sandbox, 'branch2').some((x) => x.kind === 'build' && x.result === 'failure');
      return built && broke && emlFiles(path.join(sandbox, 'mail')).length > 0 ? true : undefined;
    }, 90_000);
    expect(stdout).toMatch(/commit \w+ to branch2 \(git feature-y\) by .*: Break the build on purpose/);

    // The customer link of the dashboard leads through the site proxy to the branch's app server.
    const siteUrl = /branch sites\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(stdout)?.[1];
    expect(siteUrl).toBeDefined();
    const page = await fetch(`${siteUrl}/branch1/osf/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/branch site <b>branch1<\/b>/i);

    const pids = appPidFiles(sandbox).map((f) => Number(readFileSync(f, 'utf8')));
    expect(pids.length).toBe(3);
    expect(pids.every(groupAlive)).toBe(true);

    c.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(stdout).toMatch(/stopped: the daemon and \d+ app servers?/);
    expect(pids.filter(groupAlive)).toEqual([]);
    await expect(fetch(`http://127.0.0.1:${port}/api/status`)).rejects.toThrow();
    expect(existsSync(path.join(sandbox, 'demo.pid'))).toBe(false);
  }, 120_000);
});
