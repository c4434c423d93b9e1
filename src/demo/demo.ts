import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Daemon } from '../daemon/daemon.js';
import { createLogger } from '../log.js';
import { StagepostError } from '../errors.js';
import { run } from '../util/exec.js';
import { dropWritesWhenStdoutCloses } from '../cli/closed-stdout.js';
import { sandboxDir, resetSandbox, endAppServers, releaseSandbox } from './sandbox.js';
import { choosePorts, portFree, type DemoPorts } from './ports.js';
import { startSiteProxy, type SiteProxy } from './proxy.js';
import { demoConfig, CUSTOMERS, type DemoSite } from './config.js';
import { makeGitSample } from './git-sample.js';
import { makeSvnSample } from './svn-sample.js';
import { CommitLoop, AUTHORS, type CommitTarget } from './commits.js';
import { waitForFirstBuilds } from './first-builds.js';

/**
 * `stagepost demo`: the embedded default. A sandbox with sample remotes, a
 * ci.yaml, the daemon in this process, a commit now and then; Ctrl-C ends it
 * and everything it started.
 */
const BRANCHES = ['staging', 'branch1', 'branch2'] as const;
const BIN = path.join(
  packageRoot(path.dirname(fileURLToPath(import.meta.url))),
  'bin',
  'stagepost.js',
);

/** The directory of package.json above this file (src/demo, or dist/src/demo when compiled). */
function packageRoot(from: string): string {
  for (let dir = from; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
  }
  return path.resolve(from, '..', '..');
}

async function works(file: string, args: string[]): Promise<boolean> {
  const r = await run(file, args, { timeoutMs: 10_000 });
  return r.exitCode === 0;
}

function stopSignal(onSecond: () => void): { stopped: Promise<string>; dispose: () => void } {
  let signals = 0;
  let resolve!: (s: string) => void;
  const stopped = new Promise<string>((r) => (resolve = r));
  const handler = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals === 1) resolve(signal);
    else onSecond();
  };
  // SIGHUP: the terminal the demo runs in was closed.
  const names: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of names) process.on(s, handler);
  return {
    stopped,
    dispose: () => {
      for (const s of names) process.off(s, handler);
    },
  };
}

async function makeRemotes(
  dir: string,
  out: (line: string) => void,
): Promise<[DemoSite, DemoSite, DemoSite] & { targets: CommitTarget[] }> {
  const remotes = path.join(dir, 'remotes');
  const work = path.join(dir, 'work');
  mkdirSync(remotes, { recursive: true });
  const haveSvn =
    (await works('svnadmin', ['--version', '--quiet'])) &&
    (await works('svn', ['--version', '--quiet']));
  if (!haveSvn) out('svn not installed: the demo uses git only');
  const git = await makeGitSample(remotes, work, AUTHORS[0], ['feature-x', 'feature-y']);
  const svn = haveSvn
    ? await makeSvnSample(remotes, work, path.join(dir, 'svn-config'), AUTHORS[2])
    : null;
  const staging: DemoSite = svn
    ? { name: 'staging', vcs: 'svn', url: `${svn.url}/trunk` }
    : { name: 'staging', vcs: 'git', url: git.url, ref: 'main' };
  const sites: [DemoSite, DemoSite, DemoSite] = [
    staging,
    { name: 'branch1', vcs: 'git', url: git.url, ref: 'feature-x' },
    { name: 'branch2', vcs: 'git', url: git.url, ref: 'feature-y' },
  ];
  const targets: CommitTarget[] = [
    svn
      ? { branch: 'staging', repo: svn, ref: 'trunk' }
      : { branch: 'staging', repo: git, ref: 'main' },
    { branch: 'branch1', repo: git, ref: 'feature-x' },
    { branch: 'branch2', repo: git, ref: 'feature-y' },
  ];
  return Object.assign(sites, { targets });
}

function intervalFromEnv(env: NodeJS.ProcessEnv): number {
  const raw = env.STAGEPOST_DEMO_COMMIT_INTERVAL;
  if (raw === undefined || raw === '') return 9000;
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms < 100)
    throw new StagepostError(
      'EUSAGE',
      `STAGEPOST_DEMO_COMMIT_INTERVAL=${raw} is not a number of milliseconds (100 or more)`,
    );
  return ms;
}

