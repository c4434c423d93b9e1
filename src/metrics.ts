import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StatusDocument } from './api.js';

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

/**
 * With a cluster, /metrics on any host shows every host and every host's
 * sites, read from the status document at scrape time. The gauges are made
 * at the first cluster scrape, so a single host's /metrics stays as it was.
 */
export function clusterMetrics(registry: Registry): (doc: StatusDocument) => void {
  let gauges: ReturnType<typeof makeClusterGauges> | null = null;
  return (doc) => {
    const cluster = doc.cluster;
    if (!cluster) return;
    gauges ??= makeClusterGauges(registry);
    // Hosts and sites come and go with ci.yaml: only what the document holds now is shown.
    for (const g of Object.values(gauges)) g.reset();
    gauges.databaseUp.set(cluster.unreachableSince ? 0 : 1);
    for (const h of cluster.hosts) {
      const host = { host: h.name };
      gauges.hostUp.set(host, h.alive ? 1 : 0);
      gauges.hostRunning.set(host, h.running);
      gauges.hostQueued.set(host, h.queued);
      gauges.hostSlots.set(host, h.slots);
      gauges.hostConfigDiffers.set(host, h.configDiffers ? 1 : 0);
      if (h.heartbeatAt)
        gauges.hostHeartbeat.set(host, Math.round(Date.parse(h.heartbeatAt) / 1000));
    }
    for (const b of doc.branches) {
      const site = { branch: b.name, host: b.host ?? cluster.host };
      gauges.branchInfo.set(site, 1);
      gauges.branchBuilding.set(site, b.state === 'building' ? 1 : 0);
      gauges.branchFailing.set(site, b.state === 'failing' ? 1 : 0);
      if (b.lastBuild) gauges.branchLastBuild.set(site, b.lastBuild.id);
    }
  };
}

/** A gauge of the registry: made once, found again by a server started anew on a reload. */
function gaugeIn<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
): Gauge<L> {
  const known = registry.getSingleMetric(name);
  if (known instanceof Gauge) return known;
  return new Gauge({ name, help, labelNames, registers: [registry] });
}

function makeClusterGauges(registry: Registry) {
  const byHost = (name: string, help: string) => gaugeIn(registry, name, help, ['host']);
  const bySite = (name: string, help: string) => gaugeIn(registry, name, help, ['branch', 'host']);
  return {
    databaseUp: gaugeIn(
      registry,
      'stagepost_cluster_database_up',
      "1 while this host reaches the cluster's database, 0 while it goes on alone.",
    ),
    hostUp: byHost(
      'stagepost_cluster_host_up',
      'A host of the cluster: 1 while its heartbeat comes, 0 when it missed 3.',
    ),
    hostRunning: byHost('stagepost_cluster_host_running', 'Builds and jobs running on a host.'),
    hostQueued: byHost('stagepost_cluster_host_queued', 'Builds and jobs waiting on a host.'),
    hostSlots: byHost('stagepost_cluster_host_slots', 'builds.concurrency of a host.'),
    hostConfigDiffers: byHost(
      'stagepost_cluster_host_config_differs',
      "1 when a host runs a ci.yaml that differs from this host's.",
    ),
    hostHeartbeat: byHost(
      'stagepost_cluster_host_heartbeat_timestamp_seconds',
      'When the last heartbeat of a host came (Unix time).',
    ),
    branchInfo: bySite(
      'stagepost_branch_info',
      'A site of the cluster and the host that holds it.',
    ),
    branchBuilding: bySite(
      'stagepost_cluster_branch_building',
      'A site of any host: 1 while it builds (as its host last published).',
    ),
    branchFailing: bySite(
      'stagepost_cluster_branch_failing',
      'A site of any host: 1 while its last build failed.',
    ),
    branchLastBuild: bySite(
      'stagepost_cluster_branch_last_build',
      'A site of any host: the number of its last build.',
    ),
  };
}
