import type { Config } from '../config/types.js';
import type {
  BranchStatus,
  BuildSummary,
  CurrentBuild,
  RunHistory,
  StatusDocument,
} from '../api.js';
import {
  emptyBranchState,
  type BranchState,
  type StateStore,
  type TrackState,
} from '../state/store.js';
import { customerUrl } from '../site/urls.js';
import { stripUrlPassword } from '../util/redact.js';
import { trackKey } from '../poll/tracks.js';
import { readPins, readSites } from '../patterns/sites-file.js';

/**
 * The status document (SPEC `status --json`) from config, branch state files
 * and whatever live information the caller has (a daemon knows its queue;
 * the CLI reads the daemon's runtime file).
 */
export interface LiveInfo {
  tracks: Record<string, TrackState>;
  lastPoll: Record<string, { at: string; error: string | null }>;
  queued: Set<string>;
  queue: string[];
  current: Record<string, CurrentBuild>;
  outbox: number;
  daemon: StatusDocument['daemon'];
  /** Branches whose build could not start, and why (see RetryBook). */
  waiting?: Record<string, NonNullable<BranchStatus['waiting']>>;
}

export function branchStatus(
  config: Config,
  store: StateStore,
  name: string,
  live: LiveInfo,
  state?: BranchState,
): BranchStatus | null {
  const branch = config.branches.find((b) => b.name === name);
  if (!branch) return null;
  let st: BranchState;
  try {
    st = state ?? store.readBranch(name);
  } catch {
    // Unreadable for now (EMFILE): the daemon retries and says why in `waiting`.
    st = emptyBranchState();
  }
  const last = st.builds.find((b) => b.kind === 'build') ?? null;
  const current = live.current[name] ?? null;
  const failing = last?.result === 'failure' || last?.result === 'timeout';
  const shown: BranchStatus['state'] = current
    ? 'building'
    : live.queued.has(name)
      ? 'queued'
      : failing
        ? 'failing'
        : 'idle';
  return {
    name,
    state: shown,
    sources: branch.sources.map((s) => ({
      name: s.name,
      vcs: s.vcs,
      revision: st.built[s.name] ?? null,
      remoteRevision: live.tracks[trackKey(s)]?.revision ?? null,
      url: stripUrlPassword(s.url),
      ref: s.ref,
      subject: st.subjects[s.name],
      ...(live.tracks[trackKey(s)]?.missing ? { missing: live.tracks[trackKey(s)].missing } : {}),
    })),
    lastBuild: last
      ? { id: last.id, result: last.result, startedAt: last.startedAt, durationMs: last.durationMs }
      : null,
    lastPoll: live.lastPoll[name] ?? null,
    current: current ? { ...current, elapsedMs: Date.now() - Date.parse(current.startedAt) } : null,
    customers: branch.customers.map((c) => ({
      name: c,
      url: customerUrl(config, branch, c),
      mailin: branch.mailin.includes(c),
    })),
    port: branch.port ?? null,
    ...(branch.pattern ? { pattern: branch.pattern } : {}),
    smtpPort: branch.smtpPort ?? null,
    dir: branch.dir,
    waiting: live.waiting?.[name] ?? null,
  };
}

export function statusDocument(config: Config, store: StateStore, live: LiveInfo): StatusDocument {
  const doc: StatusDocument = {
    branches: config.branches.map((b) => branchStatus(config, store, b.name, live)!),
    queue: live.queue,
    outbox: live.outbox,
    daemon: live.daemon,
  };
  if (config.patterns.length === 0) return doc;
  // Only configs with patterns pay for reading their (small) state files.
  const sites = readSites(config.stateDir);
  const pinned = readPins(config.stateDir);
  for (const b of doc.branches) if (pinned.has(b.name)) b.pinned = true;
  doc.waiting = config.patterns.flatMap((p) =>
    Object.entries(sites.waiting?.[p.name] ?? {}).map(([ref, w]) => ({
      pattern: p.name,
      ref,
      since: w.activeAt,
    })),
  );
  return doc;
}

export function historyOf(store: StateStore, branch: string): BuildSummary[] {
  return store.readBranch(branch).builds.map((b) => ({ ...b }));
}

/** Every job of the config appears, with no runs yet if it has not run on the branch. */
export function runHistoryOf(config: Config, store: StateStore, branch: string): RunHistory {
  const state = store.readBranch(branch);
  const jobs: RunHistory['jobs'] = {};
  for (const j of config.jobs)
    if (j.branches.includes(branch)) jobs[j.name] = state.jobs[j.name]?.runs ?? [];
  return { builds: state.builds, jobs };
}