function banner(
  dir: string,
  configFile: string,
  ports: DemoPorts,
  proxy: SiteProxy,
  intervalMs: number,
): string[] {
  // Short paths when the demo runs inside them (npm run demo), absolute ones otherwise.
  const rel = (p: string) => {
    const r = path.relative(process.cwd(), p);
    return r.startsWith('..') || path.isAbsolute(r) ? p : r || '.';
  };
  const cli = `STAGEPOST_DEMO_TOKEN=$(cat ${rel(path.join(dir, 'token'))}) node ${rel(BIN)}`;
  return [
    '',
    'stagepost demo is running. Open:',
    `  dashboard     http://127.0.0.1:${ports.dashboard}/`,
    `  branch sites  ${BRANCHES.map((b) => `${proxy.url}/${b}/${CUSTOMERS[0]}/`).join('  ')}`,
    `  mail          ${rel(path.join(dir, 'mail'))}/*.eml (notifications, one file per message)`,
    `  config        ${rel(configFile)} (edit it while the demo runs)`,
    `  CLI           ${cli} status --config ${rel(configFile)}`,
    `                (also: log branch2, mail branch1, poll; the token is in ${rel(path.join(dir, 'token'))})`,
    `A commit to a random branch every ${Math.round(intervalMs / 1000)}s once the first builds are done; branch2 breaks and heals now and then.`,
    'Ctrl-C stops the demo and everything it started.',
    '',
  ];
}

export async function demoCommand(opts: { port: number }): Promise<number> {
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new StagepostError(
      'EUSAGE',
      `--port ${opts.port}: give a TCP port number (1-65535, or 0 for any free one)`,
    );
  }
  if (!(await portFree(opts.port)))
    throw new StagepostError(
      'EUSAGE',
      `port ${opts.port} (the demo's dashboard) is in use by another process — run the demo on another port: npm run demo -- --port ${opts.port === 65535 ? 8760 : opts.port + 10}`,
    );
  const intervalMs = intervalFromEnv(process.env);
  // `npm run demo | tee log` and Ctrl-C: tee is gone before the demo says it stops.
  const stdout = dropWritesWhenStdoutCloses();
  const out = (line: string) => stdout.write(`${line}\n`);
  const dir = sandboxDir(process.env, process.cwd());
  let daemon: Daemon | null = null;
  const signal = stopSignal(() => daemon?.interruptNow());
  let proxy: SiteProxy | null = null;
  let loop: CommitLoop | null = null;
  let owned = false;
  try {
    await resetSandbox(dir);
    owned = true;
    out(`stagepost demo: sandbox ${dir}`);
    const sites = await makeRemotes(dir, out);
    const ports = await choosePorts(opts.port, [...BRANCHES]);
    const configFile = path.join(dir, 'ci.yaml');
    writeFileSync(configFile, demoConfig(sites, ports));
    const token = randomBytes(16).toString('hex');
    writeFileSync(path.join(dir, 'token'), `${token}\n`, { mode: 0o600 });
    // The daemon and its steps read these from this process's environment.
    process.env.STAGEPOST_DEMO_TOKEN = token;
    process.env.DEMO_APP_PORTS = BRANCHES.map((b) => `${b}=${ports.apps[b]}`).join(' ');
    process.env.PATH = [path.dirname(process.execPath), process.env.PATH]
      .filter(Boolean)
      .join(path.delimiter);
    proxy = await startSiteProxy(ports.proxy, ports.apps);
    daemon = await Daemon.start({ configFile, env: process.env, log: createLogger() });
    for (const line of banner(dir, configFile, ports, proxy, intervalMs)) out(line);

    loop = new CommitLoop(sites.targets, intervalMs, out);
    const first = await waitForFirstBuilds(daemon, 180_000, signal.stopped);
    if (first) {
      out(`first builds: ${first.map((b) => `${b.name} ${b.result}`).join(', ')}`);
      loop.start();
    }
    const sig = await signal.stopped;
    out(`${sig}: stopping the demo`);
    return 0;
  } finally {
    await loop?.stop();
    await daemon?.stop();
    await proxy?.close();
    const ended = owned ? await endAppServers(dir) : [];
    if (owned) releaseSandbox(dir);
    signal.dispose();
    if (daemon)
      out(
        `stopped: the daemon and ${ended.length} app server${ended.length === 1 ? '' : 's'}; the sandbox stays in ${dir} until the next demo`,
      );
  }
}
