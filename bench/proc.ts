import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** CPU and memory of a process and all its descendants from /proc (Linux), and small statistics. */
const TICK_MS =
  1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);

export interface Cpu {
  /** utime + stime of the process itself. */
  selfMs: number;
  /**
   * selfMs plus the CPU of every descendant: the exited ones it waited for
   * (cutime + cstime: git, svn, sh) and the ones still running, whose CPU the
   * kernel adds to their parent only when they exit.
   */
  withChildrenMs: number;
}

function statTicks(pid: number): { self: number; reaped: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  // f[0] is field 3 (state): utime is field 14 → f[11].
  const [utime, stime, cutime, cstime] = [f[11], f[12], f[13], f[14]];
  return { self: utime + stime, reaped: cutime + cstime };
}

/** Pids of the children of every thread of `pid` (a thread of node may be the parent). */
function childrenOf(pid: number): number[] {
  const pids: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return pids;
  }
  for (const task of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
      pids.push(...text.trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      /* the thread ended */
    }
  }
  return pids;
}

/** Every living descendant of `pid`, children first. */
export function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  for (const child of childrenOf(pid)) out.push(child, ...descendantsOf(child));
  return out;
}

/**
 * CPU of the process and of every descendant: each living one counts its own
 * CPU and that of the children it has reaped, so every process that ever ran
 * under `pid` counts once (one that exits between the two readings of a window
 * counts in the window's end through its parent).
 */
export function cpuOf(pid: number): Cpu {
  const own = statTicks(pid);
  let ticks = own.self + own.reaped;
  for (const d of descendantsOf(pid)) {
    try {
      const t = statTicks(d);
      ticks += t.self + t.reaped;
    } catch {
      /* it exited between the listing and the read */
    }
  }
  return { selfMs: own.self * TICK_MS, withChildrenMs: ticks * TICK_MS };
}

/** Resident memory of the process in MB (VmRSS). */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export async function timed(fn: () => unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
