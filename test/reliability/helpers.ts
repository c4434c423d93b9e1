import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DaemonProcess, type LogEvent } from '../helpers/cli.js';
import { startSmtp, type TestSmtp } from '../notify/helpers.js';

/**
 * Shared by the fault and abuse suite: a ci.yaml writer with short timeouts,
 * daemons that are always cleaned up, readers of the state files, a seeded
 * PRNG, and an SMTP server that checks the password it is given.
 */
export function writeCi(
  root: string,
  body: string,
  opts: { poll?: string; builds?: string; name?: string } = {},
): string {
  const file = path.join(root, opts.name ?? 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
poll: ${opts.poll ?? '{ interval: 200ms, timeout: 5s }'}
builds: ${opts.builds ?? '{ concurrency: 2, step_timeout: 30s, shutdown_grace: 300ms }'}
${body}`,
  );
  return file;
}

/** One git source branch entry for `branches:`. */
export const RECORD_STEPS = `steps:
  - name: record
    run: 'echo "$STAGEPOST_BUILD $STAGEPOST_REV_APP" >> builds.txt'
`;

export { gitHttpServer } from '../helpers/git-http-server.js';
export { gitBranchYaml } from '../helpers/git.js';

export function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

/** Daemons started by a test, killed in afterEach whatever happened. */
export class Daemons {
  private list: DaemonProcess[] = [];
  start(file: string, env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): DaemonProcess {
    const d = new DaemonProcess(file, env, nodeArgs);
    this.list.push(d);
    return d;
  }
  async killAll(): Promise<void> {
    for (const d of this.list.splice(0)) await d.kill9();
  }
}

/** Wait for `n` more poll cycles (of any repository) than seen so far. */
export async function morePolls(
  d: DaemonProcess,
  n: number,
  match: (e: LogEvent) => boolean = () => true,
): Promise<void> {
  const isPoll = (e: LogEvent) => e.msg === 'polled' && match(e);
  await d.waitFor(isPoll, { count: d.count(isPoll) + n, what: `${n} more polls` });
}

/** Every file under a directory (for scans of state_dir). */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

/** Parse every JSON state file; throws with the file name on the first that does not parse. */
export function readStateFiles(stateDir: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const files = [
    path.join(stateDir, 'poll.json'),
    ...filesUnder(path.join(stateDir, 'branches')).filter((f) => f.endsWith('.json')),
  ];
  for (const f of files) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    try {
      out[path.relative(stateDir, f)] = JSON.parse(text);
    } catch (err) {
      throw new Error(
        `${f} does not parse (${statSync(f).size} bytes): ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }
  return out;
}

/** mulberry32: a small seeded PRNG, so a failing crash loop can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An SMTP server that requires AUTH with one user and password (and records what it got). */
export function startAuthSmtp(user: string, password: string): Promise<TestSmtp> {
  return startSmtp(0, [], { user, password });
}
