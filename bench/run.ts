/**
 * The cost of polling (issue 7): remote queries per cycle, wall time of one
 * poll, the daemon's CPU and memory at rest, commit-to-build latency.
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
import { measureLatency } from './latency.js';
import { median } from './proc.js';
import { Report } from './report.js';

const QUICK = process.env.BENCH_QUICK === '1';
const REPOS = 10;
const BRANCHES = 130;
const SVN_URLS = 30;
const BIG = QUICK ? 300 : 1000;

const started = Date.now();
const t = tempDir('stagepost-bench-');
const at = (name: string) => path.join(t.dir, name);
const report = new Report();
const progress = (what: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)}s] ${what}\n`);

try {
  progress('making repositories');
  const git = makeGitRepos(at('repos'), REPOS, BRANCHES, 'g');
  const svn = makeSvnBranches(at('repos'), SVN_URLS);
  const big = makeGitRepos(at('repos-big'), REPOS, BIG, 'k');

  progress('1. queries per cycle');
  const gitPoller = await countingPoller(benchConfigs(at('inproc'), git), at('inproc-state'));
  const svnPoller = await countingPoller(benchConfigs(at('inproc'), svn), at('inproc-state'));
  await gitPoller.poller.pollNow();
  await svnPoller.poller.pollNow();
  report.exact(`queries/cycle, git, Poller in process (${REPOS} repos, ${BRANCHES} branches)`, await inProcessPerCycle(gitPoller, 3), REPOS);
  report.exact(`queries/cycle, svn, Poller in process (1 repo, ${SVN_URLS} branch URLs)`, await inProcessPerCycle(svnPoller, 3), 1);
  gitPoller.poller.stop();
  svnPoller.poller.stop();

  const shim = makeShim(at('shim'));
  const cliConfig = writeConfig(at('cli'), [...git, ...svn], { interval: '60s' });
  const cliCalls = await cliChildren(cliConfig, shim);
  report.exact(`children of one \`stagepost poll\` (PATH shim; ${REPOS} git + 1 svn repos, ${BRANCHES + SVN_URLS} branches)`, cliCalls.length, REPOS + 1);

  const d = await daemonChildren(at('daemon-shim'), git, shim, { intervalMs: 1000, windowMs: QUICK ? 4000 : 8000 });
  const others = d.calls.filter((c) => !c.startsWith('git ls-remote'));
  report.atMost(`daemon children/cycle (PATH shim, ${BRANCHES} branches, 1s interval, ${d.cycles} cycles; other than ls-remote: ${others.length})`,
    others.length > 0 ? Infinity : d.calls.length / d.cycles, REPOS, 1);

  progress('2. wall time of one poll');
  const raw: RawQuery[] = [
    ...Array.from({ length: REPOS }, (_, r): RawQuery => ['git', ['ls-remote', git[r]!.source.url]]),
    ['svn', ['info', '--xml', '--non-interactive', ...svn.map((b) => b.source.url)]],
  ];
  const allPoller = await countingPoller(benchConfigs(at('inproc'), [...git, ...svn]), at('inproc-state'));
  await allPoller.poller.pollNow();
  const w = await measureWall(cliConfig, raw, allPoller, 7);
  allPoller.poller.stop();
  report.info(`raw: ${REPOS} \`git ls-remote\` + 1 \`svn info\`, sequential (median of ${w.runs}, alternated)`, `${w.rawMs.toFixed(1)} ms`);
  report.info('`stagepost poll`, whole process', `${w.cliMs.toFixed(0)} ms`);
  report.info('`stagepost --help` (start-up: node + tsx + imports)', `${w.helpMs.toFixed(0)} ms`);
  report.ratio('poll ratio, in-process Poller / raw', w.inProcessMs, w.rawMs, 1.0);
  report.ratio('poll ratio, (`stagepost poll` − start-up) / raw', w.cliMs - w.helpMs, w.rawMs, 1.0);

  progress('3. daemon at rest');
  const rest = async (name: string, branches: typeof git, checkRss: boolean) => {
    const r = await measureAtRest(at(name), branches, { intervalMs: 1000, settleMs: QUICK ? 2000 : 3000, windowMs: QUICK ? 8000 : 20_000 });
    restRows(r, checkRss);
  };
  const restRows = (r: RestFigures, checkRss: boolean) => {
    const label = `daemon at rest, ${r.branches} branches / ${REPOS} repos, 1s interval, ${r.windowMs / 1000}s window`;
    report.info(`${label}: queries, builds started`, `${r.queries} queries (${(r.queries / r.cycles).toFixed(1)}/cycle), ${r.buildsStarted} builds`);
    report.atMost(`${label}: own CPU per remote query`, r.selfMs / r.queries, 1, 2, 'ms');
    report.info(`${label}: own CPU per cycle`, `${(r.selfMs / r.cycles).toFixed(1)} ms`);
    report.atMost(`${label}: CPU with git children per query`, r.withChildrenMs / r.queries, 6, 2, 'ms');
    const [first, last, max] = [r.rss[0]!, r.rss.at(-1)!, Math.max(...r.rss)];
    const rss = `${first.toFixed(1)} → ${last.toFixed(1)} MB (max ${max.toFixed(1)})`;
    if (checkRss) report.atMost(`${label}: RSS start → end`, max, 80, 1, 'MB', rss);
    else report.info(`${label}: RSS start → end`, rss);
    report.atMost(`${label}: RSS growth over the window`, last - first, 5, 1, 'MB');
  };
  await rest('rest-small', git, true);
  await rest('rest-big', big, false);

  progress('4. commit-to-build-start latency');
  const samples = QUICK ? 3 : 6;
  const polled = await measureLatency(at('latency-poll'), git, { mode: 'poll', interval: '2s', samples });
  report.atMost(`latency, polling every 2s (${samples} commits; median ${median(polled).toFixed(0)} ms), max`, Math.max(...polled), 3000, 0, 'ms');
  const hooked = await measureLatency(at('latency-hook'), git, { mode: 'hook', interval: '1h', samples });
  report.atMost(`latency, commit hook POST /api/poll, 1h interval (${samples} commits; median ${median(hooked).toFixed(0)} ms), max`, Math.max(...hooked), 1000, 0, 'ms');
} finally {
  t.cleanup();
}

console.log([`stagepost bench${QUICK ? ' (BENCH_QUICK)' : ''} — ${new Date().toISOString()}`, ...machineLines(), '', report.render(), '', `bench took ${((Date.now() - started) / 1000).toFixed(0)} s`].join('\n'));
process.exitCode = report.failed() ? 1 : 0;
