import type { BranchConfig } from '../src/config/types.js';
import type { PluginContext, VcsPlugin } from '../src/plugin-api.js';
import type { VcsRegistry } from '../src/vcs.js';
import { createLogger } from '../src/log.js';
import { Poller } from '../src/poll/poller.js';
import { redactor } from '../src/util/redact.js';
import { run } from '../src/util/exec.js';
import { sharedSshWords } from '../src/util/ssh.js';
import { createGitPlugin } from '../plugins/git/index.js';
import { createSvnPlugin } from '../plugins/svn/index.js';

/**
 * The Poller as the daemon runs it, with the built-in git and svn plugins
 * counting every child process they start (their `onRun` option), so a poll
 * cycle's remote queries are counted without a PATH shim.
 */
export interface BenchSource {
  vcs: 'git' | 'svn';
  url: string;
  ref?: string;
  name?: string;
}

export function branchConfig(
  name: string,
  dir: string,
  sources: BenchSource[],
  intervalMs = 60_000,
): BranchConfig {
  return {
    name,
    dir,
    customers: [],
    mailin: [],
    mailout: false,
    keep: 5,
    steps: [],
    create: [],
    notify: [],
    line: 1,
    poll: { intervalMs, timeoutMs: 30_000, quietMs: 0 },
    stepTimeoutMs: 60_000,
    sources: sources.map((s, i) => ({
      name: s.name ?? `s${i}`,
      vcs: s.vcs,
      url: s.url,
      ref: s.ref,
      path: `src/s${i}`,
      options: {},
      line: 1,
    })),
  };
}

export interface CountingPoller {
  poller: Poller;
  /** argv of every child process the plugins started, in order. */
  children: string[][];
  /** The plugin instances the Poller uses, by name. */
  plugins: Record<string, VcsPlugin>;
}

export async function countingPoller(
  branches: BranchConfig[],
  stateDir: string,
): Promise<CountingPoller> {
  const children: string[][] = [];
  const ctx: PluginContext = {
    log: createLogger({ level: 'error' }),
    stateDir,
    redact: (t) => redactor.redact(t),
    run,
    sshWords: () => sharedSshWords(stateDir),
  };
  const onRun = (argv: readonly string[]) => {
    children.push([...argv]);
  };
  const plugins: Record<string, VcsPlugin> = {
    git: createGitPlugin(ctx, { onRun }),
    svn: createSvnPlugin(ctx, { onRun }),
  };
  // Only `get` of the registry is used by the Poller.
  const vcs = { get: (name: string) => Promise.resolve(plugins[name]) } as unknown as VcsRegistry;
  const poller = new Poller({
    vcs,
    log: ctx.log,
    tracks: {},
    persist: () => undefined,
    events: { changed: () => undefined, polled: () => undefined },
  });
  await poller.setBranches(branches, false);
  return { poller, children, plugins };
}
