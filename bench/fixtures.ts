import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { BranchConfig } from '../src/config/types.js';
import { StateStore, emptyBranchState } from '../src/state/store.js';
import { trackKey } from '../src/poll/tracks.js';
import { makeGitRemote, type GitRemote } from '../test/helpers/git.js';
import { makeSvnRemote, svn } from '../test/helpers/svn.js';
import { branchConfig, countingPoller, type BenchSource } from './inprocess.js';

/**
 * The bench's world: R bare git repositories with many branches each, one svn
 * repository with many branch URLs, a ci.yaml over them, and a state as if
 * every branch had been built, so a daemon started on it has nothing to build.
 */
export interface BenchBranch {
  name: string;
  source: BenchSource;
  remote?: GitRemote;
}

/** `count` stagepost branches spread round-robin over `repos` git repositories, one ref each. */
export function makeGitRepos(
  root: string,
  repos: number,
  count: number,
  prefix = 'g',
): BenchBranch[] {
  const remotes = Array.from({ length: repos }, (_, r) => makeGitRemote(root, `${prefix}repo${r}`));
  const heads = remotes.map((remote) => remote.commit('main'));
  const branches: BenchBranch[] = Array.from({ length: count }, (_, i) => {
    const r = i % repos;
    return {
      name: `${prefix}${i}`,
      remote: remotes[r],
      source: { vcs: 'git', url: remotes[r].url, ref: `${prefix}${i}`, name: 'app' },
    };
  });
  // All refs of a repository in one update-ref transaction: fast even for 1,000.
  remotes.forEach((remote, r) => {
    const input = branches
      .filter((b) => b.remote === remote)
      .map((b) => `create refs/heads/${b.source.ref} ${heads[r]}\n`)
      .join('');
    execFileSync('git', ['update-ref', '--stdin'], { cwd: remote.bare, input });
  });
  return branches;
}

/** One svn repository with `count` branch URLs, made in one commit. */
export function makeSvnBranches(root: string, count: number): BenchBranch[] {
  const remote = makeSvnRemote(root, 'svnrepo');
  remote.commit('trunk');
  const urls = Array.from({ length: count }, (_, i) => `${remote.url}/branches/s${i}`);
  svn(['mkdir', '-m', 'branches', ...urls]);
  return urls.map((url, i) => ({ name: `s${i}`, source: { vcs: 'svn', url, name: 'app' } }));
}

export function benchConfigs(
  root: string,
  branches: BenchBranch[],
  intervalMs = 60_000,
): BranchConfig[] {
  return branches.map((b) =>
    branchConfig(b.name, path.join(root, 'sites', b.name), [b.source], intervalMs),
  );
}

export interface ConfigOptions {
  interval: string;
  http?: { port: number; token: string };
}

/** A ci.yaml over the branches, with one trivial step. Returns its path. */
export function writeConfig(dir: string, branches: BenchBranch[], options: ConfigOptions): string {
  mkdirSync(dir, { recursive: true });
  const doc = {
    version: 1,
    state_dir: './state',
    poll: { interval: options.interval, timeout: '30s' },
    builds: { concurrency: 1, step_timeout: '30s' },
    steps: [{ name: 'noop', run: 'true' }],
    ...(options.http
      ? { http: { listen: `127.0.0.1:${options.http.port}`, token: options.http.token } }
      : {}),
    branches: Object.fromEntries(
      branches.map((b) => [
        b.name,
        {
          dir: `./sites/${b.name}`,
          sources: [
            {
              name: b.source.name ?? 'app',
              vcs: b.source.vcs,
              url: b.source.url,
              ...(b.source.ref ? { ref: b.source.ref } : {}),
              path: 'src/app',
            },
          ],
        },
      ]),
    ),
  };
  const file = path.join(dir, 'ci.yaml');
  writeFileSync(file, YAML.stringify(doc));
  return file;
}

/**
 * Write poll.json and branches/*.json as if every branch had been built at
 * the remote's current revisions (asked once, in process), so nothing builds.
 */
export async function writeBuiltState(configDir: string, branches: BenchBranch[]): Promise<void> {
  const configs = benchConfigs(configDir, branches);
  const { poller } = await countingPoller(configs, path.join(configDir, 'state', 'plugins'));
  await poller.pollNow();
  poller.stop();
  const store = new StateStore(path.join(configDir, 'state'));
  await store.init();
  await store.writePoll({ version: 1, tracks: poller.tracks });
  for (const b of configs) {
    const source = b.sources[0];
    const revision = poller.tracks[trackKey(source)]?.revision;
    if (!revision)
      throw new Error(`bench: no revision for ${b.name} (${source.url} ${source.ref ?? ''})`);
    await store.writeBranch(b.name, {
      ...emptyBranchState(),
      attempted: { [source.name]: revision },
      built: { [source.name]: revision },
      nextId: 2,
    });
  }
}
