import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics of one daemon. Each daemon gets its own Registry (not
 * prom-client's global one) so tests can run several daemons in one process.
 * The daemon updates these; the HTTP server only exposes them.
 */
export interface Metrics {
  registry: Registry;
  /**
   * One poll of each of these branches (failed or not): plain counts, published
   * at scrape time. Pass the same array for a repository each time: it is
   * counted as a whole and spread over its branches only at a scrape.
   */
  countPolls(branches: readonly string[], failed: boolean): void;
  pollsTotal: Counter<'branch'>;
  pollErrorsTotal: Counter<'branch'>;
  remoteQueriesTotal: Counter<'vcs'>;
  pollDurationSeconds: Histogram<'vcs'>;
  buildsTotal: Counter<'branch' | 'result'>;
  buildDurationSeconds: Histogram<'branch'>;
  jobDurationSeconds: Histogram<'branch' | 'job'>;
  queueLength: Gauge;
  outboxSize: Gauge;
  buildRunning: Gauge<'branch'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  // prom-client samples event-loop delay every 10 ms by default: 100 wake-ups a
  // second, most of an idle daemon's CPU (bench/: 5-8 ms/s → 1 ms/s at 500 ms).
  collectDefaultMetrics({
    register: registry,
    prefix: 'stagepost_',
    eventLoopMonitoringPrecision: 500,
  });
  const registers = [registry];
  // Every remote answer counts a poll for each of its branches (100 per query
  // with 1,000 branches on 10 repositories); prom-client's inc() hashes and
  // checks the labels each time, so the counts live in Maps until a scrape.
  const polls = new Map<string, number>();
  const pollErrors = new Map<string, number>();
  // Answers not yet spread over their branches, by the repository's branch list.
  const pending = new Map<readonly string[], { polls: number; errors: number }>();
  const spread = () => {
    for (const [branches, n] of pending) {
      for (const b of branches) {
        polls.set(b, (polls.get(b) ?? 0) + n.polls);
        if (n.errors > 0) pollErrors.set(b, (pollErrors.get(b) ?? 0) + n.errors);
      }
    }
    pending.clear();
  };
  const publish = (counter: Counter<'branch'>, counts: Map<string, number>) => {
    spread();
    counter.reset();
    for (const [branch, n] of counts) counter.inc({ branch }, n);
  };
  return {
    registry,
    countPolls(branches, failed) {
      let n = pending.get(branches);
      if (n === undefined) pending.set(branches, (n = { polls: 0, errors: 0 }));
      n.polls++;
      if (failed) n.errors++;
      // Lists replaced by reloads would pile up between scrapes.
      if (pending.size > 1000) spread();
    },
    pollsTotal: new Counter({
      name: 'stagepost_polls_total',
      help: 'Polls of a branch (one per branch per poll round).',
      labelNames: ['branch'],
      registers,
      collect() {
        publish(this, polls);
      },
    }),
    pollErrorsTotal: new Counter({
      name: 'stagepost_poll_errors_total',
      help: 'Polls of a branch that failed.',
      labelNames: ['branch'],
      registers,
      collect() {
        publish(this, pollErrors);
      },
    }),
    remoteQueriesTotal: new Counter({
      name: 'stagepost_remote_queries_total',
      help: 'Queries sent to remote repositories (ls-remote, svn info).',
      labelNames: ['vcs'],
      registers,
    }),
    pollDurationSeconds: new Histogram({
      name: 'stagepost_poll_duration_seconds',
      help: 'Duration of one remote query.',
      labelNames: ['vcs'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    buildsTotal: new Counter({
      name: 'stagepost_builds_total',
      help: 'Finished builds by result.',
      labelNames: ['branch', 'result'],
      registers,
    }),
    buildDurationSeconds: new Histogram({
      name: 'stagepost_build_duration_seconds',
      help: 'Duration of finished builds.',
      labelNames: ['branch'],
      buckets: [5, 15, 30, 60, 120, 300, 600, 1200, 2700],
      registers,
    }),
    jobDurationSeconds: new Histogram({
      name: 'stagepost_job_duration_seconds',
      help: 'Duration of finished job runs.',
      labelNames: ['branch', 'job'],
      // Jobs range from a minute to a nightly sync of many hours.
      buckets: [1, 10, 60, 300, 900, 1800, 3600, 7200, 14_400, 28_800, 57_600],
      registers,
    }),
    queueLength: new Gauge({
      name: 'stagepost_queue_length',
      help: 'Builds and jobs waiting in the queue.',
      registers,
    }),
    outboxSize: new Gauge({
      name: 'stagepost_outbox_size',
      help: 'Notifications waiting to be delivered.',
      registers,
    }),
    buildRunning: new Gauge({
      name: 'stagepost_build_running',
      help: '1 while a build of the branch runs.',
      labelNames: ['branch'],
      registers,
    }),
  };
}
