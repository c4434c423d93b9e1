import PQueue from 'p-queue';
import type { BranchConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { RemoteRevision, SourceSpec, VcsPlugin } from '../plugin-api.js';
import type { TrackState } from '../state/store.js';
import type { VcsRegistry } from '../vcs.js';
import { errorMessage } from '../errors.js';
import { redactor } from '../util/redact.js';
import { sourceSpec, trackKey } from './tracks.js';

/** Largest step of the grid that polls snap to (a quarter of the interval when that is shorter). */
const ALIGN_MS = 250;

/**
 * The wait until a poll `delay` ms from `now`, moved to the nearest point of
 * a shared grid: repositories due about the same moment are then asked in one
 * wake-up of the daemon instead of one each (a quarter less CPU per query in
 * docs/performance.md). Rounding to the nearest point keeps the mean interval.
 */
export function alignedDelay(now: number, delay: number, intervalMs: number): number {
  const grid = Math.max(1, Math.min(ALIGN_MS, intervalMs / 4));
  return Math.max(10, Math.round((now + delay) / grid) * grid - now);
}

/** A cluster's cycle in whole seconds (pg-boss's singleton slots). */
export function slotSeconds(intervalMs: number): number {
  return Math.max(1, Math.round(intervalMs / 1000));
}

/**
 * Asks every repository for its revisions: one query per repository per
 * cycle however many branches and sources use it, repositories in parallel
 * (bounded), never the same repository twice at once. A failing repository
 * backs off and is reported when it starts failing and when it recovers.
 */
export interface PollerEvents {
  /** Revisions changed (or were seen for the first time) for these branches. */
  changed(branches: string[], keys: string[]): void;
  /** A repository was asked; error is null on success. */
  polled(branches: string[], error: string | null, durationMs: number, vcs: string): void;
}

interface Group {
  id: string;
  vcs: string;
  plugin: VcsPlugin;
  specs: Map<string, SourceSpec>;
  branches: Set<string>;
  /** specs and branches as arrays, made once per setBranches: a plugin may prepare once per array. */
  keys: string[];
  sources: SourceSpec[];
  branchList: string[];
  intervalMs: number;
  timeoutMs: number;
  timer?: NodeJS.Timeout;
  inFlight: Promise<void> | null;
  again: boolean;
  failures: number;
  lastError: string | null;
  /** First poll after the group appeared: compare every branch, changed or not. */
  fresh: boolean;
  /** An answer came and the plugin still files every source under this group (svn learns its root from the first). */
  keysSettled?: boolean;
  /** The answers of the last successful query, to tell an unchanged answer by identity. */
  lastAnswers?: RemoteRevision[];
  /** In a cluster: the length of this group's cycle, as claimed. */
  slotSeconds?: number;
}

/**
 * A cluster's hosts share the polls: a host whose timer fires claims the
 * cycle's query of a repository through the database, one host runs it, and
 * its answer reaches every host (`applyShared`).
 */
export interface PollSharing {
  /** `slotSeconds`: the cycle (one query per repository per slot); 0: a query now (commit hook). */
  claim(
    group: string,
    slotSeconds: number,
    timeoutMs: number,
  ): Promise<'sent' | 'taken' | 'unreachable'>;
  /** This host ran a claimed query: the tracks it changed, for the others. */
  answered(
    group: string,
    changed: Record<string, TrackState>,
    error: string | null,
    durationMs: number,
  ): void;
  /** Whether this host holds a site of these branches (it polls them itself while the database is away). */
  local(branches: string[]): boolean;
}

export interface PollerOptions {
  vcs: VcsRegistry;
  log: Logger;
  events: PollerEvents;
  tracks: Record<string, TrackState>;
  /** Called when track states changed, to persist them. */
  persist(tracks: Record<string, TrackState>): void;
  /** Remote queries at once over all repositories. */
  parallel?: number;
  /** Random spread of each interval, as a fraction (0.1 = ±10%). */
  jitter?: number;
  now?: () => number;
  /** Longest backoff after repeated failures. */
  maxBackoffMs?: number;
  /** Set in a cluster. */
  share?: PollSharing;
}

/** Same source, field by field (specs are made anew at every reload). */
function sameSpec(a: SourceSpec, b: SourceSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class Poller {
  private groups = new Map<string, Group>();
  private branches: BranchConfig[] = [];
  private readonly queue: PQueue;
  private stopped = false;
  /** Waiting for the next answer of a group (a commit hook in a cluster). */
  private readonly answerWaiters = new Map<string, Array<() => void>>();
  readonly tracks: Record<string, TrackState>;
  private readonly now: () => number;

  constructor(private readonly options: PollerOptions) {
    this.queue = new PQueue({ concurrency: options.parallel ?? 8 });
    this.tracks = options.tracks;
    this.now = options.now ?? Date.now;
  }

  /**
   * (Re)build the repository groups from the branches. Existing groups keep
   * their timers and backoff; new ones are polled at once (when `schedule`).
   */
  async setBranches(branches: BranchConfig[], schedule = true): Promise<void> {
    this.branches = branches;
    const next = new Map<string, Group>();
    for (const branch of branches) {
      for (const source of branch.sources) {
        const plugin = await this.options.vcs.get(source.vcs, {
          file: 'ci.yaml',
          line: source.line,
        });
        const spec = sourceSpec(source);
        const id = `${source.vcs}|${plugin.repositoryKey(spec)}`;
        let group = next.get(id);
        if (!group) {
          const old = this.groups.get(id);
          group = {
            id,
            vcs: source.vcs,
            plugin,
            specs: new Map(),
            branches: new Set(),
            keys: [],
            sources: [],
            branchList: [],
            intervalMs: branch.poll.intervalMs,
            timeoutMs: branch.poll.timeoutMs,
            inFlight: old?.inFlight ?? null,
            again: false,
            failures: old?.failures ?? 0,
            lastError: old?.lastError ?? null,
            timer: old?.timer,
            fresh: !old,
          };
          if (old) old.timer = undefined;
          next.set(id, group);
        }
        group.specs.set(trackKey(source), spec);
        group.branches.add(branch.name);
        group.intervalMs = Math.min(group.intervalMs, branch.poll.intervalMs);
        group.timeoutMs = Math.max(group.timeoutMs, branch.poll.timeoutMs);
      }
    }
    for (const group of next.values()) {
      const old = this.groups.get(group.id);
      const keys = [...group.specs.keys()];
      // Unchanged sources keep their array, so the plugin's preparation of it stays valid.
      const same =
        old &&
        old.keys.length === keys.length &&
        keys.every((k, i) => k === old.keys[i] && sameSpec(group.specs.get(k)!, old.specs.get(k)!));
      group.keys = same ? old.keys : keys;
      group.sources = same ? old.sources : keys.map((k) => group.specs.get(k)!);
      group.branchList = [...group.branches];
    }
    const oldIntervals = new Map([...this.groups].map(([id, g]) => [id, g.intervalMs]));
    for (const [id, old] of this.groups) if (!next.has(id)) clearTimeout(old.timer);
    // A group whose refs were all seen before (svn regrouped under its learned
    // root, a second branch on a known ref) needs no extra query now.
    for (const group of next.values()) {
      if (group.fresh && group.keys.every((k) => this.tracks[k]?.revision)) group.fresh = false;
    }
    this.groups = next;
    if (!schedule || this.stopped) return;
    for (const group of next.values()) {
      // An edited interval takes effect now, not after the old timer fires.
      const oldInterval = oldIntervals.get(group.id);
      if (
        !group.fresh &&
        oldInterval !== undefined &&
        oldInterval !== group.intervalMs &&
        !group.inFlight
      ) {
        clearTimeout(group.timer);
        group.timer = undefined;
      }
      if (group.fresh) {
        clearTimeout(group.timer);
        group.timer = undefined;
        void this.pollGroup(group);
      } else if (!group.timer && !group.inFlight) {
        this.scheduleNext(group);
      }
    }
  }

  /** Poll now the groups of one branch (or all), and wait for the answers. */
  async pollNow(branch?: string): Promise<void> {
    const groups = [...this.groups.values()].filter((g) => !branch || g.branches.has(branch));
    await Promise.all(groups.map((g) => this.pollGroup(g, true)));
  }

  stop(): void {
    this.stopped = true;
    for (const g of this.groups.values()) clearTimeout(g.timer);
    // Queued queries are left to run: each returns at once now (query() checks
    // `stopped`). p-queue's clear() would drop them with their promises
    // pending, and idle() - the daemon's shutdown - would wait for ever.
  }

  /** Wait for polls in flight (for a clean shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.groups.values()].flatMap((g) => (g.inFlight ? [g.inFlight] : [])));
  }

  groupCount(): number {
    return this.groups.size;
  }

  private scheduleNext(group: Group): void {
    if (this.stopped || this.groups.get(group.id) !== group) return;
    clearTimeout(group.timer);
    const backoff =
      group.failures > 0
        ? Math.min(
            group.intervalMs * 2 ** Math.min(group.failures - 1, 10),
            Math.max(this.options.maxBackoffMs ?? 600_000, group.intervalMs),
          )
        : group.intervalMs;
    const jitter = this.options.jitter ?? 0.1;
    // Hosts of a cluster wake at the start of the same slot: one claim per slot wins.
    group.slotSeconds = slotSeconds(backoff);
    const period = group.slotSeconds * 1000;
    const delay = this.options.share
      ? period - (Date.now() % period) + Math.random() * Math.min(100, period / 20)
      : alignedDelay(
          Date.now(),
          backoff * (1 + (Math.random() * 2 - 1) * jitter),
          group.intervalMs,
        );
    group.timer = setTimeout(() => {
      // Look the group up again: a reload may have replaced the object.
      const current = this.groups.get(group.id);
      if (!current) return;
      current.timer = undefined;
      void this.pollGroup(current);
    }, delay);
    group.timer.unref?.();
  }

  /**
   * One query for the group. A request while one is in flight waits for it and,
   * when `fresh` data is needed (a commit hook), runs exactly one more.
   */
  private pollGroup(group: Group, needFresh = false): Promise<void> {
    if (this.options.share) return this.claimGroup(group, this.options.share, needFresh);
    if (group.inFlight) {
      if (!needFresh) return group.inFlight;
      group.again = true;
      return group.inFlight.then(() => group.inFlight ?? this.pollGroup(group));
    }
    clearTimeout(group.timer);
    group.timer = undefined;
    const done = this.queue.add(() => this.query(group)).then(() => undefined);
    group.inFlight = done.finally(() => {
      const current = this.groups.get(group.id);
      group.inFlight = null;
      if (!current) return;
      current.inFlight = null;
      const again = group.again || current.again;
      group.again = current.again = false;
      if (again) void this.pollGroup(current);
      else this.scheduleNext(current);
    });
    return group.inFlight;
  }

  /**
   * A cluster's poll: claim the cycle's query. A commit hook (`needFresh`)
   * waits for the answer, whichever host gives it. With the database away,
   * the repositories of this host's own sites are asked here.
   */
  private claimGroup(group: Group, share: PollSharing, needFresh: boolean): Promise<void> {
    if (group.inFlight && !needFresh) return group.inFlight;
    clearTimeout(group.timer);
    group.timer = undefined;
    const answer = needFresh ? this.nextAnswer(group.id, group.timeoutMs + 5000) : null;
    // A repository new to this host is asked now: its cycle's slot may have gone to a query without its refs.
    const slot =
      needFresh || group.fresh ? 0 : (group.slotSeconds ?? slotSeconds(group.intervalMs));
    const done = share.claim(group.id, slot, group.timeoutMs).then(async (claim) => {
      if (claim === 'unreachable') {
        if (share.local(group.branchList)) await this.queue.add(() => this.query(group));
        return;
      }
      await answer;
    });
    const inFlight = done.finally(() => {
      const current = this.groups.get(group.id);
      if (group.inFlight === inFlight) group.inFlight = null;
      if (current && current.inFlight === inFlight) current.inFlight = null;
      if (current && !current.timer) this.scheduleNext(current);
    });
    group.inFlight = inFlight;
    return inFlight;
  }

  /** Resolves at the group's next answer (from any host), or after `timeoutMs`. */
  private nextAnswer(id: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref?.();
      const list = this.answerWaiters.get(id) ?? [];
      list.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.answerWaiters.set(id, list);
    });
  }

  private answerArrived(id: string): void {
    const list = this.answerWaiters.get(id);
    if (!list) return;
    this.answerWaiters.delete(id);
    for (const wake of list) wake();
  }

  /** A query this host claimed in the cluster (the worker of the poll queue runs it). */
  async queryClaimed(id: string): Promise<void> {
    if (this.stopped) return;
    const group = this.groups.get(id);
    // A host on another ci.yaml does not know it: the job fails and another host takes it.
    if (!group)
      throw new Error(`this host does not poll ${redactor.redact(id)} (its ci.yaml differs)`);
    await this.queue.add(() => this.query(group));
  }

  /**
   * Another host's answer: the tracks it changed, and how its query went.
   * A pattern's site follows its branch's commit in the pattern's answer
   * when the host that asked did not know the site.
   */
  applyShared(
    tracks: Record<string, TrackState>,
    answer: { group: string; error: string | null; durationMs: number },
  ): void {
    const changed = new Set<string>();
    for (const [key, track] of Object.entries(tracks)) {
      const before = this.tracks[key];
      if (
        before &&
        before.revision === track.revision &&
        before.missing === track.missing &&
        JSON.stringify(before.refs) === JSON.stringify(track.refs)
      )
        continue;
      this.tracks[key] = track;
      changed.add(key);
    }
    for (const group of this.groups.values()) {
      const found = group.keys.flatMap((k) => {
        const refs = changed.has(k) ? this.tracks[k]?.refs : undefined;
        return refs ? [refs] : [];
      });
      if (found.length === 0) continue;
      for (const [key, spec] of group.specs) {
        if (key in tracks || spec.match !== undefined || !spec.ref) continue;
        const revision = found.find((refs) => spec.ref! in refs)?.[spec.ref];
        if (!revision || this.tracks[key]?.revision === revision) continue;
        this.tracks[key] = { revision, changedAt: new Date(this.now()).toISOString() };
        changed.add(key);
      }
    }
    if (changed.size > 0) this.options.persist(this.tracks);
    const asked = this.groups.get(answer.group);
    if (asked) {
      asked.failures = answer.error ? asked.failures + 1 : 0;
      asked.lastError = answer.error;
      asked.fresh = false;
      this.options.events.polled(asked.branchList, answer.error, answer.durationMs, asked.vcs);
    }
    for (const group of this.groups.values()) {
      const keys = group.keys.filter((k) => changed.has(k));
      if (keys.length > 0) this.options.events.changed(group.branchList, keys);
    }
    if (asked) this.answerArrived(asked.id);
  }

  private async query(group: Group): Promise<void> {
    if (this.stopped) return;
    if (!this.options.share) return this.ask(group);
    const started = this.now();
    // Only this group's tracks can change: no copy of every track per query.
    const { keys } = group;
    const before = keys.map((k) => this.tracks[k]);
    try {
      await this.ask(group);
    } finally {
      const changed: Record<string, TrackState> = {};
      keys.forEach((key, i) => {
        const now = this.tracks[key];
        if (now && now !== before[i]) changed[key] = now;
      });
      this.options.share.answered(group.id, changed, group.lastError, this.now() - started);
      this.answerArrived(group.id);
    }
  }

  private async ask(group: Group): Promise<void> {
    const { keys, sources, branchList } = group;
    const started = this.now();
    let answers: RemoteRevision[];
    try {
      answers = await group.plugin.remoteRevisions(sources, { timeoutMs: group.timeoutMs });
    } catch (err) {
      const message = redactor.redact(errorMessage(err));
      group.failures += 1;
      // Report the start of a failure (or a different failure), not every cycle;
      // timings inside the message do not make it a different failure.
      if (
        group.failures === 1 ||
        message.replace(/\d+/g, '#') !== group.lastError?.replace(/\d+/g, '#')
      ) {
        this.options.log.warn(
          { repository: redactor.redact(group.id), branches: branchList, error: message },
          'remote failing',
        );
      }
      group.lastError = message;
      this.options.events.polled(branchList, message, this.now() - started, group.vcs);
      return;
    }
    if (group.failures > 0) {
      this.options.log.info(
        { repository: redactor.redact(group.id), after: group.failures },
        'remote recovered',
      );
    }
    group.failures = 0;
    group.lastError = null;
    const changedKeys: string[] = [];
    let at: string | undefined;
    // A plugin that hands out the same (frozen) answer again says nothing changed.
    const last = group.lastAnswers;
    group.lastAnswers = answers;
    keys.forEach((key, i) => {
      const answer = answers[i];
      if (answer !== undefined && answer === last?.[i] && Object.isFrozen(answer)) return;
      const before = this.tracks[key];
      const revision = answer && 'revision' in answer ? answer.revision : null;
      const missing = answer && 'missing' in answer ? answer.reason : undefined;
      if (!before || before.revision !== revision || before.missing !== missing) {
        if (missing && before?.missing !== missing)
          this.options.log.warn(
            { track: redactor.redact(key), reason: missing },
            'ref not found on remote',
          );
        // A vanished ref keeps the last revision seen, so the site is kept, not rebuilt.
        at ??= new Date(this.now()).toISOString();
        const refs = answer && 'refs' in answer ? answer.refs : before?.refs;
        this.tracks[key] = {
          revision: revision ?? before?.revision ?? null,
          missing,
          ...(refs ? { refs } : {}),
          changedAt:
            revision !== (before?.revision ?? null) && revision ? at : (before?.changedAt ?? at),
        };
        changedKeys.push(key);
      }
    });
    this.options.events.polled(branchList, null, this.now() - started, group.vcs);
    if (changedKeys.length > 0) this.options.persist(this.tracks);
    if (changedKeys.length > 0 || group.fresh) {
      group.fresh = false;
      this.options.events.changed(branchList, changedKeys);
    }
    // svn learns its repository root on the first answer; regroup if keys moved.
    if (group.keysSettled) return;
    const moved = sources.some((s) => `${group.vcs}|${group.plugin.repositoryKey(s)}` !== group.id);
    if (moved && !this.stopped) void this.setBranches(this.branches);
    else group.keysSettled = true;
  }

  /** Revision now known for a source (null when never seen). */
  revisionOf(key: string): TrackState | undefined {
    return this.tracks[key];
  }
}
