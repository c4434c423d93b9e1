import { EventEmitter } from 'node:events';
import { mkdirSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import type {
  BranchStatus,
  BuildSummary,
  CaughtMailSummary,
  ClusterStatus,
  DaemonApi,
  HostStatus,
  RunHistory,
  StatusDocument,
} from '../../src/api.js';

/**
 * An in-memory stand-in for the daemon, for route and dashboard tests only.
 * Tests change its state directly and call `emit` like the daemon would.
 */
export class FakeDaemon implements DaemonApi {
  doc: StatusDocument = {
    branches: [],
    queue: [],
    outbox: 0,
    daemon: { running: true, pid: 4242, startedAt: new Date().toISOString() },
  };
  builds = new Map<string, BuildSummary[]>();
  /** Job runs per branch, by job name. */
  jobRuns = new Map<string, Record<string, BuildSummary[]>>();
  mail = new Map<string, CaughtMailSummary[]>();
  polls: Array<string | undefined> = [];
  forced: string[] = [];
  private readonly events = new EventEmitter();

  constructor(private readonly logDir: string) {}

  status(): StatusDocument {
    return structuredClone(this.doc);
  }
  counts(): { queue: number; outbox: number; cluster?: boolean } {
    return {
      queue: this.doc.queue.length,
      outbox: this.doc.outbox,
      ...(this.doc.cluster ? { cluster: true } : {}),
    };
  }
  hasBranch(name: string): boolean {
    return this.doc.branches.some((b) => b.name === name);
  }
  history(branch: string): BuildSummary[] {
    return this.builds.get(branch) ?? [];
  }
  logFile(branch: string, id: number): string | null {
    if (!this.hasBranch(branch)) return null;
    const known =
      this.history(branch).some((b) => b.id === id) || this.branch(branch).current?.id === id;
    return known ? this.logPath(branch, id) : null;
  }
  runHistory(branch: string): RunHistory {
    return { builds: this.history(branch), jobs: this.jobRuns.get(branch) ?? {} };
  }
  jobLogFile(branch: string, job: string, id: number): string | null {
    if (!this.hasBranch(branch)) return null;
    const known = (this.jobRuns.get(branch)?.[job] ?? []).some((b) => b.id === id);
    return known ? this.logPath(branch, id, job) : null;
  }
  pollNow(branch?: string): Promise<void> {
    this.polls.push(branch);
    return Promise.resolve();
  }
  forceBuild(branch: string): void {
    this.forced.push(branch);
  }
  caughtMail(branch: string): Promise<CaughtMailSummary[]> {
    return Promise.resolve(this.mail.get(branch) ?? []);
  }
  onChange(listener: (event: { type: string; branch?: string }) => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }

  listenerCount(): number {
    return this.events.listenerCount('change');
  }
  emit(event: { type: string; branch?: string }): void {
    this.events.emit('change', event);
  }
  branch(name: string): BranchStatus {
    const b = this.doc.branches.find((x) => x.name === name);
    if (!b) throw new Error(`fake daemon has no branch ${name}`);
    return b;
  }

  logPath(branch: string, id: number, job?: string): string {
    return job
      ? path.join(this.logDir, branch, 'jobs', job, `${id}.log`)
      : path.join(this.logDir, branch, `${id}.log`);
  }
  writeLog(branch: string, id: number, text: string | Buffer, append = false, job?: string): void {
    mkdirSync(path.dirname(this.logPath(branch, id, job)), { recursive: true });
    (append ? appendFileSync : writeFileSync)(this.logPath(branch, id, job), text);
  }
}

/** A cluster seen from host `self`: each host alive, its heartbeat now, unless told otherwise. */
export function clusterStatus(
  self: string,
  hosts: Array<Partial<HostStatus> & { name: string }>,
  over: Partial<ClusterStatus> = {},
): ClusterStatus {
  const now = new Date().toISOString();
  return {
    host: self,
    database: 'postgres://stagepost@db.example.com/stagepost',
    unreachableSince: null,
    hosts: hosts.map((h) => ({
      alive: true,
      heartbeatAt: now,
      startedAt: now,
      running: 0,
      queued: 0,
      slots: 1,
      configDiffers: false,
      httpUrl: `http://${h.name}.example.com:8080`,
      ...h,
    })),
    ...over,
  };
}

const minutesAgo = (now: number, m: number) => new Date(now - m * 60_000).toISOString();

/** A branch in a plain state; override what a test cares about. */
export function branchStatus(name: string, over: Partial<BranchStatus> = {}): BranchStatus {
  return {
    name,
    state: 'idle',
    sources: [
      {
        name: 'app',
        vcs: 'git',
        revision: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
        remoteRevision: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
        url: 'https://git.example.com/app.git',
        ref: name,
        subject: 'Initial import',
      },
    ],
    lastBuild: {
      id: 1,
      result: 'success',
      startedAt: new Date().toISOString(),
      durationMs: 42_000,
    },
    lastPoll: { at: new Date().toISOString(), error: null },
    current: null,
    customers: [{ name: 'acme', url: `https://stage.example.com/${name}/acme/`, mailin: false }],
    port: 8100,
    dir: `/srv/stagepost/${name}`,
    ...over,
  };
}

export function buildSummary(id: number, over: Partial<BuildSummary> = {}): BuildSummary {
  return {
    id,
    kind: 'build',
    result: 'success',
    startedAt: new Date().toISOString(),
    durationMs: 30_000,
    forced: false,
    steps: [],
    revisions: {},
    ...over,
  };
}

/** Realistic data for the screenshot: staging and three branches, one building, one failing. */
export function realisticFake(logDir: string, now = Date.now()): FakeDaemon {
  const fake = new FakeDaemon(logDir);
  const sha = (seed: string) => seed.repeat(40).slice(0, 40);
  const git = (name: string, rev: string, remote: string, subject: string) => ({
    name: 'app',
    vcs: 'git',
    revision: rev,
    remoteRevision: remote,
    url: 'https://git.example.com/shop/app.git',
    ref: name,
    subject,
  });
  const theme = (rev: string) => ({
    name: 'theme',
    vcs: 'svn',
    revision: rev,
    remoteRevision: rev,
    url: 'svn://svn.example.com/theme/trunk',
    subject: 'Tighten header spacing on mobile',
  });
  const customers = (branch: string) => [
    {
      name: 'acme',
      url: `https://karltest.example.com/${branch}/acme/`,
      mailin: branch === 'staging',
    },
    { name: 'globex', url: `https://karltest.example.com/${branch}/globex/`, mailin: false },
  ];
  fake.doc = {
    branches: [
      branchStatus('staging', {
        sources: [
          git(
            'staging',
            sha('3f9a1c7e'),
            sha('3f9a1c7e'),
            'Merge branch1: checkout with saved addresses',
          ),
          theme('1842'),
        ],
        lastBuild: {
          id: 57,
          result: 'success',
          startedAt: minutesAgo(now, 38),
          durationMs: 94_000,
        },
        lastPoll: { at: minutesAgo(now, 0.3), error: null },
        customers: customers('staging'),
        port: 8101,
        dir: '/srv/stagepost/staging',
      }),
      branchStatus('branch1', {
        state: 'building',
        sources: [
          git(
            'branch1',
            sha('8c21d0b4'),
            sha('e47b9a02'),
            'Saved addresses: validate postcode per country',
          ),
          theme('1842'),
        ],
        lastBuild: {
          id: 23,
          result: 'success',
          startedAt: minutesAgo(now, 95),
          durationMs: 88_000,
        },
        lastPoll: { at: minutesAgo(now, 0.3), error: null },
        current: {
          id: 24,
          kind: 'build',
          step: 'buildout',
          startedAt: minutesAgo(now, 1.2),
          elapsedMs: 72_000,
        },
        customers: customers('branch1'),
        port: 8102,
        dir: '/srv/stagepost/branch1',
      }),
      branchStatus('branch2', {
        state: 'failing',
        sources: [
          git('branch2', sha('b5e60f19'), sha('b5e60f19'), 'Upgrade payment SDK to v4'),
          theme('1840'),
        ],
        lastBuild: {
          id: 12,
          result: 'failure',
          startedAt: minutesAgo(now, 14),
          durationMs: 51_000,
        },
        lastPoll: { at: minutesAgo(now, 0.3), error: null },
        customers: customers('branch2'),
        port: 8103,
        dir: '/srv/stagepost/branch2',
      }),
      branchStatus('branch3', {
        state: 'queued',
        sources: [
          git(
            'branch3',
            sha('71d4aa3e'),
            sha('0c9e2b58'),
            'Product page: lazy-load gallery images',
          ),
          theme('1842'),
        ],
        lastBuild: {
          id: 8,
          result: 'success',
          startedAt: minutesAgo(now, 240),
          durationMs: 79_000,
        },
        lastPoll: {
          at: minutesAgo(now, 2),
          error:
            'svn: E170013: Unable to connect to a repository at URL svn://svn.example.com/theme/trunk',
        },
        customers: customers('branch3'),
        port: 8104,
        dir: '/srv/stagepost/branch3',
      }),
    ],
    queue: ['branch3'],
    outbox: 1,
    daemon: { running: true, pid: 4242, startedAt: minutesAgo(now, 600) },
  };
  fake.builds.set('branch1', [
    buildSummary(23, { startedAt: minutesAgo(now, 95), durationMs: 88_000 }),
    buildSummary(22, {
      startedAt: minutesAgo(now, 300),
      durationMs: 91_000,
      result: 'failure',
      failedStep: 'test',
    }),
  ]);
  fake.builds.set('branch2', [
    buildSummary(12, {
      result: 'failure',
      failedStep: 'test',
      startedAt: minutesAgo(now, 14),
      durationMs: 51_000,
    }),
    buildSummary(11, { startedAt: minutesAgo(now, 180), durationMs: 83_000 }),
    buildSummary(10, { forced: true, startedAt: minutesAgo(now, 1440), durationMs: 80_000 }),
  ]);
  fake.writeLog(
    'branch1',
    24,
    [
      '== step checkout (git app 8c21d0b4 -> e47b9a02)',
      'HEAD is now at e47b9a0 Saved addresses: validate postcode per country',
      '== step buildout',
      'Installing eggs.',
      "Getting distribution for 'shop.addresses==2.3.1'.",
      'Got shop.addresses 2.3.1.',
      'Updating instance.',
      '',
    ].join('\n'),
  );
  // Durations for the charts: staging's last 16 builds with their steps, and a nightly job.
  const steps = (buildout: number, result: BuildSummary['result'] = 'success') => [
    { name: 'checkout', result: 'success' as const, durationMs: 3_100 },
    { name: 'buildout', result: result ?? 'success', durationMs: buildout },
    {
      name: 'restart',
      result: result === 'success' ? ('success' as const) : ('skipped' as const),
      durationMs: result === 'success' ? 8_400 : 0,
    },
    {
      name: 'health',
      result: result === 'success' ? ('success' as const) : ('skipped' as const),
      durationMs: result === 'success' ? 2_200 : 0,
    },
  ];
  const buildouts = [72, 68, 75, 70, 66, 181, 73, 71, 40, 69, 74, 77, 70, 72, 67, 80];
  fake.builds.set(
    'staging',
    buildouts.map((s, i) => {
      const result: BuildSummary['result'] = i === 8 ? 'failure' : 'success';
      const stepList = steps(s * 1000, result);
      return buildSummary(57 - i, {
        result,
        failedStep: result === 'failure' ? 'buildout' : undefined,
        startedAt: minutesAgo(now, 38 + i * 170),
        durationMs: stepList.reduce((sum, x) => sum + x.durationMs, 0) + 400,
        steps: stepList,
        revisions: { app: sha((57 - i).toString(16).padStart(2, '0') + 'a91c7e'), theme: '1842' },
      });
    }),
  );
  const syncHours = [3.9, 4.1, 4.0, 14.2, 4.2, 3.8, 4.0, 4.3, 3.9, 4.1];
  fake.jobRuns.set('staging', {
    'nightly-sync': syncHours.map((h, i) =>
      buildSummary(syncHours.length - i, {
        kind: 'job:nightly-sync',
        result: h > 10 ? 'timeout' : 'success',
        startedAt: minutesAgo(now, 600 + i * 1440),
        durationMs: Math.round(h * 3_600_000),
        steps: [
          {
            name: 'nightly-sync',
            result: h > 10 ? 'timeout' : 'success',
            durationMs: Math.round(h * 3_600_000),
          },
        ],
      }),
    ),
  });
  fake.builds.set(
    'branch1',
    fake.builds.get('branch1')!.map((b) => ({
      ...b,
      steps: steps((b.durationMs ?? 0) - 14_000, b.result),
    })),
  );
  fake.writeLog(
    'branch2',
    12,
    "== step test\nFAILED tests/test_payment.py::test_refund - KeyError: 'amount'\nstep test failed: exit code 1\n",
  );
  return fake;
}
