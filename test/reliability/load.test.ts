/**
 * Load: 200 branches over 4 git repositories, commits arriving continuously,
 * against the real daemon. The queue never holds a branch twice (so never
 * more entries than branches), memory stays bounded, and when the commits
 * stop every branch's newest revision gets built.
 *
 * CI runs a short variant; STAGEPOST_SOAK=1 runs it for minutes
 * (STAGEPOST_SOAK_SECONDS, default 300).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { git } from '../helpers/git.js';
import { freePort } from '../plugins/vcs-helpers.js';
import type { BranchState } from '../../src/state/store.js';
import { Daemons, prng, readStateFiles, sleep, writeCi } from './helpers.js';
import { until } from '../helpers/wait.js';

const SOAK = process.env.STAGEPOST_SOAK === '1';
const COMMIT_SECONDS = SOAK ? Number(process.env.STAGEPOST_SOAK_SECONDS ?? 300) : 12;
const REPOS = 4;
const PER_REPO = 50;
const BRANCHES = REPOS * PER_REPO;
/** Generous for node + tsx + fastify; a leak of per-poll or per-build objects passes it within the soak. */
const RSS_LIMIT_MB = 400;

let t: ReturnType<typeof tempDir>;
const daemons = new Daemons();
beforeEach(() => {
  t = tempDir('stagepost-load-');
});
afterEach(async () => {
  await daemons.killAll();
  t.cleanup();
});

/** A bare repository whose refs are moved by plumbing (fast enough for hundreds of commits). */
function makeRepo(name: string): {
  url: string;
  commit(ref: string, text: string): string;
  head(ref: string): string;
} {
  const bare = path.join(t.dir, `${name}.git`);
  execFileSync('git', ['init', '--bare', '-q', bare]);
  const run = (args: string[], input?: string) =>
    execFileSync('git', args, {
      cwd: bare,
      input,
      encoding: 'utf8',
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: 'Load',
        GIT_AUTHOR_EMAIL: 'load@example.com',
        GIT_COMMITTER_NAME: 'Load',
        GIT_COMMITTER_EMAIL: 'load@example.com',
      },
    }).trim();
  const tree = run(['mktree'], '');
  return {
    url: `file://${bare}`,
    commit(ref, text) {
      let parent: string[] = [];
      try {
        parent = ['-p', run(['rev-parse', '-q', '--verify', `refs/heads/${ref}`])];
      } catch {
        /* first commit */
      }
      const id = run(['commit-tree', tree, ...parent, '-m', text]);
      run(['update-ref', `refs/heads/${ref}`, id]);
      return id;
    },
    head: (ref) => git(bare, ['rev-parse', `refs/heads/${ref}`]),
  };
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

test(
  `${BRANCHES} branches, commits for ${COMMIT_SECONDS}s: bounded queue, bounded memory, every newest revision built`,
  async () => {
    const random = prng(7);
    const repos = Array.from({ length: REPOS }, (_, i) => makeRepo(`repo${i}`));
    const names: Array<{ name: string; repo: number; ref: string }> = [];
    for (let r = 0; r < REPOS; r++) {
      for (let i = 0; i < PER_REPO; i++) {
        const ref = `b${i}`;
        repos[r].commit(ref, `first ${r}/${ref}`);
        names.push({ name: `r${r}-b${i}`, repo: r, ref });
      }
    }
    const port = await freePort();
    const file = writeCi(
      t.dir,
      `steps:
  - { name: record, run: 'echo "$STAGEPOST_BUILD $STAGEPOST_REV_APP" >> builds.txt' }
http: { listen: ${port} }
branches:
${names
  .map(
    (b) => `  ${b.name}:
    dir: ./sites/${b.name}
    sources: [{ name: app, vcs: git, url: "${repos[b.repo].url}", ref: ${b.ref}, path: src/app }]
`,
  )
  .join('')}`,
      {
        poll: '{ interval: 500ms, timeout: 20s }',
        builds: '{ concurrency: 4, step_timeout: 30s, shutdown_grace: 1s }',
      },
    );
    const d = daemons.start(file);
    await d.waitFor((e) => e.msg === 'stagepost started', { timeoutMs: 20_000 });
    const pid = d.child.pid!;

    const samples = {
      maxQueue: 0,
      duplicateInQueue: 0,
      maxRssMb: 0,
      statusCalls: 0,
      rss: [] as number[],
    };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const doc = (await (await fetch(`http://127.0.0.1:${port}/api/status`)).json()) as {
          queue: string[];
        };
        samples.statusCalls += 1;
        samples.maxQueue = Math.max(samples.maxQueue, doc.queue.length);
        if (new Set(doc.queue).size !== doc.queue.length) samples.duplicateInQueue += 1;
        const rss = rssMb(pid);
        samples.maxRssMb = Math.max(samples.maxRssMb, rss);
        samples.rss.push(rss);
        await sleep(250);
      }
    })();

    let commits = 0;
    const end = Date.now() + COMMIT_SECONDS * 1000;
    while (Date.now() < end) {
      for (let k = 0; k < 10; k++) {
        const b = names[Math.floor(random() * names.length)];
        repos[b.repo].commit(b.ref, `commit ${commits} on ${b.name}`);
        commits += 1;
      }
      await sleep(100);
    }
    const heads = Object.fromEntries(names.map((b) => [b.name, repos[b.repo].head(b.ref)]));
    const stateDir = path.join(t.dir, 'state');
    const unbuilt = () => {
      const st = readStateFiles(stateDir) as Record<string, BranchState>;
      return names
        .filter((b) => st[`branches/${b.name}.json`]?.built.app !== heads[b.name])
        .map((b) => b.name);
    };
    await until(
      () => unbuilt().length === 0,
      `every newest revision built (left: ${unbuilt().slice(0, 5).join(' ')}…)`,
      SOAK ? 300_000 : 60_000,
    );
    sampling = false;
    await sampler;
    expect(await d.stop()).toBe(0);

    const builds = d.count((e) => e.msg === 'build finished');
    const failed = d.count((e) => e.msg === 'build finished' && e.result !== 'success');

    console.log(
      `load: ${BRANCHES} branches, ${commits} commits in ${COMMIT_SECONDS}s, ${builds} builds (${failed} not success), max queue ${samples.maxQueue}, max RSS ${samples.maxRssMb.toFixed(0)} MB (first ${samples.rss[0]?.toFixed(0)}, last ${samples.rss.at(-1)?.toFixed(0)}), ${samples.statusCalls} status samples`,
    );
    expect(samples.statusCalls).toBeGreaterThan(5);
    expect(samples.duplicateInQueue).toBe(0);
    expect(samples.maxQueue).toBeLessThanOrEqual(BRANCHES);
    expect(samples.maxRssMb).toBeLessThan(RSS_LIMIT_MB);
    expect(failed).toBe(0);
    // Coalescing: far fewer builds than first builds plus commits.
    expect(builds).toBeLessThan(BRANCHES + commits);
  },
  SOAK ? 3_600_000 : 120_000,
);
