import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** CPU and memory of one process from /proc (Linux), and small statistics. */
const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);

export interface Cpu {
  /** utime + stime of the process itself. */
  selfMs: number;
  /** selfMs plus cutime + cstime (its waited-for children: git, svn, sh). */
  withChildrenMs: number;
}

export function cpuOf(pid: number): Cpu {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  // f[0] is field 3 (state): utime is field 14 → f[11].
  const [utime, stime, cutime, cstime] = [f[11]!, f[12]!, f[13]!, f[14]!];
  return { selfMs: (utime + stime) * TICK_MS, withChildrenMs: (utime + stime + cutime + cstime) * TICK_MS };
}

/** Resident memory in MB (VmRSS). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export async function timed(fn: () => unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
