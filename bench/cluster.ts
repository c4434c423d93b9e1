/**
 * The cost of a cluster (issue: "a bench section"): three hosts sharing one
 * ci.yaml and a real PostgreSQL, 30 repositories × 4 branches spread over
 * them, beside a single-host daemon polling the same 120 branches in the same
 * run. Measured: remote queries per cycle of the whole cluster, database
 * statements per cycle, each host's CPU per cycle, commit → build start.
 *
 * Alone: `node --import tsx bench/cluster.ts` (after `npm run build`);
 * BENCH_QUICK=1 for a shorter window and fewer commits. `npm run bench` runs
 * it as section 6.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import YAML from 'yaml';
import { tempDir } from '../test/helpers/tmp.js';
import { DaemonProcess, isBuildFinished, isBuildStarted } from '../test/helpers/cli.js';
import { gitWrapper } from '../test/helpers/cluster.js';
import { freePort } from '../test/plugins/vcs-helpers.js';
import { isGitQuery } from '../test/helpers/git.js';
import { hasPostgres, startPostgres, type PgServer } from '../test/helpers/postgres.js';
import { makeGitRepos, writeConfig, type BenchBranch } from './fixtures.js';
import { DAEMON_NODE_FLAGS } from './daemon.js';
import { cpuOf, median, sleep, type Cpu } from './proc.js';
import { machineLines } from './machine.js';
import { Report, benchText } from './report.js';

const REPOS = 30;
const PER_REPO = 4;
const HOSTS = ['a', 'b', 'c'];
const INTERVAL_S = 2;
const TOKEN = 'bench-token';

export interface ClusterOptions {
  quick: boolean;
  progress(what: string): void;
}

/** Host of branch i: every repository has sites on all three hosts, 40 sites each. */
const hostOf = (i: number) => HOSTS[(i + Math.floor(i / REPOS)) % HOSTS.length];

/** One ci.yaml for all hosts: the fixtures' single-host file plus `cluster:` and `host:` per site. */
function writeClusterConfig(dir: string, branches: BenchBranch[], httpPort: number): string {
  const file = writeConfig(dir, branches, {
    interval: `${INTERVAL_S}s`,
    http: { port: httpPort, token: TOKEN },
  });
  const doc = YAML.parse(readFileSync(file, 'utf8')) as {
    state_dir: string;
    cluster?: unknown;
    branches: Record<string, { host?: string }>;
  };
  doc.state_dir = './state-{host}';
  doc.cluster = { database: '${STAGEPOST_DATABASE_URL}', heartbeat: '5s' };
  branches.forEach((b, i) => (doc.branches[b.name].host = hostOf(i)));
  // `cluster:` after state_dir, as a person would write it.
  const { state_dir, cluster, ...rest } = doc;
  writeFileSync(file, YAML.stringify({ version: 1, state_dir, cluster, ...rest }));
  return file;
}

/** Every git the processes start, logged as `<STAGEPOST_HOST> <args>` (test/helpers/cluster.ts). */
function queriesIn(log: string): Record<string, number> {
  const count: Record<string, number> = {};
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    if (!line) continue;
    const [who, ...command] = line.split(' ');
    if (isGitQuery(command)) count[who] = (count[who] ?? 0) + 1;
  }
  return count;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** The database's view: statements (pg_stat_statements), transactions, the server's CPU. */
class DbMeter {
  private constructor(
    /** To the `postgres` database: the bench's own statements are not counted with the hosts'. */
    private readonly client: pg.Client,
    /** To the hosts' database, for pg-boss's job table. */
    private readonly hostsDb: pg.Client,
    private readonly server: PgServer,
  ) {}

  static async open(server: PgServer, hostsUrl: string): Promise<DbMeter> {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const hostsDb = new pg.Client({ connectionString: hostsUrl });
    await hostsDb.connect();
    return new DbMeter(client, hostsDb, server);
  }

