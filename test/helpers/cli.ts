import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gitBranchYaml } from './git.js';

/** Drives the real CLI (bin/stagepost.js) as a user would. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bin', 'stagepost.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, STAGEPOST_LOG_FORMAT: 'json', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`stagepost ${args.join(' ')} did not finish in time\n${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export type LogEvent = Record<string, unknown> & { msg: string; level: string };

/** A `stagepost run` child whose JSON log lines can be awaited. */
export class DaemonProcess {
  readonly child: ChildProcess;
  readonly events: LogEvent[] = [];
  stderr = '';
  private waiters: Array<() => void> = [];
  readonly exited: Promise<number | null>;

  constructor(
    configFile: string,
    env: NodeJS.ProcessEnv = {},
    nodeArgs: string[] = [],
    runArgs: string[] = [],
  ) {
    this.child = spawn(
      process.execPath,
      [...nodeArgs, BIN, 'run', '--config', configFile, ...runArgs],
      {
        cwd: path.dirname(configFile),
        env: { ...process.env, STAGEPOST_LOG_FORMAT: 'json', STAGEPOST_LOG_LEVEL: 'debug', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let partial = '';
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        try {
          this.events.push(JSON.parse(line) as LogEvent);
        } catch {
          this.events.push({ msg: line, level: 'raw' });
        }
      }
      for (const w of this.waiters.splice(0)) w();
    });
    this.child.stdout!.resume();
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code) => {
        resolve(code);
        for (const w of this.waiters.splice(0)) w();
      }),
    );
  }

  /** Wait until `count` log events match (counting from the start). */
  async waitFor(
    match: (e: LogEvent) => boolean,
    options: { count?: number; timeoutMs?: number; what?: string } = {},
  ): Promise<LogEvent[]> {
    const count = options.count ?? 1;
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    for (;;) {
      const found = this.events.filter(match);
      if (found.length >= count) return found;
      if (this.child.exitCode !== null)
        throw new Error(
          `daemon exited (${this.child.exitCode}) while waiting for ${options.what ?? 'an event'}\n${this.stderr.slice(-4000)}`,
        );
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `timed out waiting for ${options.what ?? 'an event'} (${found.length}/${count})\n${this.stderr.slice(-4000)}`,
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  count(match: (e: LogEvent) => boolean): number {
    return this.events.filter(match).length;
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }

  async kill9(): Promise<void> {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

export const isBuildFinished = (branch?: string) => (e: LogEvent) =>
  e.msg === 'build finished' && (!branch || e.branch === branch);
export const isBuildStarted = (branch?: string) => (e: LogEvent) =>
  e.msg === 'build started' && (!branch || e.branch === branch);
export const isPolled = (branch?: string) => (e: LogEvent) =>
  e.msg === 'polled' &&
  (!branch || (e.branches as string[] | undefined)?.includes(branch) === true);

export function writeFile(file: string, text: string): string {
  writeFileSync(file, text);
  return file;
}

/** A ci.yaml in `dir` with one branch `staging` on `url`'s main (gitBranchYaml), polled every 100 ms, and a no-op step. */
export function stagingConfig(dir: string, url: string): string {
  const file = path.join(dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
poll: { interval: 100ms, timeout: 5s }
steps: [{ name: noop, run: "true" }]
branches:
${gitBranchYaml('staging', url, 'main')}`,
  );
  return file;
}
