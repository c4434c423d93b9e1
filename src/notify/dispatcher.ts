import path from 'node:path';
import type { NotifierConfig } from '../config/types.js';
import type { EventName, Notification, Notifier, NotifierContext } from '../plugin-api.js';
import type { Logger } from '../log.js';
import { StagepostError, errorMessage } from '../errors.js';
import { redactDeep } from '../util/redact.js';
import { Outbox, type OutboxRecord } from './outbox.js';
import { FailureLog } from './failure-log.js';
import { instantiateNotifier, notifierHash } from './instantiate.js';
import { createPluginContext } from '../plugin-loader/context.js';

export interface DispatcherOptions {
  stateDir: string;
  log: Logger;
  /** Applied to every string of a notification before a plugin sees it. */
  redact: (text: string) => string;
  now?: () => number;
  /** First retry after this long, doubling up to retryMaxMs. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** A message still undelivered this long after it was made is moved to outbox/undeliverable/. */
  giveUpAfterMs?: number;
}

/** Where a cluster's hosts see each other's outbox (src/cluster/link.ts). */
export interface SharedOutbox {
  queued(record: OutboxRecord): void;
  settled(id: string): void;
}

export interface NotifierExtras {
  authorsDomain?: string;
  httpUrl?: string;
  configDir?: string;
}

/** Notification without `events`: the dispatcher fills in each notifier's pick. */
export type NotificationDraft = Notification extends infer N
  ? N extends Notification
    ? Omit<N, 'events'>
    : never
  : never;

interface Entry {
  config: NotifierConfig;
  hash: string;
  notifier: Notifier | null;
  failures: FailureLog;
}

/**
 * Routes notifications to the configured notifiers through the outbox: each
 * notifier's pick of the events → prepare → file in the outbox → deliver →
 * file removed. Failed deliveries stay on disk and are retried with backoff,
 * also after a restart (`start()`). Nothing a plugin does throws out of here.
 */
export class NotifyDispatcher {
  private readonly outbox: Outbox;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly giveUpAfterMs: number;
  private entries = new Map<string, Entry>();
  private global: string[] = [];
  private perBranch = new Map<string, string[]>();
  private extrasKey = '';
  private configured = false;
  private configuring: Promise<unknown> = Promise.resolve();
  private readonly pending = new Map<string, OutboxRecord>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly dispatches = new Set<Promise<void>>();
  /** Messages whose notifier is not configured (any more); warned about once per notifier. */
  private readonly orphans = new Set<string>();
  private readonly warnedOrphans = new Set<string>();
  private closed = false;
  private shared: SharedOutbox | null = null;

  constructor(private readonly options: DispatcherOptions) {
    this.outbox = new Outbox(options.stateDir);
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.retryBaseMs = options.retryBaseMs ?? 15_000;
    this.retryMaxMs = options.retryMaxMs ?? 3_600_000;
    this.giveUpAfterMs = options.giveUpAfterMs ?? 3 * 86_400_000;
  }

  /**
   * Make the notifiers of a (re)loaded config live. Unchanged entries (same
   * key) keep their instance. A broken entry is logged with its file and line
   * and skipped; the others work. Returns the problems.
   */
  setNotifiers(
    global: NotifierConfig[],
    perBranch: Map<string, NotifierConfig[]>,
    extras: NotifierExtras = {},
  ): Promise<StagepostError[]> {
    const next = this.configuring.then(() => this.configure(global, perBranch, extras));
    this.configuring = next.catch(() => undefined);
    return next;
  }

  private async configure(
    global: NotifierConfig[],
    perBranch: Map<string, NotifierConfig[]>,
    extras: NotifierExtras,
  ): Promise<StagepostError[]> {
    const extrasKey = JSON.stringify(extras);
    const wanted = new Map<string, NotifierConfig>();
    for (const c of [...global, ...[...perBranch.values()].flat()])
      if (!wanted.has(c.key)) wanted.set(c.key, c);
    const problems: StagepostError[] = [];
    const old = this.entries;
    const entries = new Map<string, Entry>();
    for (const [key, config] of wanted) {
      const kept = old.get(key);
      if (kept?.notifier && extrasKey === this.extrasKey) {
        entries.set(key, { ...kept, config });
        old.delete(key);
        continue;
      }
      const entry: Entry = {
        config,
        hash: notifierHash(config),
        notifier: null,
        failures: new FailureLog(this.log, {
          notifier: config.use,
          file: config.file,
          line: config.line,
        }),
      };
      try {
        entry.notifier = await instantiateNotifier(config, this.context(config, extras));
      } catch (err) {
        const error =
          err instanceof StagepostError
            ? err
            : new StagepostError(
                'EPLUGIN',
                `${config.file}:${config.line}: notify (${config.use}): ${this.options.redact(String(err))}`,
              );
        problems.push(error);
        this.log.error(
          { notifier: config.use, file: config.file, line: config.line, error: error.message },
          'notifier disabled: it could not be loaded',
        );
      }
      entries.set(key, entry);
    }
    this.entries = entries;
    this.extrasKey = extrasKey;
    this.global = global.map((c) => c.key);
    this.perBranch = new Map([...perBranch].map(([b, cs]) => [b, cs.map((c) => c.key)]));
    this.configured = true;
    for (const entry of old.values()) await this.closeNotifier(entry);
    this.retryOrphans();
    return problems;
  }

