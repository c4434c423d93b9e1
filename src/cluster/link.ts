import pg from 'pg';
import { PgBoss } from 'pg-boss';
import type { ClusterConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { BranchState, TrackState } from '../state/store.js';
import { StagepostError, errorMessage } from '../errors.js';
import type { OutboxRecord } from '../notify/outbox.js';
import { redactor, stripUrlPassword } from '../util/redact.js';
import {
  ANSWER_CHANNEL,
  BOSS_SCHEMA,
  HEARTBEAT,
  MIGRATION,
  OUTBOX_ADOPT,
  OUTBOX_DONE,
  OUTBOX_PUT,
  OUTBOX_SETTLED,
  POLL_QUEUE,
  SAVE_BRANCH,
  SHARE_ANSWER,
  SITES_READ,
  SITES_SAVE,
  TRACKS_SINCE,
  hostQueue,
} from './tables.js';

/** What one host tells the others about a query it made. */
export interface SharedAnswer {
  group: string;
  host: string;
  error: string | null;
  durationMs: number;
}

/** Another host as its last heartbeat left it. */
export interface PeerHost {
  name: string;
  configHash: string;
  startedAt: string;
  heartbeatAt: string;
  pid: number | null;
  httpUrl: string | null;
  running: number;
  queued: number;
  slots: number;
  /** What it publishes of its status document (its branches, queue, outbox). */
  status: unknown;
  ageMs: number;
}

/** A request one host's HTTP API passes to the host that holds the site. */
export type HostRequest =
  { kind: 'build'; branch: string; force: boolean } | { kind: 'job'; job: string; branch: string };

export interface ClusterLinkOptions {
  cluster: ClusterConfig;
  configHash: string;
  log: Logger;
  httpUrl?: string;
  /** A poll this host claimed: query the repository (the group) now. */
  poll(group: string): Promise<void>;
  /** Another host's answer, with the tracks it changed. */
  answered(tracks: Record<string, TrackState>, answer: SharedAnswer): void;
  /** A request for one of this host's sites. */
  request(request: HostRequest): void;
  /** What the heartbeat publishes. */
  load(): { running: number; queued: number; slots: number; status: unknown };
  /** A pattern this host follows (it holds some of its sites) has new sites from its keeper. */
  sites?(pattern: string, body: unknown): void;
  /** Unsent mail of a host that is down, now this host's to send. */
  adopt(records: OutboxRecord[]): void;
  /** The database went away or came back. */
  reachability(unreachableSince: string | null): void;
}

type Pending =
  | { kind: 'answer'; tracks: Record<string, TrackState>; answer: SharedAnswer }
  | { kind: 'branch'; name: string; state: BranchState }
  | { kind: 'mail'; record: OutboxRecord; done?: boolean }
  | { kind: 'mail-done'; id: string }
  | { kind: 'sites'; pattern: string; body: unknown };

/** A host silent this many heartbeats has its unsent mail sent by another (longer than "down": a slow host keeps its own). */
const ADOPT_AFTER_HEARTBEATS = 10;

const RECONNECT_MS = [250, 500, 1000, 2000, 5000];

/** Each host's queue of requests (forced builds, jobs run by hand): kept a day once done. */
const HOST_QUEUE = { notify: true, retryLimit: 3, deleteAfterSeconds: 24 * 3600 };

/**
 * This host's tie to the others: PostgreSQL for what all must see, pg-boss
 * for who polls (a `stately` queue with a singleton key per repository and
 * a time slot per cycle, so one host claims each cycle's query) and for
 * requests to a host. When the database is unreachable the host goes on
 * alone: it polls the repositories of its own sites, builds them and keeps
 * their results; what it owes the database is written when it is back, in
 * the order it happened.
 */
export class ClusterLink {
  readonly host: string;
  private boss!: PgBoss;
  private pool!: pg.Pool;
  private listener: pg.Client | null = null;
  private lastSeq = 0;
  private peers: PeerHost[] = [];
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private reconnects = 0;
  private readonly pending: Pending[] = [];
  private flushing: Promise<void> | null = null;
  private down: string | null = null;
  private stopped = false;
  private readonly startedAt = new Date().toISOString();
  private configHash: string;
  private readonly warnedHashes = new Set<string>();
  /** Statements this host sent through its own pool (pg-boss's are not counted). */
  statements = 0;

  private constructor(private readonly options: ClusterLinkOptions) {
    this.host = options.cluster.host;
    this.configHash = options.configHash;
    // The password, wherever it shows up alone (a URL's is masked anyway).
    try {
      redactor.add(decodeURIComponent(new URL(options.cluster.database).password));
    } catch {
      // Not a URL pg can use either: connecting says so.
    }
  }

  static async start(options: ClusterLinkOptions): Promise<ClusterLink> {
    const link = new ClusterLink(options);
    try {
      await link.connect();
    } catch (err) {
      await link.stop();
      throw new StagepostError(
        'ECLUSTER',
        `cannot reach the cluster database ${stripUrlPassword(options.cluster.database)}: ${redactor.redact(errorMessage(err))} — start PostgreSQL or correct cluster.database in ci.yaml; under systemd the daemon is started again (Restart=on-failure)`,
        { cause: err },
      );
    }
    return link;
  }

  get unreachableSince(): string | null {
    return this.down;
  }

  private async connect(): Promise<void> {
    const url = this.options.cluster.database;
    this.pool = new pg.Pool({
      connectionString: url,
      max: 4,
      connectionTimeoutMillis: 5000,
      application_name: `stagepost ${this.host}`,
    });
    // An idle client losing its server must not end the daemon.
    this.pool.on('error', (err) => this.failed(err));
    await this.query(MIGRATION);
    this.boss = new PgBoss({
      connectionString: url,
      schema: BOSS_SCHEMA,
      max: 4,
      application_name: `stagepost ${this.host} (pg-boss)`,
      useListenNotify: true,
      schedule: false,
      connectionTimeoutMillis: 5000,
      // Expired polls of a host that died mid-query are found this often.
      superviseIntervalSeconds: 15,
    });
    this.boss.on('error', (err) => this.failed(err));
    this.boss.on('warning', (w) => this.options.log.debug({ warning: w }, 'pg-boss warning'));
    await this.boss.start();
    await this.boss.createQueue(POLL_QUEUE, {
      policy: 'stately',
      notify: true,
      // A host that does not know the repository fails the job; another one takes it.
      retryLimit: 2,
      expireInSeconds: 15 * 60,
      deleteAfterSeconds: 3600,
    });
    await this.boss.createQueue(hostQueue(this.host), HOST_QUEUE);
  }

  /** Take polls and requests, hear the others' answers, and beat (once the daemon can answer). */
  async serve(): Promise<void> {
    // A cycle's jobs arrive together: a worker that took one job per fetch slept
    // out its interval after it, and the rest waited a cycle (docs/performance.md).
    await this.boss.work<{ group: string }>(
      POLL_QUEUE,
      {
        pollingIntervalSeconds: 2,
        notifyPollingIntervalSeconds: 30,
        batchSize: 8,
        burstWhenBatchFull: true,
        localConcurrency: 2,
        perJobResults: true,
      },
      async (jobs) =>
        Promise.all(
          jobs.map(async (job) => {
            try {
              await this.options.poll(job.data.group);
              return { id: job.id, status: 'completed' as const };
            } catch (err) {
              return {
                id: job.id,
                status: 'failed' as const,
                output: { error: errorMessage(err) },
              };
            }
          }),
        ),
    );
    await this.boss.work<HostRequest>(
      hostQueue(this.host),
      { pollingIntervalSeconds: 2, notifyPollingIntervalSeconds: 30 },
      async (jobs) => {
        for (const job of jobs) this.options.request(job.data);
        return Promise.resolve();
      },
    );
    await this.listen();
    await this.heartbeat();
    this.heartbeatTimer = setInterval(
      () => void this.heartbeat(),
      this.options.cluster.heartbeatMs,
    );
    this.heartbeatTimer.unref?.();
  }

  // ------------------------------------------------------------ polls

  /**
   * Ask for this cycle's query of a repository. `sent`: a job is queued, some
   * host (likely this one: its worker is woken first) runs it; `taken`: this
   * cycle's query is already claimed; `unreachable`: the caller queries
   * itself. `slotSeconds` 0 (a commit hook) asks for a query now, after any
   * running one.
   */
  async claimPoll(
    group: string,
    slotSeconds: number,
    timeoutMs: number,
  ): Promise<'sent' | 'taken' | 'unreachable'> {
    if (this.down) return 'unreachable';
    try {
      const id = await this.boss.send(
        POLL_QUEUE,
        { group },
        {
          singletonKey: group,
          ...(slotSeconds > 0 ? { singletonSeconds: slotSeconds } : {}),
          // A host killed mid-query holds the repository's one active slot until this expires.
          expireInSeconds: Math.ceil(timeoutMs / 1000) + 15,
        },
      );
      return id ? 'sent' : 'taken';
    } catch (err) {
      this.failed(err);
      return 'unreachable';
    }
  }

  /** Tell every host what a query of this host found (and the tracks it changed). */
  shareAnswer(tracks: Record<string, TrackState>, answer: Omit<SharedAnswer, 'host'>): void {
    // An answer that changed nothing is stale by the time the database is back.
    if (this.down && Object.keys(tracks).length === 0) return;
    this.pending.push({ kind: 'answer', tracks, answer: { ...answer, host: this.host } });
    void this.flush();
  }

  /** The site's state, for every host's view and history (written behind, kept while the database is away). */
  saveBranch(name: string, state: BranchState): void {
    // Only the newest state of a branch matters: an older one waiting is replaced.
    const i = this.pending.findIndex((p) => p.kind === 'branch' && p.name === name);
    if (i >= 0) this.pending.splice(i, 1);
    this.pending.push({ kind: 'branch', name, state });
    void this.flush();
  }

  /** A message entered this host's outbox: other hosts can send it if this one goes down. */
  mailQueued(record: OutboxRecord): void {
    this.pending.push({ kind: 'mail', record });
    void this.flush();
  }

  /** A message was sent (or given up): no host sends it again. */
  mailSettled(id: string): void {
    // Not written yet (the database was away): written as sent, so no host ever takes it.
    const unwritten = this.pending.find((p) => p.kind === 'mail' && p.record.id === id);
    if (unwritten?.kind === 'mail') {
      unwritten.done = true;
      return;
    }
    this.pending.push({ kind: 'mail-done', id });
    void this.flush();
  }

  /** Of this host's outbox messages, those another host sent or took while this one was down. */
  async settledElsewhere(ids: string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.query<{ id: string }>(OUTBOX_SETTLED, [ids, this.host]);
    return rows.map((r) => r.id);
  }

  /** Take the unsent mail of hosts down for long, and hand it to this host's outbox. */
  private async adoptMail(): Promise<void> {
    const silentMs = this.options.cluster.heartbeatMs * ADOPT_AFTER_HEARTBEATS;
    const { rows } = await this.query<{ id: string; record: OutboxRecord }>(OUTBOX_ADOPT, [
      this.host,
      silentMs,
    ]);
    if (rows.length === 0) return;
    this.options.log.info(
      { messages: rows.length, ids: rows.map((r) => r.id) },
      'sending the unsent mail of a host that is down',
    );
    this.options.adopt(rows.map((r) => r.record));
  }

  /** This host keeps a pattern on several hosts: its sites, for the others. */
  shareSites(pattern: string, body: unknown): void {
    const i = this.pending.findIndex((p) => p.kind === 'sites' && p.pattern === pattern);
    if (i >= 0) this.pending.splice(i, 1);
    this.pending.push({ kind: 'sites', pattern, body });
    void this.flush();
  }

  private followed: string[] = [];
  private readonly sitesSeen = new Map<string, string>();

  /** Patterns other hosts keep whose sites may be placed here: read with each heartbeat. */
  followSites(patterns: string[]): void {
    this.followed = patterns;
  }

  private async readSites(): Promise<void> {
    if (this.followed.length === 0 || !this.options.sites) return;
    const { rows } = await this.query<{ pattern: string; body: unknown }>(SITES_READ, [
      this.followed,
    ]);
    for (const row of rows) {
      const text = JSON.stringify(row.body);
      if (this.sitesSeen.get(row.pattern) === text) continue;
      this.sitesSeen.set(row.pattern, text);
      this.options.sites(row.pattern, row.body);
    }
  }

  /** Pass a request to the host that holds a site. */
  async sendTo(host: string, request: HostRequest): Promise<void> {
    // The host may never have started yet: its queue keeps the request until it does.
    await this.boss.createQueue(hostQueue(host), HOST_QUEUE);
    await this.boss.send(hostQueue(host), request);
  }

  /** Every track the cluster knows, and from when (start-up). */
  async readTracks(): Promise<Record<string, TrackState>> {
    const { rows } = await this.query<TrackRow>(TRACKS_SINCE, [0]);
    const tracks: Record<string, TrackState> = {};
    for (const row of rows) {
      tracks[row.key] = trackOf(row);
      this.lastSeq = Math.max(this.lastSeq, Number(row.seq));
    }
    return tracks;
  }

  /** ci.yaml was reloaded. */
  setConfigHash(hash: string): void {
    this.configHash = hash;
  }

  /** Once per host and ci.yaml version: running different configs is allowed, but rarely meant. */
  private warnDifferentConfigs(): void {
    for (const peer of this.peers) {
      const key = `${peer.name} ${peer.configHash} ${this.configHash}`;
      if (peer.configHash === this.configHash || this.warnedHashes.has(key)) continue;
      this.warnedHashes.add(key);
      this.options.log.warn(
        { host: peer.name, theirs: peer.configHash, ours: this.configHash },
        'another host runs a different ci.yaml; copy the same ci.yaml to every host',
      );
    }
  }

  /** The other hosts, as of the last heartbeat. */
  otherHosts(): PeerHost[] {
    return this.peers;
  }

  /** Jobs waiting in a host's queue (for status of a host that is down). */
  async queued(host: string): Promise<number> {
    const queue = await this.boss.getQueue(hostQueue(host)).catch(() => null);
    return queue?.queuedCount ?? 0;
  }

  // ------------------------------------------------------------ the database

  private async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    this.statements += 1;
    return this.pool.query<R>(text, values);
  }

  private failed(err: unknown): void {
    if (this.stopped) return;
    if (!this.down) {
      this.down = new Date().toISOString();
      this.options.log.error(
        { error: redactor.redact(errorMessage(err)) },
        'database unreachable; this host goes on alone and writes what it owes when it is back',
      );
      this.options.reachability(this.down);
    }
  }

  private back(): void {
    if (!this.down) return;
    this.options.log.info({ since: this.down }, 'database reachable again');
    this.down = null;
    this.options.reachability(null);
    void this.flush();
  }

  /** Write what is owed, oldest first; stop at the first failure and keep the rest. */
  private flush(): Promise<void> {
    // Back from an outage, the heartbeat goes first: until this host's heartbeat is
    // fresh, the others would take its mail for that of a dead host.
    if (this.down) return Promise.resolve();
    this.flushing ??= (async () => {
      try {
        while (this.pending.length > 0 && !this.stopped) {
          const next = this.pending[0];
          try {
            if (next.kind === 'answer') {
              const rows = Object.entries(next.tracks).map(([key, t]) => ({
                key,
                revision: t.revision,
                missing: t.missing ?? null,
                refs: t.refs ?? null,
                changed_at: t.changedAt,
              }));
              await this.query(SHARE_ANSWER, [JSON.stringify(rows), JSON.stringify(next.answer)]);
            } else if (next.kind === 'branch') {
              await this.query(SAVE_BRANCH, [next.name, this.host, JSON.stringify(next.state)]);
            } else if (next.kind === 'sites') {
              await this.query(SITES_SAVE, [next.pattern, this.host, JSON.stringify(next.body)]);
            } else if (next.kind === 'mail') {
              await this.query(OUTBOX_PUT, [
                next.record.id,
                this.host,
                JSON.stringify(next.record),
                next.done === true,
              ]);
            } else {
              await this.query(OUTBOX_DONE, [next.id]);
            }
          } catch (err) {
            this.failed(err);
            return;
          }
          this.pending.shift();
        }
      } finally {
        this.flushing = null;
      }
    })();
    return this.flushing;
  }

  private async heartbeat(): Promise<void> {
    if (this.stopped) return;
    const load = this.options.load();
    try {
      const { rows } = await this.query<{ others: PeerHost[] }>(HEARTBEAT, [
        this.host,
        this.configHash,
        this.startedAt,
        process.pid,
        this.options.httpUrl ?? null,
        load.running,
        load.queued,
        load.slots,
        JSON.stringify(redactor.redactValue(load.status)),
      ]);
      this.peers = rows[0]?.others ?? [];
      this.warnDifferentConfigs();
      await this.readSites();
      if (
        this.peers.some((p) => p.ageMs > this.options.cluster.heartbeatMs * ADOPT_AFTER_HEARTBEATS)
      )
        await this.adoptMail();
      this.back();
      if (!this.listener) void this.listen();
    } catch (err) {
      this.failed(err);
    }
  }

  // ------------------------------------------------------------ LISTEN

  private async listen(): Promise<void> {
    if (this.stopped || this.listener) return;
    const client = new pg.Client({
      connectionString: this.options.cluster.database,
      connectionTimeoutMillis: 5000,
      application_name: `stagepost ${this.host} (listen)`,
    });
    this.listener = client;
    const lost = (err?: unknown) => {
      if (this.listener !== client) return;
      this.listener = null;
      void endQuietly(client);
      if (err) this.failed(err);
      this.scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (msg) => {
      if (msg.channel === ANSWER_CHANNEL && msg.payload) this.notified(msg.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${ANSWER_CHANNEL}`);
      this.reconnects = 0;
      // Answers written while this host was not listening.
      await this.catchUp(null);
    } catch (err) {
      lost(err);
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    const delay = RECONNECT_MS[Math.min(this.reconnects, RECONNECT_MS.length - 1)];
    this.reconnects += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.listen();
    }, delay);
    this.reconnectTimer.unref?.();
  }

  private notified(payload: string): void {
    let message: { answer: SharedAnswer; seq: number | null };
    try {
      message = JSON.parse(payload) as typeof message;
    } catch {
      return;
    }
    if (message.answer.host === this.host) {
      if (message.seq !== null) this.lastSeq = Math.max(this.lastSeq, Number(message.seq));
      return;
    }
    // An answer that changed nothing needs no read: it only says the repository was asked.
    if (message.seq === null) {
      const answer = message.answer;
      this.catchChain = this.catchChain.then(() => this.options.answered({}, answer));
      return;
    }
    void this.catchUp(message.answer);
  }

  private catchChain: Promise<void> = Promise.resolve();

  /** Read the tracks changed since the last seen, in order, and hand them on with the answer. */
  private catchUp(answer: SharedAnswer | null): Promise<void> {
    this.catchChain = this.catchChain.then(async () => {
      let tracks: Record<string, TrackState> = {};
      try {
        const { rows } = await this.query<TrackRow>(TRACKS_SINCE, [this.lastSeq]);
        for (const row of rows) {
          tracks[row.key] = trackOf(row);
          this.lastSeq = Math.max(this.lastSeq, Number(row.seq));
        }
      } catch (err) {
        this.failed(err);
        tracks = {};
      }
      if (answer || Object.keys(tracks).length > 0)
        this.options.answered(
          tracks,
          answer ?? { group: '', host: '', error: null, durationMs: 0 },
        );
    });
    return this.catchChain;
  }

  // ------------------------------------------------------------ stop

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const listener = this.listener;
    this.listener = null;
    if (listener) await endQuietly(listener);
    await this.boss?.stop({ graceful: true, timeout: 5000, close: true }).catch(() => undefined);
    // What could not be written stays owed: the local state has it, and `cluster import` or the next start writes it.
    await this.pool?.end().catch(() => undefined);
  }
}

/** Close a LISTEN connection whose events no longer matter (a late error must not throw). */
async function endQuietly(client: pg.Client): Promise<void> {
  client.removeAllListeners();
  client.on('error', () => undefined);
  await client.end().catch(() => undefined);
}

interface TrackRow {
  key: string;
  revision: string | null;
  missing: string | null;
  refs: Record<string, string> | null;
  changed_at: Date;
  seq: string;
}

function trackOf(row: TrackRow): TrackState {
  return {
    revision: row.revision,
    ...(row.missing ? { missing: row.missing } : {}),
    ...(row.refs ? { refs: row.refs } : {}),
    changedAt: new Date(row.changed_at).toISOString(),
  };
}
