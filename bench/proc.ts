import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** CPU and memory of a process (and its long-lived helpers) from /proc (Linux), and small statistics. */
const TICK_MS =
  1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);

export interface Cpu {
  /** utime + stime of the process itself. */
  selfMs: number;
  /** selfMs plus cutime + cstime (its waited-for children: git, svn, sh). */
  withChildrenMs: number;
}

/** CPU of this one process (none of its helpers). */
export function processCpuOf(pid: number): Cpu {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  // f[0] is field 3 (state): utime is field 14 → f[11].
  const [utime, stime, cutime, cstime] = [f[11], f[12], f[13], f[14]];
  return {
    selfMs: (utime + stime) * TICK_MS,
    withChildrenMs: (utime + stime + cutime + cstime) * TICK_MS,
  };
}

/**
 * The daemon's long-lived helpers (the query server that starts its git and
 * svn children): their CPU and memory are the daemon's own, but the kernel
 * only adds a child's CPU to its parent when the child exits.
 */
export function helpersOf(pid: number): number[] {
  const pids: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return pids;
  }
  for (const task of tasks) {
    let children = '';
    try {
      children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const child of children.trim().split(/\s+/).filter(Boolean).map(Number)) {
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${child}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (cmdline.includes('spawner.pl')) pids.push(child);
    }
  }
  return pids;
}

/** CPU of the process and its long-lived helpers (whose waited-for children count as children). */
export function cpuOf(pid: number): Cpu {
  const total = processCpuOf(pid);
  for (const helper of helpersOf(pid)) {
    try {
      const h = processCpuOf(helper);
      total.selfMs += h.selfMs;
      total.withChildrenMs += h.withChildrenMs;
    } catch {
      /* it exited between the listing and the read */
    }
  }
  return total;
}

/** Resident memory in MB (VmRSS), the helpers' included. */
export function rssOf(pid: number): number {
  let kb = 0;
  for (const p of [pid, ...helpersOf(pid)]) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      kb += m ? Number(m[1]) : 0;
    } catch {
      /* gone */
    }
  }
  return kb > 0 ? kb / 1024 : NaN;
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
