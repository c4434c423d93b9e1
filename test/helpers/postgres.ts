import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './tmp.js';
import { freePort } from '../plugins/vcs-helpers.js';

/**
 * A real PostgreSQL server for a test, in a fresh temp dir on a free port of
 * 127.0.0.1, trusting every local login of the superuser `stagepost`.
 *
 * Cleanup: call `destroy()` in the test's `afterAll` (it is safe to call
 * twice, and on a server that is already stopped):
 *
 *     let pg: PgServer | null = null;
 *     beforeAll(async () => (pg = await startPostgres()));
 *     afterAll(async () => pg?.destroy());
 *
 * As a last resort, a server still running when the test process exits is
 * stopped (`-m immediate`) and its dir removed by an exit handler; `destroyAllPostgres()` does
 * the same for every server this module started.
 *
 * Tools: initdb and pg_ctl from Debian's `postgresql` package (found with
 * `pg_config --bindir`, then /usr/lib/postgresql/<newest>/bin, then PATH).
 * As root they run as the `postgres` system user through `runuser`, since
 * PostgreSQL refuses to run as root. Missing tools skip the test loudly on a
 * laptop and fail it under CI (see tools.ts).
 */
export interface PgServer {
  /** `postgres://stagepost@127.0.0.1:PORT/postgres` */
  url: string;
  port: number;
  dataDir: string;
  /** The server's log file (pg_ctl -l), for failure messages. */
  logFile: string;
  /** `pg_ctl stop -m fast -w`; a no-op when the server is not running. */
  stop(): Promise<void>;
  /** Starts the server again, on the same port and data dir. */
  start(): Promise<void>;
  /** `pg_ctl stop -m immediate -w` (a crash: recovery runs on the next start). */
  kill(): Promise<void>;
  /** Stops the server (however it can) and removes its temp dir. */
  destroy(): Promise<void>;
}

const INSTALL_HINT =
  'install it: `apt-get install postgresql` (Debian/Ubuntu), `brew install postgresql` (macOS)';

/** Milliseconds any one initdb / pg_ctl run may take before its process group is killed. */
const STEP_TIMEOUT_MS = 60_000;

interface Tools {
  bin: string;
  /** When root: the command prefix that runs a program as `postgres`, and its ids. */
  asUser: { prefix: string[]; uid: number; gid: number } | null;
}

function which(name: string): string | null {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  const found = r.status === 0 ? r.stdout.trim() : '';
  return found && path.isAbsolute(found) ? found : null;
}

function hasBoth(dir: string): boolean {
  return existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl'));
}

/** The directory holding initdb and pg_ctl: Debian's versioned dir first, PATH last. */
function findBinDir(): string | null {
  const pgConfig = which('pg_config');
  if (pgConfig) {
    const r = spawnSync(pgConfig, ['--bindir'], { encoding: 'utf8', timeout: 10_000 });
    const dir = r.status === 0 ? r.stdout.trim() : '';
    if (dir && hasBoth(dir)) return dir;
  }
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const dir = path.join(root, v, 'bin');
      if (hasBoth(dir)) return dir;
    }
  }
  const initdb = which('initdb');
  if (initdb && hasBoth(path.dirname(initdb))) return path.dirname(initdb);
  return null;
}

function idOf(user: string, flag: '-u' | '-g'): number | null {
  const r = spawnSync('id', [flag, user], { encoding: 'utf8', timeout: 10_000 });
  const n = Number(r.stdout.trim());
  return r.status === 0 && Number.isInteger(n) ? n : null;
}

let cachedTools: Tools | { missing: string } | undefined;

function lookUpTools(): Tools | { missing: string } {
  const bin = findBinDir();
  if (!bin)
    return {
      missing:
        '"initdb" and "pg_ctl" (looked in `pg_config --bindir`, /usr/lib/postgresql/*/bin, PATH)',
    };
  if (process.getuid?.() !== 0) return { bin, asUser: null };
  // PostgreSQL will not run as root: run it as the package's system user.
  const runuser = which('runuser');
  if (!runuser) return { missing: '"runuser" (util-linux), needed to run PostgreSQL as root' };
  const uid = idOf('postgres', '-u');
  const gid = idOf('postgres', '-g');
  if (uid === null || gid === null)
    return { missing: 'the "postgres" system user (the postgresql package creates it)' };
  return { bin, asUser: { prefix: [runuser, '-u', 'postgres', '--'], uid, gid } };
}

function tools(): Tools | { missing: string } {
  return (cachedTools ??= lookUpTools());
}

/**
 * Whether a real PostgreSQL can be started here. Missing tools: a loud
 * warning on a laptop (false), an error under CI. For `describeIf(hasPostgres())`.
 */
export function hasPostgres(): boolean {
  const t = tools();
  if (!('missing' in t)) return true;
  if (process.env.CI === 'true')
    throw new Error(
      `PostgreSQL tests need ${t.missing}: not found (CI=true: missing tools fail the run); ${INSTALL_HINT}`,
    );
  console.warn(
    `\n*** SKIPPING tests that need PostgreSQL: ${t.missing} not found; ${INSTALL_HINT} ***\n`,
  );
  return false;
}

interface RunResult {
  code: number | null;
  output: string;
}

/**
 * Runs a program (as `postgres` when we are root) in its own process group,
 * killing the whole group if it outlives STEP_TIMEOUT_MS.
 */