  /** The postmaster: its descendants are the backends, so cpuOf() counts the whole server. */
  postmaster(): number {
    return Number(
      readFileSync(path.join(this.server.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0],
    );
  }

  async reset(): Promise<void> {
    await this.client.query('SELECT pg_stat_statements_reset()');
  }

  /** Poll jobs pg-boss created per time slot (singleton_on) between two instants. */
  async pollJobsPerSlot(from: Date, to: Date): Promise<number[]> {
    const { rows } = await this.hostsDb.query<{ n: string }>(
      `SELECT count(*) AS n FROM stagepost_boss.job_common
       WHERE name = 'stagepost-poll' AND singleton_on >= $1 AND singleton_on < $2
       GROUP BY singleton_on ORDER BY singleton_on`,
      [from.toISOString(), to.toISOString()],
    );
    return rows.map((r) => Number(r.n));
  }

  /** Poll jobs of those slots: ms from created to started (waiting for a worker), and from started to completed. */
  async pollJobTimes(
    from: Date,
    to: Date,
  ): Promise<{ waitMs: number[]; runMs: number[]; startPhaseMs: number[] }> {
    const { rows } = await this.hostsDb.query<{ wait: number; run: number; phase: number }>(
      `SELECT extract(epoch FROM started_on - created_on) * 1000 AS wait,
              extract(epoch FROM completed_on - started_on) * 1000 AS run,
              (extract(epoch FROM started_on) * 1000)::bigint % ${INTERVAL_S * 1000} AS phase
       FROM stagepost_boss.job_common
       WHERE name = 'stagepost-poll' AND singleton_on >= $1 AND singleton_on < $2 AND completed_on IS NOT NULL`,
      [from.toISOString(), to.toISOString()],
    );
    return {
      waitMs: rows.map((r) => Number(r.wait)),
      runMs: rows.map((r) => Number(r.run)),
      startPhaseMs: rows.map((r) => Number(r.phase)),
    };
  }

  /** Top-level statements run in the hosts' database since the last reset, by who sends them. */
  async statements(): Promise<{ query: string; calls: number }[]> {
    const { rows } = await this.client.query<{ query: string; calls: string }>(
      `SELECT query, calls FROM pg_stat_statements
       WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'stagepost') ORDER BY calls DESC`,
    );
    return rows.map((r) => ({ query: r.query, calls: Number(r.calls) }));
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
    await this.hostsDb.end().catch(() => undefined);
  }
}

/** Whose a statement is: pg-boss's (its schema), stagepost's own tables, a foreign-key check, or the rest (BEGIN, COMMIT, LISTEN). */
function ownerOf(query: string): 'pg-boss' | 'stagepost' | 'fk' | 'other' {
  // PostgreSQL's own check of a foreign key of pg-boss's job table, at commit.
  if (query.startsWith('SELECT 1 FROM ONLY')) return 'fk';
  if (query.includes('stagepost_boss')) return 'pg-boss';
  if (/stagepost\.|pg_notify|pg_advisory/.test(query)) return 'stagepost';
  return 'other';
}

/** Section 6 of the bench into `report`; `root` is a scratch dir. */
export async function clusterSection(
  report: Report,
  root: string,
  o: ClusterOptions,
): Promise<void> {
  const cycles = o.quick ? 8 : 20;
  const samples = o.quick ? 3 : 6;
  report.section(
    `6. A cluster: ${HOSTS.length} hosts × (${REPOS} repositories × ${PER_REPO} branches) on one PostgreSQL, polling every ${INTERVAL_S}s, beside a single-host daemon of the same ${REPOS * PER_REPO} branches (${cycles} cycles)`,
  );
  if (!hasPostgres()) {
    report.info('  skipped: no PostgreSQL (Debian: postgresql)', '');
    return;
  }
  const at = (name: string) => path.join(root, name);
  const branches = makeGitRepos(at('repos'), REPOS, REPOS * PER_REPO, 'c');
  const server = (await startPostgres({ name: 'bench-cluster' }))!;
  const daemons: DaemonProcess[] = [];
  let meter: DbMeter | null = null;
  try {
    // pg_stat_statements counts every statement the hosts send: loaded at start-up only.
    await server.stop();
    appendFileSync(
      path.join(server.dataDir, 'postgresql.conf'),
      "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = top\n",
    );
    await server.start();
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query('CREATE DATABASE stagepost');
    await admin.end();
    const databaseUrl = server.url.replace(/\/postgres$/, '/stagepost');

    o.progress('6. starting three hosts and a single-host daemon');
    const clusterFile = writeClusterConfig(at('cluster'), branches, 1);
    const singleFile = writeConfig(at('single'), branches, {
      interval: `${INTERVAL_S}s`,
      http: { port: await freePort(), token: TOKEN },
    });
    const wrapper = gitWrapper(root);
    const start = (file: string, host: string, runArgs: string[], env: NodeJS.ProcessEnv) => {
      const d = new DaemonProcess(
        file,
        {
          STAGEPOST_LOG_LEVEL: 'info',
          NODE_OPTIONS: '',
          STAGEPOST_HOST: host,
          GIT_CALLS_LOG: wrapper.log,
          PATH: `${wrapper.bin}:${process.env.PATH ?? ''}`,
          ...env,
        },
        DAEMON_NODE_FLAGS,
        runArgs,
      );
      daemons.push(d);
      return d;
    };
    const hosts: Record<string, DaemonProcess> = {};
    for (const h of HOSTS)
      hosts[h] = start(clusterFile, h, ['--http-port', String(await freePort())], {
        STAGEPOST_DATABASE_URL: databaseUrl,
      });
    // Not in a cluster: STAGEPOST_HOST only names its lines in the git log.
    const single = start(singleFile, 'single', [], {});
    const all: Record<string, DaemonProcess> = { ...hosts, single };
    // pg-boss's tables exist once a host has started.
    await Promise.all(
      Object.entries(all).map(([name, d]) =>
        d.waitFor((e) => e.msg === 'stagepost started', {
          timeoutMs: 60_000,
          what: `${name} to start`,
        }),
      ),
    );

    meter = await DbMeter.open(server, databaseUrl);

    o.progress('6. initial builds');
    const sites = (h: string) => branches.filter((_, i) => hostOf(i) === h).map((b) => b.name);
    const builtAll = (d: DaemonProcess, names: string[]) =>
      Promise.all(
        names.map((n) => d.waitFor(isBuildFinished(n), { timeoutMs: 600_000, what: `${n} built` })),
      );
    await Promise.all([
      ...HOSTS.map((h) => builtAll(hosts[h], sites(h))),
      builtAll(
        single,
        branches.map((b) => b.name),
      ),
    ]);
    const misplaced = HOSTS.map(
      (h) =>
        hosts[h].events.filter(
          (e) =>
            isBuildStarted()(e) && hostOf(branches.findIndex((b) => b.name === e.branch)) !== h,
        ).length,
    );
    report.exact(
      `  initial builds: ${REPOS * PER_REPO} sites, ${(REPOS * PER_REPO) / HOSTS.length} per host; builds on a host not holding the site`,
      sum(misplaced),
      0,
    );

    o.progress('6. settling');
    // Past start-up: the first cycles after the builds, V8 warming up.
    await sleep(o.quick ? 8_000 : 20_000);
    // Start mid-slot, so every slot of the window has all its queries in it.
    const period = INTERVAL_S * 1000;
    await sleep(period - (Date.now() % period) + period / 2);

    o.progress(`6. measuring ${cycles} cycles`);
    const cpu = (d: DaemonProcess): Cpu => cpuOf(d.child.pid!);
    const names = Object.keys(all);
    const q0 = queriesIn(wrapper.log);
    const cpu0 = names.map((n) => cpu(all[n]));
    const pgCpu0 = cpuOf(meter.postmaster());
    const builds0 = sum(names.map((n) => all[n].count(isBuildStarted())));
    await meter.reset();
    const t0 = Date.now();
    // Queries of the cluster in each cycle of the window (read mid-slot).
    const cycleQueries: number[] = [];
    let last = sum(HOSTS.map((h) => q0[h] ?? 0));
    for (let k = 1; k <= cycles; k++) {
      await sleep(Math.max(0, t0 + k * period - Date.now()));
      const q = queriesIn(wrapper.log);
      const now = sum(HOSTS.map((h) => q[h] ?? 0));
      cycleQueries.push(now - last);
      last = now;
    }
    const statements = await meter.statements();
    const pgCpu1 = cpuOf(meter.postmaster());
    const cpu1 = names.map((n) => cpu(all[n]));
    const q1 = queriesIn(wrapper.log);
    const measured = (Date.now() - t0) / period;
    const builds1 = sum(names.map((n) => all[n].count(isBuildStarted())));
    // The slots whose queries fell in the window: t0 is mid-slot, so from the next slot on.
    const firstSlot = new Date((Math.floor(t0 / period) + 1) * period);
    const afterLast = new Date(firstSlot.getTime() + cycles * period);
    const jobs = await meter.pollJobsPerSlot(firstSlot, afterLast);
    const jobTimes = await meter.pollJobTimes(firstSlot, afterLast);

    const queries = (who: string) => (q1[who] ?? 0) - (q0[who] ?? 0);
    const clusterQueries = sum(HOSTS.map(queries));
    report.exact(
      `  cluster: remote queries per cycle (${HOSTS.map((h) => `${h} ${queries(h)}`).join(', ')} in ${cycles})`,
      clusterQueries / cycles,
      REPOS,
    );
    report.info('    cluster queries in each cycle', cycleQueries.join(' '));
    report.info("    pg-boss poll jobs created in each cycle's slot", jobs.join(' '));
    report.info(
      '    poll jobs: created → started, median / max',
      `${median(jobTimes.waitMs).toFixed(0)} / ${Math.max(...jobTimes.waitMs).toFixed(0)} ms`,
    );
    // A job that waited about a whole slot was started by the next slot's wake-up (its phase near 0).
    const late = jobTimes.waitMs.flatMap((w, i) => (w > 1000 ? [jobTimes.startPhaseMs[i]] : []));
    report.info(
      '    poll jobs waiting over 1 s for a worker',
      late.length === 0
        ? '0'
        : `${late.length} of ${jobTimes.waitMs.length}, started ${Math.min(...late)}–${Math.max(...late)} ms into a slot`,
    );
    report.info(
      '    poll jobs: started → completed (the query), median / max',
      `${median(jobTimes.runMs).toFixed(0)} / ${Math.max(...jobTimes.runMs).toFixed(0)} ms`,
    );
    report.atMost(
      `  single-host daemon: remote queries per cycle (${queries('single')} in ${cycles})`,
      queries('single') / cycles,
      REPOS,
      1,
    );
    // This bench's own two statements (the reset is counted before the window opens, the read after).
    const byOwner = { 'pg-boss': 0, stagepost: 0, fk: 0, other: 0 };
    for (const s of statements)
      if (!/pg_stat_statements|pg_stat_clear_snapshot|pg_stat_database/.test(s.query))
        byOwner[ownerOf(s.query)] += s.calls;
    const total = byOwner['pg-boss'] + byOwner.stagepost + byOwner.other;
    const perCycleOf = (n: number) => (n / cycles).toFixed(1);
    report.info(
      '  cluster: database statements per cycle (pg_stat_statements)',
      `${perCycleOf(total)} (pg-boss ${perCycleOf(byOwner['pg-boss'])}, stagepost's tables ${perCycleOf(byOwner.stagepost)}, BEGIN/COMMIT/other ${perCycleOf(byOwner.other)})`,
    );
    report.info('    and run by PostgreSQL itself: foreign-key checks', perCycleOf(byOwner.fk));
    report.info(
      '  PostgreSQL server: CPU per cycle (all its processes)',
      `${((pgCpu1.withChildrenMs - pgCpu0.withChildrenMs) / cycles).toFixed(1)} ms`,
    );
    const perCycle = names.map((n, i) => ({
      name: n,
      self: (cpu1[i].selfMs - cpu0[i].selfMs) / cycles,
      withChildren: (cpu1[i].withChildrenMs - cpu0[i].withChildrenMs) / cycles,
    }));
    const base = perCycle.find((p) => p.name === 'single')!;
    report.info(
      `  single-host daemon: CPU per cycle, own (with git children)`,
      `${base.self.toFixed(1)} ms (${base.withChildren.toFixed(1)} ms)`,
    );
    for (const p of perCycle.filter((x) => x.name !== 'single')) {
      report.info(
        `  host ${p.name}: CPU per cycle, own (with git children)`,
        `${p.self.toFixed(1)} ms (${p.withChildren.toFixed(1)} ms)`,
      );
    }
    const clusterSelf = sum(perCycle.filter((p) => p.name !== 'single').map((p) => p.self));
    report.info(
      '  ratio: each host, own CPU / single-host daemon',
      perCycle
        .filter((p) => p.name !== 'single')
        .map((p) => `${p.name} ${(p.self / base.self).toFixed(2)}`)
        .join(', '),
    );
    report.info(
      '  ratio: three hosts together, own CPU / single-host daemon',
      (clusterSelf / base.self).toFixed(2),
    );
    report.exact('  builds started during the window (nothing changed)', builds1 - builds0, 0);
    o.progress(
      `6. window ${measured.toFixed(2)} cycles; top statements:\n${statements
        .slice(0, 12)
        .map(
          (s) =>
            `    ${String(s.calls).padStart(6)}  ${s.query.replace(/\s+/g, ' ').slice(0, 150)}`,
        )
        .join('\n')}`,
    );

    o.progress('6. commit → build start');
    const onHost: number[] = [];
    const onSingle: number[] = [];
    for (let k = 0; k < samples; k++) {
      // A site on each host in turn, each in another repository, at a random phase of the cycle.
      const i = (k * 37 + 5) % branches.length;
      const branch = branches[i];
      const owner = hosts[hostOf(i)];
      const before = names.map((n) => all[n].count(isBuildStarted(branch.name)));
      const ownerBefore = owner.count(isBuildStarted(branch.name));
      const singleBefore = single.count(isBuildStarted(branch.name));
      await sleep(Math.random() * period);
      branch.remote!.commit(branch.source.ref!);
      const pushed = Date.now();
      const [hostStart, singleStart] = await Promise.all([
        owner.waitFor(isBuildStarted(branch.name), {
          count: ownerBefore + 1,
          timeoutMs: 60_000,
          what: `${branch.name} on host ${hostOf(i)}`,
        }),
        single.waitFor(isBuildStarted(branch.name), {
          count: singleBefore + 1,
          timeoutMs: 60_000,
          what: `${branch.name} on the single-host daemon`,
        }),
      ]);
      onHost.push(Date.parse(String(hostStart.at(-1)!.time)) - pushed);
      onSingle.push(Date.parse(String(singleStart.at(-1)!.time)) - pushed);
      await Promise.all(
        [owner, single].map((d) =>
          d.waitFor(isBuildFinished(branch.name), {
            count: d.count(isBuildStarted(branch.name)),
            timeoutMs: 60_000,
            what: `${branch.name} to finish`,
          }),
        ),
      );
      // One build on the owner and one on the single-host daemon, none elsewhere.
      const after = names.map((n) => all[n].count(isBuildStarted(branch.name)));
      const extra = sum(after) - sum(before) - 2;
      if (extra !== 0) misplaced.push(extra);
    }
    report.atMost(
      `  cluster, owning host: commit → build start, max (median ${median(onHost).toFixed(0)} ms; ${samples} commits)`,
      Math.max(...onHost),
      3000,
      0,
      'ms',
    );
    report.atMost(
      `  single-host daemon: commit → build start, max (median ${median(onSingle).toFixed(0)} ms)`,
      Math.max(...onSingle),
      3000,
      0,
      'ms',
    );
    report.exact('  builds of those commits on a host not holding the site', sum(misplaced), 0);
  } finally {
    await Promise.all(daemons.map((d) => d.stop()));
    await meter?.close();
    await server.destroy();
  }
}

// Alone: `node --import tsx bench/cluster.ts`.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  const quick = process.env.BENCH_QUICK === '1';
  const t = tempDir('stagepost-bench-cluster-');
  const report = new Report();
  const uptime = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  try {
    await clusterSection(report, t.dir, {
      quick,
      progress: (what) =>
        process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)}s] ${what}\n`),
    });
  } finally {
    t.cleanup();
  }
  console.log(
    benchText(
      `stagepost bench, cluster section${quick ? ' (BENCH_QUICK)' : ''}`,
      [...machineLines(), `load average at the start: ${uptime}`],
      report,
      started,
    ),
  );
  process.exitCode = report.failed() ? 1 : 0;
}
