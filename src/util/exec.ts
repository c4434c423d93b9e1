import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Time between TERM and KILL. */
  killGraceMs?: number;
  /** Aborting ends the group like a timeout, but is recorded as `aborted`. */
  signal?: AbortSignal;
  /** Called with each chunk of stdout and stderr, interleaved as they come. */
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void;
  /** Called once the child exists, with its process group id (= its pid). */
  onSpawn?: (pgid: number) => void;
  /**
   * The command does not start until this resolves (a small `sh` holds it),
   * so a caller can record the process group durably first: a kill -9 of
   * stagepost can then never leave an unrecorded process behind. A rejection
   * ends the group unstarted.
   */
  beforeStart?: (pgid: number) => Promise<void>;
  /** Keep at most this many characters of each stream in the result. */
  maxBuffer?: number;
  input?: string;
}

export interface RunResult {
  command: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
  stdout: string;
  stderr: string;
  /** Set when the process could not be started at all (ENOENT, EACCES). */
  spawnError?: Error;
}

export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

function killLater(pgid: number): void {
  killGroup(pgid, 'SIGKILL');
}

/** TERM to the group, KILL after `graceMs` (the returned timer, unref'd). */
function stopGroup(pgid: number, graceMs: number): NodeJS.Timeout {
  killGroup(pgid, 'SIGTERM');
  const timer = setTimeout(killLater, graceMs, pgid);
  timer.unref();
  return timer;
}

export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // kill(0) also succeeds for zombies, which a container's init may never
  // reap; on Linux, look for a member that is really running.
  const members = liveGroupMembers(pgid);
  return members === null || members.length > 0;
}

/** Pids of the group that are not zombies, or null where /proc cannot tell. */
export function liveGroupMembers(pgid: number): number[] | null {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  const live: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Fields after the parenthesised command: state, ppid, pgrp, ...
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') live.push(Number(entry));
  }
  return live;
}

/** TERM the group, wait up to graceMs for it to vanish, then KILL. */
export async function terminateGroup(pgid: number, graceMs = 2000): Promise<void> {
  if (!killGroup(pgid, 'SIGTERM')) return;
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!groupAlive(pgid)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  killGroup(pgid, 'SIGKILL');
}

/**
 * Every child process of stagepost goes through here. Each runs in its own
 * process group (detached), so a timeout or an abort ends the whole tree:
 * TERM to the group, then KILL after `killGraceMs`. A failure is data, not an
 * exception: callers read exitCode / signal / timedOut.
 */
export function run(
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const started = Date.now();
  const maxBuffer = options.maxBuffer ?? 4 * 1024 * 1024;
  const command = [file, ...args].join(' ');
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let aborted = false;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let timeoutTimer: NodeJS.Timeout | undefined;

    const hold = options.beforeStart !== undefined;
    // The holder waits for one line on stdin, then becomes the command (same pid, same group).
    const child = hold
      ? spawn(
          '/bin/sh',
          ['-c', 'read -r _ || :; exec "$@" </dev/null', 'stagepost-hold', file, ...args],
          {
            cwd: options.cwd,
            env: options.env ?? process.env,
            detached: true,
            stdio: ['pipe', 'pipe', 'pipe'],
          },
        )
      : spawn(file, args, {
          cwd: options.cwd,
          env: options.env ?? process.env,
          detached: true,
          stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        });

    const finish = (
      result: Omit<
        RunResult,
        'command' | 'durationMs' | 'stdout' | 'stderr' | 'timedOut' | 'aborted'
      >,
    ) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeoutTimer);
      clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve({
        command,
        stdout,
        stderr,
        timedOut,
        aborted,
        durationMs: Date.now() - started,
        ...result,
      });
    };

    const stop = () => {
      if (child.pid === undefined) return;
      killTimer = stopGroup(child.pid, options.killGraceMs ?? 2000);
    };
    const onAbort = () => {
      aborted = true;
      stop();
    };

    child.on('error', (err) => finish({ exitCode: null, signal: null, spawnError: err }));
    if (child.pid !== undefined) options.onSpawn?.(child.pid);

    const collect = (stream: 'stdout' | 'stderr') => (data: Buffer) => {
      const text = data.toString('utf8');
      if (stream === 'stdout') stdout = (stdout + text).slice(-maxBuffer);
      else stderr = (stderr + text).slice(-maxBuffer);
      options.onOutput?.(text, stream);
    };
    child.stdout?.on('data', collect('stdout'));
    child.stderr?.on('data', collect('stderr'));
    // A child that exits without reading its input must not crash us with EPIPE.
    child.stdin?.on('error', () => undefined);
    if (hold && child.pid !== undefined) {
      options.beforeStart!(child.pid).then(
        () => child.stdin?.end('\n'),
        () => stop(),
      );
    } else if (options.input !== undefined) {
      child.stdin?.end(options.input);
    }

    if (options.timeoutMs !== undefined && options.timeoutMs > 0) {
      timeoutTimer = setTimeout(() => {
        timedOut = true;
        stop();
      }, options.timeoutMs);
    }
    if (options.signal) {
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener('abort', onAbort, { once: true });
    }

    // A step may leave a daemon behind (an app server started with `&`) that
    // keeps our pipes open; once the leader has exited, give the pipes a moment
    // to drain and then stop waiting for them.
    child.on('exit', (code, sig) => {
      const drain = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish({ exitCode: code, signal: sig });
      }, 1000);
      drain.unref?.();
    });
    child.on('close', (code, sig) => {
      // The leader is gone; make sure no straggler of its group lives on.
      if ((timedOut || aborted) && child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      finish({ exitCode: code, signal: sig });
    });
  });
}

/** A one-line description of why a run failed, for logs and errors. */
export function describeFailure(result: RunResult): string {
  if (result.spawnError) return `could not start: ${result.spawnError.message}`;
  if (result.timedOut) return `timed out after ${result.durationMs}ms`;
  if (result.aborted) return 'interrupted';
  if (result.signal) return `killed by ${result.signal}`;
  return `exit code ${result.exitCode}`;
}
