/**
 * The cost of polling (issue 7): remote queries per cycle, wall time of one
 * poll, the daemon's CPU and memory at rest, commit-to-build latency; and
 * of a cluster of three hosts on PostgreSQL (bench/cluster.ts).
 * `npm run bench`; BENCH_QUICK=1 for shorter windows and fewer samples.
 */
import path from 'node:path';
import { tempDir } from '../test/helpers/tmp.js';
import { machineLines } from './machine.js';
import { benchConfigs, makeGitRepos, makeSvnBranches, writeConfig } from './fixtures.js';
import { countingPoller } from './inprocess.js';
import { makeShim } from './shim.js';
import { cliChildren, daemonChildren, inProcessPerCycle } from './queries.js';
import { measureWall, type RawQuery } from './wall.js';
import { measureAtRest, type RestFigures } from './rest.js';
import { measureSsh } from './ssh.js';
import { DAEMON_NODE_FLAGS } from './daemon.js';
import { measureLatency } from './latency.js';
import { median } from './proc.js';
import { spawnFloor } from './floor.js';
import { Report, benchText } from './report.js';
import { clusterSection } from './cluster.js';

const QUICK = process.env.BENCH_QUICK === '1';
const REPOS = 10;
const BRANCHES = 130;
const SVN_URLS = 30;
const BIG = QUICK ? 300 : 1000;