  private context(config: NotifierConfig, extras: NotifierExtras): NotifierContext {
    return {
      ...createPluginContext(
        this.options.stateDir,
        this.log.child({ notifier: config.use }),
        this.options.redact,
      ),
      ...extras,
    };
  }

  /**
   * Messages of another host's outbox (a cluster host that is down), now
   * this host's: filed in its own outbox first, like its own messages.
   */
  async adopt(records: OutboxRecord[]): Promise<void> {
    for (const record of records) {
      if (this.pending.has(record.id)) continue;
      await this.outbox
        .write(record)
        .catch((err) => this.log.error({ error: errorMessage(err) }, 'cannot write to the outbox'));
      this.pending.set(record.id, record);
      this.schedule(record.id, 0);
    }
  }

  /** Drop messages another host already sent (before start(): they are not sent again). */
  async drop(ids: string[]): Promise<void> {
    for (const id of ids) await this.outbox.remove(id);
  }

  /** The messages waiting in the outbox on disk. */
  async waiting(): Promise<OutboxRecord[]> {
    return (await this.outbox.readAll()).records;
  }

  /** A cluster: every message filed, and every one settled, is told to the other hosts. */
  shareWith(shared: SharedOutbox): void {
    this.shared = shared;
  }

  /** Load what the last run left in the outbox and try it now (a restart is a good moment: the backoff was per process). */
  async start(): Promise<void> {
    const { records, unreadable } = await this.outbox.readAll();
    for (const file of unreadable)
      this.log.error({ file }, 'outbox file unreadable; left in place');
    if (records.length > 0)
      this.log.info({ messages: records.length }, 'retrying notifications left in the outbox');
    for (const record of records) {
      if (this.pending.has(record.id)) continue;
      this.pending.set(record.id, record);
      this.schedule(record.id, 0);
    }
  }

  /**
   * Send a notification for these events: each notifier gets the events its
   * `on` picks (none: nothing), with the branch's notifiers when `branch` is
   * given and configured, else the global ones. Resolves after the first
   * delivery attempt of every message; never rejects.
   */
  dispatch(
    draft: NotificationDraft | Omit<Notification, 'events'>,
    events: EventName[],
    branch?: string,
  ): Promise<void> {
    return this.track(
      this.doDispatch(draft as Omit<Notification, 'events'>, events, branch)
        .then((attempts) => Promise.all(attempts))
        .then(() => undefined),
    );
  }

  /**
   * Like dispatch, but resolves as soon as every message is in the outbox
   * (delivery goes on in the background). The builder awaits this before it
   * records a build as done, so a kill -9 in between can repeat a mail but
   * never lose one.
   */
  enqueue(
    draft: NotificationDraft | Omit<Notification, 'events'>,
    events: EventName[],
    branch?: string,
  ): Promise<void> {
    return this.track(
      this.doDispatch(draft as Omit<Notification, 'events'>, events, branch).then((attempts) => {
        void this.track(Promise.all(attempts).then(() => undefined));
      }),
    );
  }

  private track(work: Promise<void>): Promise<void> {
    const run = work.catch((err) => {
      this.log.error({ error: this.options.redact(String(err)) }, 'notification dispatch failed');
    });
    this.dispatches.add(run);
    void run.finally(() => this.dispatches.delete(run));
    return run;
  }

  /** Prepares and files every message; returns their first delivery attempts. */
  private async doDispatch(
    draft: Omit<Notification, 'events'>,
    events: EventName[],
    branch: string | undefined,
  ): Promise<Array<Promise<void>>> {
    await this.configuring;
    if (this.closed) return [];
    const keys = (branch !== undefined ? this.perBranch.get(branch) : undefined) ?? this.global;
    const safe = redactDeep(draft, this.options.redact);
    const attempts: Array<Promise<void>> = [];
    for (const key of new Set(keys)) {
      const entry = this.entries.get(key);
      const picked = events.filter((e) => entry?.config.on.includes(e));
      if (!entry?.notifier || picked.length === 0) continue;
      let message: unknown;
      try {
        message = await entry.notifier.prepare({ ...safe, events: picked } as Notification);
      } catch (err) {
        this.log.error(
          {
            notifier: entry.config.use,
            file: entry.config.file,
            line: entry.config.line,
            events: picked,
            error: this.options.redact(errorMessage(err)),
          },
          'notifier could not prepare a message',
        );
        continue;
      }
      if (message === null || message === undefined) continue;
      const now = this.now();
      const record: OutboxRecord = {
        version: 1,
        id: this.outbox.newId(now),
        notifier: entry.hash,
        use: entry.config.use,
        branch,
        events: picked,
        createdAt: new Date(now).toISOString(),
        attempts: 0,
        nextAttemptAt: new Date(now).toISOString(),
        message,
      };
      try {
        await this.outbox.write(record);
        this.shared?.queued(record);
      } catch (err) {
        // Still try to send it; it just will not survive a restart.
        this.log.error(
          { error: errorMessage(err), dir: this.outbox.dir },
          'cannot write to the outbox',
        );
      }
      this.pending.set(record.id, record);
      attempts.push(this.attempt(record.id));
    }
    return attempts;
  }

