import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/types.js';
import type { BranchStatus, HostStatus, StatusDocument } from '../api.js';
import type { PeerHost } from './link.js';
import { stripUrlPassword } from '../util/redact.js';

/**
 * The part of the cluster's ci.yaml this host runs: its own sites, its
 * patterns, and jobs of its sites. Everything that builds, catches mail or
 * runs jobs works on this view unchanged; only polling sees every branch.
 */
export function localView(config: Config): Config {
  const host = config.cluster?.host;
  if (!host) return config;
  const branches = config.branches.filter((b) => b.host === host);
  const names = new Set(branches.map((b) => b.name));
  return {
    ...config,
    branches,
    patterns: config.patterns.filter((p) => p.template.host === host),
    jobs: config.jobs
      .map((j) => ({ ...j, branches: j.branches.filter((b) => names.has(b)) }))
      .filter((j) => j.branches.length > 0),
  };
}

/** What hosts compare to tell a host running another ci.yaml. */
export function configHash(config: Config): string {
  let text: string;
  try {
    text = readFileSync(config.file, 'utf8');
  } catch {
    text = JSON.stringify(config.branches.map((b) => b.name));
  }
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** What a host publishes of its status with each heartbeat. */
export interface PublishedStatus {
  branches: BranchStatus[];
  queue: string[];
  outbox: number;
}

/** A host counts as down after missing this many heartbeats. */
const MISSED_HEARTBEATS = 3;

/** Whether a host whose last heartbeat is `ageMs` old counts as alive (every view of the cluster uses this). */
export function hostAlive(ageMs: number, heartbeatMs: number): boolean {
  return ageMs <= heartbeatMs * MISSED_HEARTBEATS;
}

/**
 * This host's status document with every other host's sites and the hosts
 * themselves: the one view `status`, the dashboard and /metrics show on any
 * host.
 */
export function clusterDocument(
  local: StatusDocument,
  config: Config,
  peers: PeerHost[],
  self: { configHash: string; running: number; queued: number; unreachableSince: string | null },
): StatusDocument {
  const cluster = config.cluster!;
  const now = new Date().toISOString();
  const hosts: HostStatus[] = [
    {
      name: cluster.host,
      alive: true,
      heartbeatAt: now,
      startedAt: local.daemon.startedAt,
      running: self.running,
      queued: self.queued,
      slots: config.concurrency,
      configDiffers: false,
      httpUrl: config.http?.publicUrl ?? null,
    },
    ...peers.map((p) => ({
      name: p.name,
      alive: !self.unreachableSince && hostAlive(p.ageMs, cluster.heartbeatMs),
      heartbeatAt: new Date(p.heartbeatAt).toISOString(),
      startedAt: new Date(p.startedAt).toISOString(),
      running: p.running,
      queued: p.queued,
      slots: p.slots,
      configDiffers: p.configHash !== self.configHash,
      httpUrl: p.httpUrl,
    })),
  ].sort((a, b) => a.name.localeCompare(b.name));
  const branches: BranchStatus[] = local.branches.map((b) => ({ ...b, host: cluster.host }));
  const seen = new Set(branches.map((b) => b.name));
  for (const peer of peers) {
    const published = peer.status as PublishedStatus | null;
    for (const b of published?.branches ?? []) {
      if (seen.has(b.name)) continue;
      seen.add(b.name);
      branches.push({ ...b, host: peer.name });
    }
  }
  // Sites of ci.yaml whose host never published (down since before this host started) are listed too.
  for (const b of config.branches) {
    if (seen.has(b.name)) continue;
    branches.push({
      name: b.name,
      state: 'idle',
      sources: b.sources.map((s) => ({
        name: s.name,
        vcs: s.vcs,
        revision: null,
        remoteRevision: null,
        url: stripUrlPassword(s.url),
        ref: s.ref,
      })),
      lastBuild: null,
      lastPoll: null,
      current: null,
      customers: [],
      port: b.port ?? null,
      dir: b.dir,
      host: b.host!,
    });
  }
  // ci.yaml's order whichever host holds a site: the peers come in any order.
  const order = new Map(config.branches.map((b, i) => [b.name, i]));
  const rank = (name: string) => order.get(name) ?? order.size;
  branches.sort((x, y) => rank(x.name) - rank(y.name));
  return {
    ...local,
    branches,
    cluster: {
      host: cluster.host,
      database: stripUrlPassword(cluster.database),
      unreachableSince: self.unreachableSince,
      hosts,
    },
  };
}