const started = Date.now();
const t = tempDir('stagepost-bench-');
const at = (name: string) => path.join(t.dir, name);
const report = new Report();
const progress = (what: string) =>
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)}s] ${what}\n`);

try {
  progress('making repositories');
  const git = makeGitRepos(at('repos'), REPOS, BRANCHES, 'g');
  const svn = makeSvnBranches(at('repos'), SVN_URLS);
  const big = makeGitRepos(at('repos-big'), REPOS, BIG, 'k');

  progress('1. queries per cycle');
  report.section('1. Remote queries per poll cycle (floor: one per repository)');
  const gitPoller = await countingPoller(benchConfigs(at('inproc'), git), at('inproc-state'));
  const svnPoller = await countingPoller(benchConfigs(at('inproc'), svn), at('inproc-state'));
  await gitPoller.poller.pollNow();
  await svnPoller.poller.pollNow();
  report.exact(
    `  git, Poller in process: ${REPOS} repos, ${BRANCHES} branches`,
    await inProcessPerCycle(gitPoller, 3),
    REPOS,
  );
  report.exact(
    `  svn, Poller in process: 1 repo, ${SVN_URLS} branch URLs`,
    await inProcessPerCycle(svnPoller, 3),
    1,
  );
  gitPoller.poller.stop();
  svnPoller.poller.stop();

  const shim = makeShim(at('shim'));
  const cliConfig = writeConfig(at('cli'), [...git, ...svn], { interval: '60s' });
  const cliCalls = await cliChildren(cliConfig, shim);
  report.exact(
    `  \`stagepost poll\`, PATH shim: ${REPOS + 1} repos, ${BRANCHES + SVN_URLS} branches`,
    cliCalls.length,
    REPOS + 1,
  );

  const d = await daemonChildren(at('daemon-shim'), git, shim, {
    intervalMs: 1000,
    windowMs: QUICK ? 4000 : 8000,
  });
  const uploadPacks = d.calls.filter((c) => c.startsWith('git upload-pack --stateless-rpc')).length;
  const lsRemotes = d.calls.filter((c) => c.startsWith('git ls-remote')).length;
  const others = d.calls.length - uploadPacks - lsRemotes;
  report.atMost(
    `  daemon, PATH shim: ${BRANCHES} branches, ${d.cycles} s at 1s`,
    others > 0 ? Infinity : d.calls.length / d.cycles,
    REPOS,
    1,
    '',
    `${(d.calls.length / d.cycles).toFixed(1)} (${uploadPacks} upload-pack, ${lsRemotes} ls-remote, ${others} other)`,
  );

  progress('2. wall time of one poll');
  report.section('2. Wall time of one poll (median of 7, alternated in one run)');
  const raw: RawQuery[] = [
    ...Array.from({ length: REPOS }, (_, r): RawQuery => ['git', ['ls-remote', git[r].source.url]]),
    ['svn', ['info', '--xml', '--non-interactive', ...svn.map((b) => b.source.url)]],
  ];
  const allPoller = await countingPoller(
    benchConfigs(at('inproc'), [...git, ...svn]),
    at('inproc-state'),
  );
  await allPoller.poller.pollNow();
  const w = await measureWall(cliConfig, raw, allPoller, 7);
  allPoller.poller.stop();
  report.info(
    `  raw: ${REPOS} git ls-remote + 1 svn info, one after another`,
    `${w.rawMs.toFixed(1)} ms`,
  );
  report.info("  Poller in process (the daemon's cycle)", `${w.inProcessMs.toFixed(1)} ms`);
  report.info('  `stagepost poll`, whole process', `${w.cliMs.toFixed(0)} ms`);
  report.info(
    '    its start-up: node, imports, ci.yaml, state, plugins',
    `${w.cliStartupMs.toFixed(0)} ms`,
  );
  report.info('    its poll: first query to last answer', `${w.cliPollMs.toFixed(1)} ms`);
  report.info(
    "  `stagepost --help` (node and the CLI's imports only)",
    `${w.helpMs.toFixed(0)} ms`,
  );
  report.ratio('  ratio: Poller in process / raw', w.inProcessMs, w.rawMs, 1.0);
  report.ratio('  ratio: `stagepost poll`, its poll / raw', w.cliPollMs, w.rawMs, 1.0);

  progress('3. daemon at rest');
  // Settle past the first major GC of start-up garbage, so RSS at the window's start is the daemon's own.
  const windowMs = QUICK ? 8000 : 20_000;
  // Past start-up: V8 is still compiling hot functions for the first ~20 s
  // at ten queries a second; "at rest" is the daemon that has run a while.
  const settleMs = QUICK ? 5000 : 20_000;
  report.section(
    `3. Daemon at rest (all built, nothing changing; ${settleMs / 1000} s to settle, then a ${windowMs / 1000} s window; CPU from /proc/<pid>/stat)`,
  );
  report.info(
    '  daemon started as config/stagepost.service does',
    `node ${DAEMON_NODE_FLAGS.join(' ')} bin/stagepost.js run`,
  );
  const idle = await measureAtRest(at('rest-idle'), git, {
    intervalMs: 3_600_000,
    settleMs,
    windowMs: QUICK ? 5000 : 10_000,
  });
  report.info(
    `  ${BRANCHES} branches, interval 1h (no queries): own CPU`,
    `${(idle.selfMs / (idle.windowMs / 1000)).toFixed(1)} ms/s, ${idle.rss.at(-1)!.toFixed(1)} MB RSS`,
  );
  const floor = spawnFloor('ls-remote', git[0].source.url, QUICK ? 100 : 300);
  report.info(
    '  floor: bare node (no tsx) spawning git ls-remote, per query',
    `own ${floor.selfMs.toFixed(2)} ms, git children ${floor.childrenMs.toFixed(2)} ms`,
  );
  const floorLocal = spawnFloor('upload-pack', git[0].remote!.bare, QUICK ? 100 : 300);
  report.info(
    '  floor: the same spawning git upload-pack (ls-refs on stdin)',
    `own ${floorLocal.selfMs.toFixed(2)} ms, git children ${floorLocal.childrenMs.toFixed(2)} ms`,
  );
  const restRows = (r: RestFigures, label: string, checkRss: boolean) => {
    report.info(
      `${label}: remote queries, builds started`,
      `${r.queries} (${(r.queries / r.cycles).toFixed(1)}/cycle), ${r.buildsStarted} builds`,
    );
    report.atMost(`${label}: own CPU per remote query`, r.selfMs / r.queries, 2, 2, 'ms');
    report.info(`${label}: own CPU per cycle`, `${(r.selfMs / r.cycles).toFixed(1)} ms`);
    report.atMost(
      `${label}: CPU with every descendant per query`,
      r.withChildrenMs / r.queries,
      6,
      2,
      'ms',
      `${(r.withChildrenMs / r.queries).toFixed(2)} ms (children ${((r.withChildrenMs - r.selfMs) / r.queries).toFixed(2)})`,
    );
    const [first, last, max] = [r.rss[0], r.rss.at(-1)!, Math.max(...r.rss)];
    const rss = `${first.toFixed(1)} -> ${last.toFixed(1)} MB (max ${max.toFixed(1)})`;
    if (checkRss) report.atMost(`${label}: RSS start -> end`, max, 80, 1, 'MB', rss);
    else report.info(`${label}: RSS start -> end`, rss);
    // Flat: the heap saw-tooths, so compare the means of the window's first and last quarters.
    const quarter = Math.max(1, Math.floor(r.rss.length / 4));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    report.atMost(
      `${label}: RSS growth, last vs first quarter`,
      mean(r.rss.slice(-quarter)) - mean(r.rss.slice(0, quarter)),
      5,
      1,
      'MB',
    );
  };
  restRows(
    await measureAtRest(at('rest-small'), git, { intervalMs: 1000, settleMs, windowMs }),
    `  ${BRANCHES} branches, 1s`,
    true,
  );
  restRows(
    await measureAtRest(at('rest-big'), big, { intervalMs: 1000, settleMs, windowMs }),
    `  ${big.length} branches, 1s`,
    false,
  );

  progress('4. commit-to-build-start latency');
  const samples = QUICK ? 3 : 6;
  report.section(
    `4. Commit-to-build-start latency (${samples} commits each, to \`build started\` in the JSON log)`,
  );
  const polled = await measureLatency(at('latency-poll'), git, {
    mode: 'poll',
    interval: '2s',
    samples,
  });
  report.atMost(
    `  polling every 2s: max (median ${median(polled).toFixed(0)} ms)`,
    Math.max(...polled),
    3000,
    0,
    'ms',
  );
  const hooked = await measureLatency(at('latency-hook'), git, {
    mode: 'hook',
    interval: '1h',
    samples,
  });
  report.atMost(
    `  commit hook POST /api/poll, 1h interval: max (median ${median(hooked).toFixed(0)} ms)`,
    Math.max(...hooked),
    1000,
    0,
    'ms',
  );

  progress('5. ssh remote');
  report.section('5. An ssh remote (a real sshd on 127.0.0.1), polled by the git plugin');
  const ssh = await measureSsh(at('ssh'), QUICK ? 5 : 15);
  if (!ssh) {
    report.info('  skipped: no /usr/sbin/sshd (Debian: openssh-server)', '');
  } else {
    report.exact(
      `  ssh logins for ${ssh.polls} polls with the shared connection`,
      ssh.sharedLogins,
      1,
    );
    report.info('  first poll (opens the connection)', `${ssh.firstMs.toFixed(1)} ms`);
    report.info(
      '  later polls, shared connection: median',
      `${median(ssh.sharedMs).toFixed(1)} ms`,
    );
    report.info(
      '  polls with a login each (own GIT_SSH_COMMAND): median',
      `${median(ssh.loginMs).toFixed(1)} ms`,
    );
    report.info(
      '  `ssh host true` over the shared connection: median',
      `${median(ssh.trueMs).toFixed(1)} ms`,
    );
    report.ratio(
      '  ratio: poll over the shared connection / `ssh host true`',
      median(ssh.sharedMs),
      median(ssh.trueMs),
      1.5,
    );
  }

  progress('6. a cluster of three hosts');
  await clusterSection(report, at('cluster'), { quick: QUICK, progress });
} finally {
  t.cleanup();
}

console.log(
  benchText(`stagepost bench${QUICK ? ' (BENCH_QUICK)' : ''}`, machineLines(), report, started),
);
process.exitCode = report.failed() ? 1 : 0;