  /** One delivery in flight per message, however many timers and flushes ask. */
  private attempt(id: string): Promise<void> {
    let running = this.inFlight.get(id);
    if (!running) {
      running = this.deliver(id).finally(() => this.inFlight.delete(id));
      this.inFlight.set(id, running);
    }
    return running;
  }

  private async deliver(id: string): Promise<void> {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    const record = this.pending.get(id);
    if (!record || this.closed) return;
    const entry = [...this.entries.values()].find((e) => e.hash === record.notifier && e.notifier);
    if (!entry) {
      this.orphans.add(id);
      if (this.configured && !this.warnedOrphans.has(record.notifier)) {
        this.warnedOrphans.add(record.notifier);
        this.log.warn(
          { notifier: record.use, file: path.join(this.outbox.dir, `${id}.json`) },
          'outbox message for a notifier that is not configured (any more); kept until it is',
        );
      }
      return;
    }
    try {
      await entry.notifier!.deliver(record.message);
    } catch (err) {
      await this.failed(record, entry, this.options.redact(errorMessage(err)));
      return;
    }
    this.pending.delete(id);
    this.shared?.settled(id);
    entry.failures.succeeded();
    await this.outbox
      .remove(id)
      .catch((err) =>
        this.log.error(
          { error: errorMessage(err), id },
          'cannot remove a delivered message from the outbox; it may be sent again after a restart',
        ),
      );
  }

  private async failed(record: OutboxRecord, entry: Entry, error: string): Promise<void> {
    record.attempts += 1;
    record.lastError = error;
    entry.failures.failed(error, { branch: record.branch, attempts: record.attempts });
    if (this.now() - Date.parse(record.createdAt) > this.giveUpAfterMs) {
      this.pending.delete(record.id);
      this.shared?.settled(record.id);
      const file = await this.outbox.bury(record.id).catch(() => null);
      this.log.error(
        { notifier: record.use, branch: record.branch, attempts: record.attempts, error, file },
        'notification given up after retrying for too long',
      );
      return;
    }
    const delay = Math.min(
      this.retryMaxMs,
      this.retryBaseMs * 2 ** Math.min(record.attempts - 1, 30),
    );
    record.nextAttemptAt = new Date(this.now() + delay).toISOString();
    await this.outbox
      .write(record)
      .catch((err) => this.log.error({ error: errorMessage(err) }, 'cannot write to the outbox'));
    this.schedule(record.id, delay);
  }

  private schedule(id: string, delayMs: number): void {
    if (this.closed) return;
    clearTimeout(this.timers.get(id));
    const timer = setTimeout(() => void this.attempt(id), Math.max(0, delayMs));
    timer.unref?.();
    this.timers.set(id, timer);
  }

  private retryOrphans(): void {
    for (const id of [...this.orphans]) {
      const record = this.pending.get(id);
      if (!record) {
        this.orphans.delete(id);
        continue;
      }
      if ([...this.entries.values()].some((e) => e.hash === record.notifier && e.notifier)) {
        this.orphans.delete(id);
        this.warnedOrphans.delete(record.notifier);
        this.schedule(id, 0);
      } else if (!this.warnedOrphans.has(record.notifier)) {
        void this.attempt(id);
      }
    }
  }

  /** Messages waiting in the outbox (for status and metrics). */
  outboxSize(): number {
    return this.pending.size;
  }

  /**
   * Try every waiting message now and wait for the running dispatches (tests,
   * shutdown). A delivery a retry timer started is waited for too: it leaves
   * `pending` before its outbox file is removed, and flush() resolving in
   * between would show a delivered message still on disk.
   */
  async flush(): Promise<void> {
    await Promise.all([...this.dispatches]);
    await this.configuring;
    const waiting = [...this.pending.keys()]
      .filter((id) => !this.orphans.has(id))
      .map((id) => this.attempt(id));
    await Promise.all([...waiting, ...this.inFlight.values()]);
  }

  /** Stop retrying (the outbox stays on disk for the next start) and close the notifiers. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.all([...this.dispatches, ...this.inFlight.values()]);
    for (const entry of this.entries.values()) await this.closeNotifier(entry);
    this.entries.clear();
  }

  private async closeNotifier(entry: Entry): Promise<void> {
    try {
      await entry.notifier?.close?.();
    } catch (err) {
      this.log.warn(
        { notifier: entry.config.use, error: errorMessage(err) },
        'notifier close failed',
      );
    }
  }
}