function run(t: Tools, program: string, args: string[], cwd: string): Promise<RunResult> {
  const file = path.join(t.bin, program);
  const argv = t.asUser ? [...t.asUser.prefix, file, ...args] : [file, ...args];
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C' };
    // The caller's libpq settings must not steer the test server.
    for (const k of Object.keys(env)) if (k.startsWith('PG')) delete env[k];
    const child = spawn(argv[0], argv.slice(1), {
      cwd,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, STEP_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (timedOut)
        reject(
          new Error(
            `${program} ${args.join(' ')} timed out after ${STEP_TIMEOUT_MS} ms\n${output}`,
          ),
        );
      else resolve({ code, output });
    });
  });
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A value for postgresql.conf: a single-quoted string. */
function confString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** Servers started by this module and not yet destroyed, for the exit handler. */
const live = new Set<{ tools: Tools; dataDir: string; cwd: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const s of live) {
      const file = path.join(s.tools.bin, 'pg_ctl');
      const args = ['stop', '-D', s.dataDir, '-m', 'immediate', '-w', '-t', '10'];
      const argv = s.tools.asUser ? [...s.tools.asUser.prefix, file, ...args] : [file, ...args];
      spawnSync(argv[0], argv.slice(1), { cwd: s.cwd, stdio: 'ignore', timeout: 15_000 });
      if (!process.env.KEEP_TMP) rmSync(s.cwd, { recursive: true, force: true });
    }
  });
}

/** Stops every server this module started and has not destroyed. */
export async function destroyAllPostgres(): Promise<void> {
  for (const s of [...servers]) await s.destroy();
}
const servers = new Set<PgServer>();

/**
 * initdb into a fresh temp dir and start a server on a free port. Null when
 * the tools are missing on a laptop (after a loud warning); under CI that
 * throws instead. The caller must `destroy()` it (see PgServer).
 */
export async function startPostgres(opts: { name?: string } = {}): Promise<PgServer | null> {
  if (!hasPostgres()) return null;
  const t = tools() as Tools;
  const name = (opts.name ?? 'pg').replace(/[^A-Za-z0-9_-]/g, '_');
  const tmp = tempDir(`stagepost-${name}-`);
  const root = tmp.dir;
  const dataDir = path.join(root, 'data');
  const logFile = path.join(root, 'postgres.log');
  const entry = { tools: t, dataDir, cwd: root };
  let running = false;

  if (t.asUser) {
    chownSync(root, t.asUser.uid, t.asUser.gid);
    // The postgres user must reach the dir: every parent must be searchable.
    const probe = spawnSync(t.asUser.prefix[0], [...t.asUser.prefix.slice(1), 'test', '-w', root], {
      timeout: 10_000,
    });
    if (probe.status !== 0) {
      tmp.cleanup();
      throw new Error(
        `the postgres user cannot write ${root}: make its parents searchable (o+x) or set TMPDIR=/tmp`,
      );
    }
  }

  const pgCtl = async (args: string[], what: string) => {
    const r = await run(t, 'pg_ctl', ['-D', dataDir, ...args], root);
    if (r.code !== 0)
      throw new Error(
        `pg_ctl ${what} failed (${r.code}):\n${r.output}\n--- log:\n${tail(logFile)}`,
      );
    return r;
  };

  const isRunning = () => existsSync(path.join(dataDir, 'postmaster.pid'));

  const startOnce = async () => {
    await pgCtl(['start', '-w', '-t', '30', '-l', logFile], 'start');
    running = true;
    live.add(entry);
  };

  try {
    const init = await run(
      t,
      'initdb',
      ['-D', dataDir, '-A', 'trust', '-U', 'stagepost', '--no-sync', '-E', 'UTF8', '--locale=C'],
      root,
    );
    if (init.code !== 0) throw new Error(`initdb failed (${init.code}):\n${init.output}`);
  } catch (err) {
    tmp.cleanup();
    throw err;
  }

  // Settings go in postgresql.conf rather than `pg_ctl -o`: pg_ctl hands -o
  // to /bin/sh, and the later settings in the file win over initdb's.
  const configure = (port: number) =>
    appendFileSync(
      path.join(dataDir, 'postgresql.conf'),
      [
        '',
        '# stagepost test harness',
        "listen_addresses = '127.0.0.1'",
        `port = ${port}`,
        `unix_socket_directories = ${confString(root)}`,
        'fsync = off',
        'max_connections = 200',
        '',
      ].join('\n'),
    );

  installExitHook();
  let port = await freePort();
  configure(port);
  try {
    await startOnce();
  } catch (err) {
    // Someone else took the port between freePort and the bind: once more.
    if (
      !/could not bind|already in use|could not create any TCP\/IP sockets/i.test(
        tail(logFile, 200),
      )
    ) {
      tmp.cleanup();
      throw err;
    }
    port = await freePort();
    configure(port);
    try {
      await startOnce();
    } catch (err2) {
      tmp.cleanup();
      throw err2;
    }
  }

  let destroyed = false;
  const server: PgServer = {
    url: `postgres://stagepost@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    logFile,
    async stop() {
      if (!isRunning()) return;
      await pgCtl(['stop', '-m', 'fast', '-w', '-t', '30'], 'stop');
      running = false;
    },
    async start() {
      if (destroyed) throw new Error('this PostgreSQL server was destroyed');
      await startOnce();
    },
    async kill() {
      if (!isRunning()) return;
      await pgCtl(['stop', '-m', 'immediate', '-w', '-t', '30'], 'stop -m immediate');
      running = false;
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      servers.delete(server);
      try {
        if (running || isRunning()) {
          try {
            await pgCtl(['stop', '-m', 'fast', '-w', '-t', '10'], 'stop');
          } catch {
            await pgCtl(['stop', '-m', 'immediate', '-w', '-t', '10'], 'stop -m immediate');
          }
        }
      } finally {
        running = false;
        live.delete(entry);
        tmp.cleanup();
      }
    },
  };
  servers.add(server);
  return server;
}
