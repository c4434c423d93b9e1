/**
 * `stagepost demo` as a user runs it: the real CLI in a child process, real
 * git (and svn when installed), the real daemon, app servers and mail. It must
 * build all three sites, write mail, show a failure on branch2, serve the
 * customer links, and on Ctrl-C exit 0 leaving nothing running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { BIN } from '../helpers/cli.js';
import { hasTool, describeIf } from '../helpers/tools.js';
import { resetSandbox } from '../../src/demo/sandbox.js';

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

/** A process group still runs; an unreaped zombie leader (init in a container may never reap) does not count. */
function groupRuns(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return readFileSync(`/proc/${pgid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return true;
  }
}

interface Build {
  kind: string;
  result: string | null;
}
function builds(sandbox: string, branch: string): Build[] {
  const file = path.join(sandbox, 'state', 'branches', `${branch}.json`);
  if (!existsSync(file)) return [];
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { builds: Build[] }).builds;
  } catch {
    return [];
  }
}
/** Processes whose working directory is inside `dir` (Linux /proc; elsewhere none can be seen). */
function processesIn(dir: string): string[] {
  if (!existsSync('/proc/self/cwd')) return [];
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      if (cwd === dir || cwd.startsWith(dir + path.sep))
        found.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
    } catch {
      /* gone, or not ours */
    }
  }
  return found;
}
const emlFiles = (dir: string) =>
  existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.eml')) : [];
const appPidFiles = (sandbox: string) =>
  BRANCHES.map((b) => path.join(sandbox, 'sites', b, 'var', 'app-server.pid')).filter((f) =>
    existsSync(f),
  );

/** Poll `check` until it returns a value, the child dies, or the deadline passes. */
async function until<T>(
  what: string,
  child: ChildProcess,
  output: () => string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (child.exitCode !== null)
      throw new Error(`demo exited (${child.exitCode}) while waiting for ${what}\n${output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const d = describeIf(hasTool('git'));

d('stagepost demo', () => {
  let t: ReturnType<typeof tempDir>;
  let child: ChildProcess | null = null;
  let sandbox = '';
  const strays: number[] = [];
  beforeEach(() => {
    t = tempDir('stagepost-demo-');
  });
  afterEach(() => {
    // Only when the test failed half-way: leave nothing behind.
    if (child && child.exitCode === null) child.kill('SIGKILL');
    const pids = [
      ...strays.splice(0),
      ...appPidFiles(sandbox).map((f) => Number(readFileSync(f, 'utf8'))),
    ];
    for (const pid of pids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    t.cleanup();
  });

  test('never removes a directory that is not a demo sandbox', async () => {
    writeFileSync(path.join(t.dir, 'precious.txt'), 'keep me');
    await expect(resetSandbox(t.dir)).rejects.toMatchObject({ code: 'EEXISTS' });
    expect(readFileSync(path.join(t.dir, 'precious.txt'), 'utf8')).toBe('keep me');
  });

  test('builds three sites, mails, commits, and Ctrl-C ends everything with exit 0', async () => {
    const port = await freePort();
    sandbox = path.join(t.dir, 'sandbox');
    // What a demo killed with -9 leaves: its sandbox and an app server still running.
    const leftoverVar = path.join(sandbox, 'sites', 'branch1', 'var');
    mkdirSync(leftoverVar, { recursive: true });
    writeFileSync(path.join(sandbox, '.stagepost-demo-sandbox'), '');
    writeFileSync(path.join(sandbox, 'leftover.txt'), 'from the earlier demo');
    const leftover = spawn(
      process.execPath,
      ['-e', 'setInterval(() => {}, 1000)', 'app-server.mjs'],
      { detached: true, stdio: 'ignore' },
    );
    leftover.unref();
    strays.push(leftover.pid!);
    writeFileSync(path.join(leftoverVar, 'app-server.pid'), `${leftover.pid}\n`);
    let stdout = '';
    let stderr = '';
    const c = spawn(process.execPath, [BIN, 'demo', '--port', String(port)], {
      cwd: t.dir,
      env: {
        ...process.env,
        STAGEPOST_DEMO_DIR: sandbox,
        STAGEPOST_DEMO_COMMIT_INTERVAL: '1000',
        STAGEPOST_LOG_FORMAT: 'json',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    c.stdout.on('data', (x) => (stdout += x));
    c.stderr.on('data', (x) => (stderr += x));
    const exited = new Promise<number | null>((r) => c.on('exit', (code) => r(code)));
    const output = () => `--- stdout\n${stdout}\n--- stderr (tail)\n${stderr.slice(-6000)}`;

    const status = await until(
      'the dashboard',
      c,
      output,
      async () => {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/api/status`);
          return res.ok ? ((await res.json()) as { branches: Array<{ name: string }> }) : undefined;
        } catch {
          return undefined;
        }
      },
      30_000,
    );
    expect(status.branches.map((b) => b.name).sort()).toEqual([...BRANCHES].sort());
    expect(groupRuns(leftover.pid!)).toBe(false);
    expect(existsSync(path.join(sandbox, 'leftover.txt'))).toBe(false);

    // Every app server seen while the demo runs (restarts replace them).
    const seen = new Set<number>();
    const note = () => {
      for (const f of appPidFiles(sandbox)) {
        const pid = Number(readFileSync(f, 'utf8'));
        if (pid > 1) seen.add(pid);
      }
    };
    await until(
      'a successful build of every site, a failed one of branch2, and mail',
      c,
      output,
      () => {
        note();
        const built = BRANCHES.every((b) =>
          builds(sandbox, b).some((x) => x.kind === 'build' && x.result === 'success'),
        );
        const broke = builds(sandbox, 'branch2').some(
          (x) => x.kind === 'build' && x.result === 'failure',
        );
        return built && broke && emlFiles(path.join(sandbox, 'mail')).length > 0 ? true : undefined;
      },
      60_000,
    );
    expect(stdout).toMatch(
      /commit \w+ to branch2 \(git feature-y\) by .*: Break the build on purpose/,
    );

    // The customer link of the dashboard leads through the site proxy to the
    // branch's app server (retried: a commit may be restarting it right now).
    const siteUrl = /branch sites\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(stdout)?.[1];
    expect(siteUrl).toBeDefined();
    const page = await until(
      'the branch1 site through the proxy',
      c,
      output,
      async () => {
        note();
        const res = await fetch(`${siteUrl}/branch1/osf/`);
        return res.status === 200 ? res.text() : undefined;
      },
      20_000,
    );
    expect(page).toMatch(/branch site <b>branch1<\/b>/i);
    note();
    expect(seen.size).toBeGreaterThanOrEqual(3);

    c.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(stdout).toMatch(/stopped: the daemon and \d+ app servers?/);
    expect([...seen].filter((pid) => groupRuns(pid))).toEqual([]);
    expect(processesIn(sandbox)).toEqual([]);
    await expect(fetch(`http://127.0.0.1:${port}/api/status`)).rejects.toThrow();
    expect(existsSync(path.join(sandbox, 'demo.pid'))).toBe(false);
  }, 120_000);
  test.each(['SIGINT', 'SIGHUP'] as const)(
    'its reader gone (npm run demo | tee log), %s still ends every app server',
    async (signal) => {
      const port = await freePort();
      sandbox = path.join(t.dir, 'sandbox');
      let stderr = '';
      const c = spawn(process.execPath, [BIN, 'demo', '--port', String(port)], {
        cwd: t.dir,
        env: { ...process.env, STAGEPOST_DEMO_DIR: sandbox, STAGEPOST_LOG_FORMAT: 'json' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = c;
      c.stdout.resume();
      c.stderr.on('data', (x) => (stderr += x));
      const exited = new Promise<number | null>((r) => c.on('exit', (code) => r(code)));
      const pids = await until(
        'an app server of every site',
        c,
        () => stderr.slice(-6000),
        () => {
          const files = appPidFiles(sandbox);
          return files.length === BRANCHES.length
            ? files.map((f) => Number(readFileSync(f, 'utf8')))
            : undefined;
        },
        90_000,
      );
      expect(pids.filter((pid) => groupRuns(pid))).toHaveLength(BRANCHES.length);
      // tee died with the Ctrl-C: every later write of the demo meets a closed pipe.
      c.stdout.destroy();
      c.kill(signal);
      expect(await exited).toBe(0);
      expect(stderr).not.toMatch(/EPIPE/);
      expect(pids.filter((pid) => groupRuns(pid))).toEqual([]);
      expect(processesIn(sandbox)).toEqual([]);
    },
    120_000,
  );
});
