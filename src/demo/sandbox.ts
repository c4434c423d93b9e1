import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { StagepostError } from '../errors.js';

/**
 * The demo's sandbox: `./.stagepost-demo` (or $STAGEPOST_DEMO_DIR). A marker
 * file says a directory is one, so the reset never removes anything else; a
 * pid file names the demo that uses it, so a second demo first ends the first.
 */
const MARKER = '.stagepost-demo-sandbox';
const PID_FILE = 'demo.pid';
/** Where each branch site's restart script keeps its app server's pid (see sample-app/restart.mjs). */
const APP_PID = path.join('var', 'app-server.pid');

export function sandboxDir(env: NodeJS.ProcessEnv, cwd: string): string {
  return path.resolve(cwd, env.STAGEPOST_DEMO_DIR || '.stagepost-demo');
}

function readPid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

/** On Linux, make sure a pid from a file still is what we think (pids are recycled). */
function cmdlineHas(pid: number, word: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(word);
  } catch {
    return !existsSync('/proc/self');
  }
}

/**
 * Whether a process (group, with `-pid`) still runs. An ended process that is
 * not reaped yet (a zombie: an app server's parent is gone, and the init of a
 * container may never reap) counts as ended.
 */
export function running(pid: number, group = false): boolean {
  try {
    process.kill(group ? -pid : pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

async function waitEnded(pid: number, group: boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (running(pid, group) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return !running(pid, group);
}

/** TERM, then KILL if it has not ended within `graceMs`. */
async function end(pid: number, group: boolean, graceMs: number): Promise<void> {
  const target = group ? -pid : pid;
  try {
    process.kill(target, 'SIGTERM');
  } catch {
    return;
  }
  if (!(await waitEnded(pid, group, graceMs))) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      /* ended meanwhile */
    }
    await waitEnded(pid, group, 1000);
  }
}

/** The pid files of the app servers the branch sites started. */
export function appServerPidFiles(dir: string): string[] {
  const sites = path.join(dir, 'sites');
  if (!existsSync(sites)) return [];
  return readdirSync(sites)
    .map((b) => path.join(sites, b, APP_PID))
    .filter((f) => existsSync(f));
}

/** End every app server of the sandbox (each runs in its own process group). Returns their pids. */
export async function endAppServers(dir: string): Promise<number[]> {
  const ended: number[] = [];
  for (const file of appServerPidFiles(dir)) {
    const pid = readPid(file);
    if (pid && running(pid, true) && cmdlineHas(pid, 'app-server')) {
      await end(pid, true, 3000);
      ended.push(pid);
    }
    rmSync(file, { force: true });
  }
  return ended;
}

/** A demo still running on this sandbox is asked to stop (TERM), and killed if it will not. */
export async function endEarlierDemo(dir: string): Promise<number | null> {
  const pid = readPid(path.join(dir, PID_FILE));
  if (pid === null || pid === process.pid || !running(pid) || !cmdlineHas(pid, 'demo')) return null;
  // Its own Ctrl-C handling stops its daemon and app servers; KILL only if it hangs.
  await end(pid, false, 15_000);
  return pid;
}

/** Remove and recreate the sandbox, after ending whatever an earlier demo left running. */
export async function resetSandbox(dir: string): Promise<void> {
  if (existsSync(dir) && readdirSync(dir).length > 0 && !existsSync(path.join(dir, MARKER))) {
    throw new StagepostError(
      'EEXISTS',
      `${dir} exists and is not a stagepost demo sandbox; the demo would remove it — move it away, or set STAGEPOST_DEMO_DIR to another directory`,
    );
  }
  await endEarlierDemo(dir);
  await endAppServers(dir);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, MARKER),
    'made by `stagepost demo`; removed and made again by each run\n',
  );
  writeFileSync(path.join(dir, PID_FILE), `${process.pid}\n`);
}

export function releaseSandbox(dir: string): void {
  if (readPid(path.join(dir, PID_FILE)) === process.pid)
    rmSync(path.join(dir, PID_FILE), { force: true });
}
