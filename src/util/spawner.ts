import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { constants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { killGroup, run, stopGroup, type RunResult } from './exec.js';

/**
 * Remote queries (`git ls-remote` every few seconds per repository) through a
 * small long-lived fork server (spawner.pl): a fork of the ~70 MB daemon costs
 * it ~2 ms of CPU, a fork of a ~5 MB perl almost nothing. Results mean exactly
 * what exec.ts `run` gives: own process group per command, TERM then KILL of
 * the group on timeout or abort, failures as data.
 */
export interface QueryRunOptions {
  cwd?: string;
  /** The whole environment (default process.env). Freeze it to have it read once, not on every run. */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Time between TERM and KILL. */
  killGraceMs?: number;
  signal?: AbortSignal;
  /** Keep at most this many bytes (so at most as many characters) of each stream, the tail. */
  maxBuffer?: number;
  /** The command's stdin (else /dev/null); at most MAX_QUERY_INPUT bytes through the server. */
  input?: string;
}

/** The server's child writes the input into a pipe before exec: it must fit the pipe (64 KiB on Linux). */
export const MAX_QUERY_INPUT = 16 * 1024;

const SCRIPT = fileURLToPath(new URL('./spawner.pl', import.meta.url));
/** Environments the server keeps; past this it is told to forget them all (passwords differ per repository). */
const MAX_ENVIRONMENTS = 64;
const DEFAULT_MAX_BUFFER = 4 * 1024 * 1024;
const NL = 10;

/** `NAME=VALUE\0`…, or null when a name or value holds a NUL. */
function environmentText(env: NodeJS.ProcessEnv): string | null {
  let text = '';
  let variables = 0;
  for (const name in env) {
    const value = env[name];
    if (value === undefined) continue;
    text += name + '=' + value + '\0';
    variables++;
  }
  return countNuls(text) === variables ? text : null;
}

// A frozen environment cannot change: its text is worked out once (the git
// plugin freezes the one it prepares for each repository).
const frozenTexts = new WeakMap<object, string | null>();
function frozenEnvironment(env: NodeJS.ProcessEnv): string | null {
  let text = frozenTexts.get(env);
  if (text === undefined) frozenTexts.set(env, (text = environmentText(env)));
  return text;
}

function countNuls(text: string): number {
  let nuls = 0;
  for (let i = text.indexOf('\0'); i !== -1; i = text.indexOf('\0', i + 1)) nuls++;
  return nuls;
}

function uncork(stream: NodeJS.WritableStream & { uncork(): void }): void {
  stream.uncork();
}

/** After a timeout or an abort, how long past the kill grace the server has to answer before it counts as hung. */
const ANSWER_GRACE_MS = 3000;

function onTimeout(req: Request): void {
  req.timedOut = true;
  req.stop();
}

function onLost(server: Spawner): void {
  server.kill(
    new Error(
      `query server did not answer ${ANSWER_GRACE_MS / 1000} s after a stopped command was killed; restarted`,
    ),
  );
}

/** Like the error of child_process.spawn, so callers see the same thing from both paths. */
function spawnError(code: string, file: string, args: readonly string[]): Error {
  const errno = (constants.errno as Record<string, number | undefined>)[code];
  return Object.assign(new Error(`spawn ${file} ${code}`), {
    errno: errno === undefined ? undefined : -errno,
    code,
    syscall: `spawn ${file}`,
    path: file,
    spawnargs: [...args],
  });
}

/** The server keeps the last maxBuffer bytes; a cut through a character would decode as U+FFFD. */
function decode(buf: Buffer, start: number, end: number, max: number): string {
  if (max > 0 && end - start >= max) {
    for (let i = 0; i < 3 && start < end && (buf[start] & 0xc0) === 0x80; i++) start++;
  }
  return buf.toString('utf8', start, end);
}

/** One request in flight; also its own abort listener, so a request allocates no closures but the promise's. */
class Request {
  pid: number | undefined = undefined;
  timedOut = false;
  aborted = false;
  /** A timeout or an abort came before the pid was known. */
  stopWhenStarted = false;
  timer: NodeJS.Timeout | undefined = undefined;
  killTimer: NodeJS.Timeout | undefined = undefined;
  lostTimer: NodeJS.Timeout | undefined = undefined;

  constructor(
    readonly server: Spawner,
    readonly file: string,
    readonly args: readonly string[],
    readonly maxBuffer: number,
    readonly killGraceMs: number,
    readonly signal: AbortSignal | undefined,
    readonly resolve: (result: RunResult) => void,
    readonly startedAt = Date.now(),
  ) {}

  handleEvent(): void {
    this.aborted = true;
    this.stop();
  }

  stop(): void {
    // Only the server's answer ends a request: were the server itself stuck,
    // a timed-out or aborted query would never end. Then it is killed, and
    // every request it held fails; the next query starts a new server.
    this.lostTimer ??= setTimeout(onLost, this.killGraceMs + ANSWER_GRACE_MS, this.server);
    if (this.pid === undefined) {
      this.stopWhenStarted = true;
      return;
    }
    if (this.killTimer !== undefined) return;
    // "started" is sent right after fork: for a moment the child has not made
    // itself a group leader yet, and only its pid reaches it.
    this.killTimer = stopGroup(this.pid, this.killGraceMs, true);
  }

  finish(
    exitCode: number | null,
    signal: NodeJS.Signals | null,
    stdout: string,
    stderr: string,
    error?: Error,
  ): void {
    clearTimeout(this.timer);
    clearTimeout(this.killTimer);
    clearTimeout(this.lostTimer);
    this.signal?.removeEventListener('abort', this);
    const result: RunResult = {
      command: [this.file, ...this.args].join(' '),
      exitCode,
      signal,
      timedOut: this.timedOut,
      aborted: this.aborted,
      durationMs: Date.now() - this.startedAt,
      stdout,
      stderr,
    };
    if (error !== undefined) result.spawnError = error;
    this.resolve(result);
  }
}

export class Spawner {
  private readonly child: ChildProcess;
  private readonly requests = new Map<number, Request>();
  private readonly closed: Promise<void>;
  private nextId = 1;
  /** Environments sent to the server, by their text: requests name them by id. */
  private readonly environments = new Map<string, number>();
  private nextEnvId = 1;
  /** Why the server can take no more requests; set once. */
  private dead: Error | undefined;
  private closing = false;
  // Reply bytes not parsed yet, and how many the next reply needs in all.
  private chunks: Buffer[] = [];
  private have = 0;
  private need = 1;

  private constructor(
    perl: string,
    private readonly onCrash?: (spawnError?: NodeJS.ErrnoException) => void,
  ) {
    // cwd '/': the server must not hold a directory busy; requests always carry theirs.
    this.child = spawn(perl, [SCRIPT], {
      cwd: '/',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['pipe', 'pipe', 'inherit'],
      detached: false,
    });
    const { child } = this;
    this.closed = new Promise((resolve) => {
      child.once('close', () => resolve());
      if (child.pid === undefined) child.once('error', () => resolve());
    });
    if (child.pid === undefined)
      this.dead = new Error(`query server exited: could not start ${perl}`);
    child.on('error', (err) => {
      if (child.pid === undefined && !this.closing) this.onCrash?.(err);
      this.fail(new Error(`query server exited: ${err.message}`));
    });
    child.on('exit', (code, sig) =>
      this.markDead(new Error(`query server exited (${sig ?? `exit code ${code}`})`)),
    );
    // Replies already written still count, so in-flight requests fail only once stdout is drained.
    child.on('close', () => this.fail(this.dead ?? new Error('query server exited')));
    // (No stdio at all when spawn() failed with EMFILE.)
    child.stdin?.on('error', (err) => {
      this.fail(new Error(`query server exited: its stdin failed: ${err.message}`));
      child.kill('SIGKILL');
    });
    child.stdout?.on('data', (chunk: Buffer) => this.onData(chunk));
    this.unref();
    (child.stdin as Socket | null)?.unref?.();
  }

  /**
   * Spawns `perl spawner.pl`. `onCrash` hears of an exit that close() did not
   * ask for, or of the spawn() error when perl could not be started at all.
   */
  static start(
    options: { perl?: string; onCrash?: (spawnError?: NodeJS.ErrnoException) => void } = {},
  ): Spawner {
    return new Spawner(options.perl ?? 'perl', options.onCrash);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** False once the server has exited or is exiting: start a new one. */
  get alive(): boolean {
    return this.dead === undefined;
  }

  run(file: string, args: readonly string[], options: QueryRunOptions = {}): Promise<RunResult> {
    return new Promise((resolve) => {
      const max = options.maxBuffer ?? DEFAULT_MAX_BUFFER;
      const req = new Request(
        this,
        file,
        args,
        Number.isFinite(max) && max > 0 ? Math.ceil(max) : 0,
        options.killGraceMs ?? 2000,
        options.signal,
        resolve,
      );
      if (this.dead !== undefined) {
        req.finish(null, null, '', '', this.dead);
        return;
      }
      let cwd = options.cwd ?? process.cwd();
      if (cwd.charCodeAt(0) !== 47) cwd = path.resolve(cwd);
      const env = options.env ?? process.env;
      const id = this.nextId++;
      let body = `${cwd}\0${file}\0${args.length}\0`;
      for (const arg of args) body += arg + '\0';
      const environment = Object.isFrozen(env) ? frozenEnvironment(env) : environmentText(env);
      // A NUL inside a field would shift every field after it; spawn() throws on it too.
      if (countNuls(body) !== 3 + args.length || environment === null || file === '') {
        throw new TypeError(
          `spawner: an empty file, or a NUL byte in the command, its cwd or its environment: ${file}`,
        );
      }
      const input = options.input ?? '';
      const inputLength = Buffer.byteLength(input);
      if (inputLength > MAX_QUERY_INPUT)
        throw new TypeError(
          `spawner: input of ${inputLength} bytes is over ${MAX_QUERY_INPUT}; use exec.ts run`,
        );

      if (this.requests.size === 0) this.ref();
      this.requests.set(id, req);
      // Requests made in one turn of the event loop leave in one write: the
      // repositories due together are asked from separate timers, and Node
      // runs the nextTick queue after each timer, so the write waits for
      // setImmediate (after every timer due now).
      const stdin = this.child.stdin!;
      if (stdin.writableCorked === 0) {
        stdin.cork();
        setImmediate(uncork, stdin);
      }
      const envId = this.environmentId(environment, stdin);
      stdin.write(
        `${id} ${req.maxBuffer} ${Buffer.byteLength(body)} ${inputLength} ${envId}\n${body}${input}`,
      );
      if (options.timeoutMs !== undefined && options.timeoutMs > 0)
        req.timer = setTimeout(onTimeout, options.timeoutMs, req);
      if (options.signal) {
        if (options.signal.aborted) req.handleEvent();
        else options.signal.addEventListener('abort', req, { once: true });
      }
    });
  }

  /** The id of an environment, sent to the server first if it has not got it. */
  private environmentId(environment: string, stdin: NodeJS.WritableStream): number {
    let envId = this.environments.get(environment);
    if (envId !== undefined) return envId;
    if (this.environments.size >= MAX_ENVIRONMENTS) {
      this.environments.clear();
      stdin.write('forget\n');
    }
    envId = this.nextEnvId++;
    this.environments.set(environment, envId);
    stdin.write(`env ${envId} ${Buffer.byteLength(environment)}\n${environment}`);
    return envId;
  }

  /** Kills a server that stopped answering: its requests fail with `reason`. */
  kill(reason: Error): void {
    this.markDead(reason);
    this.child.kill('SIGKILL');
  }

  /** Ends the server's stdin and waits for it to exit (SIGKILL after 2 s). */
  async close(): Promise<void> {
    this.closing = true;
    if (
      this.child.pid === undefined ||
      this.child.exitCode !== null ||
      this.child.signalCode !== null
    ) {
      await this.closed;
      return;
    }
    this.ref();
    this.child.stdin!.end();
    const kill = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await this.closed;
    clearTimeout(kill);
  }

  private ref(): void {
    this.child.ref();
    (this.child.stdout as Socket | null)?.ref?.();
  }

  private unref(): void {
    this.child.unref();
    (this.child.stdout as Socket | null)?.unref?.();
  }

  private markDead(reason: Error): void {
    if (this.dead !== undefined) return;
    this.dead = reason;
    if (!this.closing) this.onCrash?.();
  }

  private fail(reason: Error): void {
    this.markDead(reason);
    for (const req of this.requests.values()) {
      req.finish(null, null, '', '', reason);
      // Nobody would enforce its timeout or read its result any more.
      if (req.pid !== undefined) stopGroup(req.pid, req.killGraceMs);
    }
    this.requests.clear();
    this.unref();
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.have += chunk.length;
    if (this.have < this.need) return;
    const buf = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.have);
    this.chunks.length = 0;
    let pos = 0;
    this.need = 1;
    while (pos < buf.length) {
      const nl = buf.indexOf(NL, pos);
      if (nl === -1) {
        this.need = buf.length - pos + 1;
        break;
      }
      const words = buf.toString('latin1', pos, nl).split(' ');
      const req = this.requests.get(Number(words[1]));
      if (words[0] === 'done') {
        const outLen = Number(words[3]);
        const end = nl + 1 + outLen + Number(words[4]);
        if (end > buf.length) {
          this.need = end - pos;
          break;
        }
        pos = end;
        if (req === undefined) continue;
        this.settled(Number(words[1]));
        const status = words[2];
        const sig = status.charCodeAt(0) === 83 /* S */ ? (status as NodeJS.Signals) : null;
        // A run that had to be stopped must not leave a straggler of its group (as exec.ts does).
        if ((req.timedOut || req.aborted) && req.pid !== undefined) killGroup(req.pid, 'SIGKILL');
        req.finish(
          sig === null ? Number(status) : null,
          sig,
          decode(buf, nl + 1, nl + 1 + outLen, req.maxBuffer),
          decode(buf, nl + 1 + outLen, end, req.maxBuffer),
        );
        continue;
      }
      pos = nl + 1;
      if (req === undefined) continue;
      if (words[0] === 'started') {
        req.pid = Number(words[2]);
        if (req.stopWhenStarted) req.stop();
      } else if (words[0] === 'error') {
        this.settled(Number(words[1]));
        req.finish(null, null, '', '', spawnError(words[2], req.file, req.args));
      }
    }
    if (pos < buf.length) this.chunks.push(buf.subarray(pos));
    this.have = buf.length - pos;
  }

  private settled(id: number): void {
    this.requests.delete(id);
    if (this.requests.size === 0) this.unref();
  }
}

// The shared server for remote queries, used once the daemon asks for it: a
// one-shot CLI command makes too few queries to pay for starting perl.
let wanted = false;
let shared: Spawner | undefined;
let useRun = false;

/** Route runQuery through the fork server from now on (the daemon), or not. */
export function useQueryServer(on = true): void {
  // STAGEPOST_QUERY_SERVER=0: the operator's way out, and the bench's A/B switch.
  wanted = on && process.env.STAGEPOST_QUERY_SERVER !== '0';
}
const crashes: number[] = [];

function crashed(server: Spawner, spawnError?: NodeJS.ErrnoException): void {
  if (shared === server) shared = undefined;
  // No perl at all (a minimal image), or not ours to run: that will not change.
  if (spawnError?.code === 'ENOENT' || spawnError?.code === 'EACCES') {
    useRun = true;
    return;
  }
  const now = Date.now();
  crashes.push(now);
  while (crashes.length > 0 && crashes[0] < now - 60_000) crashes.shift();
  // A server that keeps dying (a broken perl, a hostile environment) would
  // fail every query; plain spawn() costs more CPU but works.
  if (crashes.length >= 3) useRun = true;
}

/**
 * A short command that asks a remote something (`git ls-remote`): through the
 * shared fork server once `useQueryServer()` was called, else exec.ts `run`;
 * also `run` when perl is missing or the server keeps dying.
 */
export function runQuery(
  file: string,
  args: readonly string[],
  options: QueryRunOptions = {},
): Promise<RunResult> {
  if (!wanted) return run(file, args, options);
  if (!useRun && (shared === undefined || !shared.alive)) {
    const server: Spawner = Spawner.start({ onCrash: (err) => crashed(server, err) });
    // When perl could not be started, this query runs the plain way; the
    // spawn() error, a tick later, tells whether to stop trying.
    if (server.pid !== undefined) shared = server;
  }
  if (
    useRun ||
    shared === undefined ||
    (options.input !== undefined && Buffer.byteLength(options.input) > MAX_QUERY_INPUT)
  )
    return run(file, args, options);
  return shared.run(file, args, options);
}

export function queryServerPid(): number | undefined {
  return shared?.pid;
}

export async function stopQueryServer(): Promise<void> {
  const server = shared;
  shared = undefined;
  await server?.close();
}
