import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Cron } from 'croner';
import { watch, type FSWatcher } from 'chokidar';
import type { BranchConfig, Config } from '../config/types.js';
import type { BuildNotification, EventName, JobNotification } from '../plugin-api.js';
import type {
  BuildSummary,
  CaughtMailSummary,
  CurrentBuild,
  DaemonApi,
  StatusDocument,
} from '../status.js';
import { createLogger, type Logger } from '../log.js';
import { loadConfig } from '../config/load.js';
import { StagepostError, errorMessage } from '../errors.js';
import { StateStore, type StateDamage, type TrackState } from '../state/store.js';
import { FileLock } from '../state/lock.js';
import { VcsRegistry } from '../vcs.js';
import { Poller } from '../poll/poller.js';
import { trackKey } from '../poll/tracks.js';
import { BuildQueue, type QueueItem } from '../queue/build-queue.js';
import { runBuild, targetRevisions, needsBuild, type BuildContext } from '../build/builder.js';
import { runJob } from '../build/job.js';
import { recoverInterrupted, resendPendingNotifications } from '../build/recover.js';
import { NotifyDispatcher } from '../notify/dispatcher.js';
import { createMetrics } from '../metrics.js';
import type { MailCatcher } from '../site/mail-catcher.js';
import { listCaughtMail } from '../site/mail-store.js';
import { redactor } from '../util/redact.js';
import { stopQueryServer, useQueryServer } from '../util/spawner.js';
import { writeRuntimeFile } from './runtime-file.js';
import { historyOf, statusDocument } from './status.js';
import { RetryBook } from './retry.js';

/** How soon `stagepost status` sees news, and routine poll timestamps. */
const RUNTIME_WRITE_SOON_MS = 500;
const RUNTIME_WRITE_ROUTINE_MS = 30_000;

/**
 * The daemon: polls, queues, builds, runs jobs, notifies, serves HTTP, and
 * follows ci.yaml as it is edited. Implements the DaemonApi the HTTP server uses.
 */
export interface DaemonOptions {
  configFile: string;
  log?: Logger;
  env?: NodeJS.ProcessEnv;
  /** Watch ci.yaml for edits (default true). */
  watch?: boolean;
}

export class Daemon implements DaemonApi {
  config!: Config;
  readonly log: Logger;
  private store!: StateStore;
  private lock!: FileLock;
  private vcs!: VcsRegistry;
  private poller!: Poller;
  private queue!: BuildQueue;
  private dispatcher!: NotifyDispatcher;
  private readonly metrics = createMetrics();
  private http: { url: string; close(): Promise<void> } | null = null;
  private httpKey = '';
  private readonly catchers = new Map<string, MailCatcher>();
  private jobs: Cron[] = [];
  private watcher: FSWatcher | null = null;
  private readonly abort = new AbortController();
  private readonly events = new EventEmitter();
  private readonly lastPoll: Record<string, { at: string; error: string | null }> = {};
  private readonly current: Record<string, CurrentBuild> = {};
  private readonly quietTimers = new Map<string, NodeJS.Timeout>();
  private lastConfigError: string | null = null;
  private runtimeTimer: NodeJS.Timeout | null = null;
  private runtimeDue = 0;
  private reloading: Promise<void> = Promise.resolve();
  private startedAt = new Date().toISOString();
  private stopping: Promise<void> | null = null;
  /** Builds that could not start, tried again with backoff (issue 16, point 3). */
  private readonly retries = new RetryBook((b) =>
    this.queue.request({ branch: b, kind: 'build', force: this.retryForced.has(b) }),
  );
  private readonly retryForced = new Set<string>();
  /** Damaged state files found before the dispatcher could mail about them. */
  private damageBeforeStart: StateDamage[] | null = [];

  private constructor(private readonly options: DaemonOptions) {
    this.log = options.log ?? createLogger();
    this.events.setMaxListeners(0);
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    const daemon = new Daemon(options);
    await daemon.init();
    return daemon;
  }

  private async init(): Promise<void> {
    this.config = await loadConfig(this.options.configFile, this.options.env);
    this.store = new StateStore(this.config.stateDir, { onDamage: (d) => this.stateDamaged(d) });
    await this.store.init();
    this.lock = new FileLock(
      path.join(this.config.stateDir, 'daemon.lock'),
      `stagepost run (${this.config.file})`,
    );
    const owner = await this.lock.tryAcquire();
    if (owner) {
      throw new StagepostError(
        'ELOCKED',
        `another stagepost daemon (pid ${owner.pid}) already runs on state_dir ${this.config.stateDir} — stop it first, or give this one another state_dir`,
      );
    }
    const pluginCtx = {
      log: this.log,
      stateDir: path.join(this.config.stateDir, 'plugins'),
      redact: (t: string) => redactor.redact(t),
    };
    this.vcs = new VcsRegistry(pluginCtx);
    // Thousands of ls-remote a day: started by a small fork server, not by forking this process.
    useQueryServer(true);
    await recoverInterrupted(
      this.store,
      this.config.branches.map((b) => b.name),
      this.log,
    );

    this.dispatcher = new NotifyDispatcher({
      stateDir: this.config.stateDir,
      log: this.log,
      redact: (t: string) => redactor.redact(t),
    });
    await this.configureNotifiers();
    await this.dispatcher.start();
    for (const d of this.damageBeforeStart ?? []) this.mailDamage(d);
    this.damageBeforeStart = null;
    await resendPendingNotifications(
      this.store,
      this.config.branches.map((b) => b.name),
      (p) => this.notify(p.notification, p.events),
      this.log,
    );

    this.queue = new BuildQueue(this.config.concurrency, (item) => this.runItem(item));
    this.queue.onChange(() => {
      this.metrics.queueLength.set(this.queue.waitingItems().length);
      this.changed({ type: 'queue' });
    });

    this.poller = new Poller({
      vcs: this.vcs,
      log: this.log,
      tracks: this.readTracks(),
      persist: (tracks) =>
        void this.store
          .writePoll({ version: 1, tracks })
          .catch((err) => this.log.error({ error: err }, 'cannot save poll state')),
      events: {
        changed: (branches) => {
          for (const b of branches) this.considerBuild(b);
        },
        polled: (branches, error, durationMs, vcs) => {
          const at = new Date().toISOString();
          this.metrics.remoteQueriesTotal.inc({ vcs });
          this.metrics.pollDurationSeconds.observe({ vcs }, durationMs / 1000);
          // Only a poll that turns out differently from the last one (first
          // answer, a new or cleared error) is news for `stagepost status`.
          let news = false;
          // One shared entry: this runs for every branch of the repository on every answer.
          const entry = { at, error };
          for (const b of branches) {
            const before = this.lastPoll[b];
            if (!before || before.error !== error) news = true;
            this.lastPoll[b] = entry;
          }
          this.metrics.countPolls(branches, error !== null);
          this.log.debug({ branches, vcs, durationMs, error }, 'polled');
          this.changed({ type: 'poll' }, news);
        },
      },
    });

    await this.applyHttp();
    await this.applyMailCatchers();
    this.applyJobs();
    if (this.options.watch !== false) this.watchConfig();
    this.log.info(
      {
        config: this.config.file,
        branches: this.config.branches.map((b) => b.name),
        stateDir: this.config.stateDir,
        http: this.http?.url,
      },
      'stagepost started',
    );
    await this.poller.setBranches(this.config.branches);
    // Branches whose revisions are already known (restart) need no poll to be considered.
    for (const b of this.config.branches) this.considerBuild(b.name);
  }

  // ------------------------------------------------------------ state faults

  /** poll.json unreadable (not damaged: that is moved aside) costs one round of polls, not the daemon. */
  private readTracks(): Record<string, TrackState> {
    try {
      return this.store.readPoll().tracks;
    } catch (err) {
      this.log.error({ error: err }, 'cannot read poll state; polling every remote afresh');
      return {};
    }
  }

  private stateDamaged(d: StateDamage): void {
    this.log.error(
      { file: d.file, movedTo: d.movedTo, problem: d.problem },
      'state file damaged; moved aside and started afresh',
    );
    if (this.damageBeforeStart) this.damageBeforeStart.push(d);
    else this.mailDamage(d);
    const branch =
      path.dirname(d.file) === this.store.branchesDir ? path.basename(d.file, '.json') : null;
    // Its attempted revisions went with the file: build the branch again.
    if (branch && this.queue) setImmediate(() => this.considerBuild(branch));
  }

  private mailDamage(d: StateDamage): void {
    const what =
      path.dirname(d.file) === this.store.branchesDir
        ? 'the branch is built again and its history starts afresh'
        : 'every remote is polled again';
    const message = `state file ${d.file} was damaged (${d.problem}); it was moved to ${d.movedTo ?? '(not moved)'} and ${what}. Nothing to do unless you want to look at the moved file; delete it when done.`;
    void this.dispatcher
      .dispatch({ type: 'config', file: d.file, message }, ['config-error'])
      .catch(() => undefined);
  }

  // ------------------------------------------------------------ building

  private buildContext(): BuildContext {
    return {
      config: this.config,
      store: this.store,
      vcs: this.vcs,
      log: this.log,
      track: (key) => this.poller.tracks[key],
      notify: (n, events) => this.notify(n, events),
      signal: this.abort.signal,
      progress: (branch, info) => {
        if (info) this.current[branch] = { ...info, elapsedMs: 0 };
        else delete this.current[branch];
        this.changed({ type: 'progress', branch });
      },
      httpUrl: this.config.http?.publicUrl,
      onLockWait: (owner) =>
        this.log.info(
          { owner: owner.purpose, pid: owner.pid },
          'waiting for another process to finish with this branch',
        ),
    };
  }

  /** Resolves once the messages are in the outbox; delivery goes on in the background. */
  private notify(
    n: Omit<BuildNotification, 'events'> | Omit<JobNotification, 'events'>,
    events: EventName[],
  ): Promise<void> {
    return this.dispatcher.enqueue(n, events, n.branch);
  }

  /** Queue a branch if one of its sources has a revision it has not attempted. */
  considerBuild(name: string): void {
    const branch = this.branch(name);
    if (!branch || this.stopping) return;
    let state;
    try {
      state = this.store.readBranch(name);
    } catch (err) {
      const delay = this.retries.failed(name, errorMessage(err));
      this.log.error({ branch: name, error: err, retryInMs: delay }, 'cannot read branch state');
      this.changed({ type: 'build', branch: name });
      return;
    }
    if (state.forcePending) {
      this.queue.request({ branch: name, kind: 'build', force: true });
      return;
    }
    const { revisions, missing } = targetRevisions({ track: (k) => this.poller.tracks[k] }, branch);
    if (missing.length > 0 || !needsBuild(state, revisions)) return;
    const quietUntil = Math.max(
      ...branch.sources.map(
        (s) => Date.parse(this.poller.tracks[trackKey(s)]?.changedAt ?? '0') + branch.poll.quietMs,
      ),
    );
    if (quietUntil > Date.now()) {
      // Build once the revisions have stood still for `quiet`.
      clearTimeout(this.quietTimers.get(name));
      const t = setTimeout(
        () => {
          this.quietTimers.delete(name);
          this.considerBuild(name);
        },
        quietUntil - Date.now() + 5,
      );
      t.unref?.();
      this.quietTimers.set(name, t);
      return;
    }
    const how = this.queue.request({ branch: name, kind: 'build', force: false });
    this.log.debug({ branch: name, how }, 'build requested');
  }

  private async runItem(item: QueueItem): Promise<void> {
    const branch = this.branch(item.branch);
    if (!branch || this.abort.signal.aborted) return;
    this.metrics.buildRunning.set({ branch: branch.name }, 1);
    try {
      if (item.kind === 'build') {
        let outcome;
        try {
          outcome = await runBuild(this.buildContext(), branch, { force: item.force });
        } catch (err) {
          if (this.abort.signal.aborted) throw err;
          if (item.force) this.retryForced.add(branch.name);
          const delay = this.retries.failed(branch.name, errorMessage(err));
          this.log.error(
            { branch: branch.name, error: err, retryInMs: delay },
            'build could not start; trying again',
          );
          return;
        }
        this.retries.started(branch.name);
        this.retryForced.delete(branch.name);
        if (outcome.status === 'built') {
          this.metrics.buildsTotal.inc({
            branch: branch.name,
            result: outcome.record.result ?? 'unknown',
          });
          this.metrics.buildDurationSeconds.observe(
            { branch: branch.name },
            (outcome.record.durationMs ?? 0) / 1000,
          );
        } else if (outcome.status === 'no-revision') {
          this.log.warn({ branch: branch.name, reason: outcome.reason }, 'cannot build yet');
        }
      } else if (item.kind.startsWith('job:')) {
        const job = this.config.jobs.find((j) => `job:${j.name}` === item.kind);
        if (!job) return;
        const record = await runJob(
          { ...this.buildContext(), notifyJob: (n) => this.notify(n, ['job-failure']) },
          job,
          branch,
        );
        this.metrics.buildsTotal.inc({ branch: branch.name, result: record.result ?? 'unknown' });
      }
    } catch (err) {
      this.log.error({ branch: item.branch, kind: item.kind, error: err }, 'build could not run');
    } finally {
      this.metrics.buildRunning.set({ branch: branch.name }, 0);
      this.changed({ type: 'build', branch: item.branch });
    }
  }

  private branch(name: string): BranchConfig | undefined {
    return this.config.branches.find((b) => b.name === name);
  }

  // ------------------------------------------------------------ live config

  private watchConfig(): void {
    let timer: NodeJS.Timeout | undefined;
    // chokidar follows a file that an editor replaces by rename (its atomic
    // save), which a plain fs.watch on the old inode would miss.
    this.watcher = watch(this.config.file, {
      ignoreInitial: true,
      awaitWriteFinish: { stabilityThreshold: 100, pollInterval: 50 },
    });
    const onEvent = () => {
      clearTimeout(timer);
      timer = setTimeout(() => void this.reload(), 150);
    };
    this.watcher.on('add', onEvent).on('change', onEvent);
    this.watcher.on('error', (err) => this.log.warn({ error: err }, 'cannot watch ci.yaml'));
  }

  /** Load ci.yaml again. An invalid edit changes nothing (and is reported once). */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(() => this.doReload());
    return this.reloading;
  }

  private async doReload(): Promise<void> {
    if (this.stopping) return;
    let next: Config;
    try {
      if (!existsSync(this.config.file)) return;
      next = await loadConfig(this.config.file, this.options.env);
    } catch (err) {
      const message = redactor.redact(errorMessage(err));
      this.log.error(
        { config: this.config.file, error: message },
        'ci.yaml edit rejected; keeping the last good config',
      );
      if (message !== this.lastConfigError) {
        this.lastConfigError = message;
        void this.dispatcher
          .dispatch({ type: 'config', file: this.config.file, message }, ['config-error'])
          .catch(() => undefined);
      }
      this.changed({ type: 'config-error' });
      return;
    }
    this.lastConfigError = null;
    const before = new Set(this.config.branches.map((b) => b.name));
    const after = new Set(next.branches.map((b) => b.name));
    this.config = next;
    for (const name of before) if (!after.has(name)) this.queue.remove(name);
    for (const name of before) if (!after.has(name)) this.retries.started(name);
    this.queue.setConcurrency(next.concurrency);
    await this.configureNotifiers();
    await this.poller.setBranches(next.branches);
    await this.applyHttp();
    await this.applyMailCatchers();
    this.applyJobs();
    const added = [...after].filter((n) => !before.has(n));
    const removed = [...before].filter((n) => !after.has(n));
    this.log.info({ added, removed, branches: [...after] }, 'ci.yaml reloaded');
    for (const b of next.branches) this.considerBuild(b.name);
    this.changed({ type: 'config' });
  }

  private async configureNotifiers(): Promise<void> {
    const perBranch = new Map(this.config.branches.map((b) => [b.name, b.notify] as const));
    await this.dispatcher.setNotifiers(this.config.notify, perBranch, {
      authorsDomain: this.config.authorsDomain,
      httpUrl: this.config.http?.publicUrl,
      configDir: this.config.dir,
    });
  }

  private async applyHttp(): Promise<void> {
    const http = this.config.http;
    const key = http ? `${http.host}:${http.port}:${http.token ?? ''}` : '';
    if (key === this.httpKey) return;
    if (this.http) {
      await this.http.close();
      this.http = null;
    }
    this.httpKey = key;
    if (!http) return;
    // Loaded only when configured: fastify is the largest part of a resting daemon's memory.
    const { startHttpServer } = await import('../http/server.js');
    this.http = await startHttpServer({
      host: http.host,
      port: http.port,
      token: http.token,
      api: this,
      metrics: this.metrics,
      log: this.log,
      redact: (t: string) => redactor.redact(t),
    });
  }

  private async applyMailCatchers(): Promise<void> {
    const wanted = new Map<string, BranchConfig>();
    for (const b of this.config.branches)
      if (b.smtpPort)
        wanted.set(`${b.name}:${b.smtpPort}:${b.mailout}:${this.config.site.smtpRelay ?? ''}`, b);
    for (const [key, catcher] of this.catchers) {
      if (!wanted.has(key)) {
        await catcher.stop();
        this.catchers.delete(key);
      }
    }
    for (const [key, b] of wanted) {
      if (this.catchers.has(key)) continue;
      const { MailCatcher } = await import('../site/mail-catcher.js');
      const catcher = new MailCatcher({
        branch: b.name,
        port: b.smtpPort!,
        host: '127.0.0.1',
        stateDir: this.config.stateDir,
        keep: 300,
        relay: b.mailout && this.config.site.smtpRelay ? { url: this.config.site.smtpRelay } : null,
        log: this.log.child({ branch: b.name }),
      });
      catcher.on('caught', () => this.changed({ type: 'mail', branch: b.name }));
      try {
        await catcher.start();
        this.catchers.set(key, catcher);
      } catch (err) {
        this.log.error(
          { branch: b.name, port: b.smtpPort, error: err },
          'mail catcher could not start',
        );
      }
    }
  }

  private applyJobs(): void {
    for (const j of this.jobs) j.stop();
    this.jobs = this.config.jobs.map(
      (job) =>
        new Cron(job.schedule, { timezone: job.timezone, protect: true }, () =>
          this.runJobNow(job.name),
        ),
    );
  }

  /** Queue a job for its branches (or one). */
  runJobNow(name: string, onlyBranch?: string): void {
    const job = this.config.jobs.find((j) => j.name === name);
    if (!job || this.stopping) return;
    for (const b of job.branches) {
      if (onlyBranch && b !== onlyBranch) continue;
      this.queue.request({ branch: b, kind: `job:${job.name}`, force: false });
    }
  }

  // ------------------------------------------------------------ DaemonApi

  status(): StatusDocument {
    const queued = new Set(
      this.queue
        .waitingItems()
        .filter((i) => i.kind === 'build')
        .map((i) => i.branch),
    );
    return redactor.redactValue(
      statusDocument(this.config, this.store, {
        tracks: this.poller.tracks,
        lastPoll: this.lastPoll,
        queued,
        queue: this.queue
          .waitingItems()
          .map((i) => (i.kind === 'build' ? i.branch : `${i.kind}@${i.branch}`)),
        current: this.current,
        outbox: this.dispatcher.outboxSize(),
        waiting: this.retries.all(),
        daemon: { running: true, pid: process.pid, startedAt: this.startedAt },
      }),
    );
  }

  counts(): { queue: number; outbox: number } {
    return { queue: this.queue.waitingItems().length, outbox: this.dispatcher.outboxSize() };
  }

  hasBranch(name: string): boolean {
    return !!this.branch(name);
  }

  history(branch: string): BuildSummary[] {
    return historyOf(this.store, branch);
  }

  logFile(branch: string, id: number): string | null {
    if (!this.hasBranch(branch)) return null;
    const file = this.store.logFile(branch, id);
    return existsSync(file) ? file : null;
  }

  pollNow(branch?: string): Promise<void> {
    return this.poller.pollNow(branch);
  }

  forceBuild(branch: string): void {
    this.queue.request({ branch, kind: 'build', force: true });
  }

  caughtMail(branch: string): Promise<CaughtMailSummary[]> {
    return listCaughtMail(this.config.stateDir, branch);
  }

  onChange(listener: (event: { type: string; branch?: string }) => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }

  private changed(event: { type: string; branch?: string }, news = true): void {
    this.events.emit('change', event);
    this.scheduleRuntimeWrite(news ? RUNTIME_WRITE_SOON_MS : RUNTIME_WRITE_ROUTINE_MS);
  }

  /** Resolves when nothing is queued or running (tests, `update` through a daemon). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /**
   * runtime.json within `delayMs`. Routine polls only refresh timestamps, so
   * they wait long enough that an idle daemon does no file work per cycle;
   * news (queue, builds, a poll error) pulls a pending write forward.
   */
  private scheduleRuntimeWrite(delayMs: number): void {
    if (this.stopping) return;
    const due = Date.now() + delayMs;
    if (this.runtimeTimer) {
      if (this.runtimeDue <= due) return;
      clearTimeout(this.runtimeTimer);
    }
    this.runtimeDue = due;
    this.runtimeTimer = setTimeout(() => {
      this.runtimeTimer = null;
      void writeRuntimeFile(this.config.stateDir, {
        pid: process.pid,
        startedAt: this.startedAt,
        updatedAt: new Date().toISOString(),
        lastPoll: this.lastPoll,
        queue: this.queue.waitingItems().map((i) => i.branch),
        current: this.current,
        outbox: this.dispatcher.outboxSize(),
        waiting: this.retries.all(),
      }).catch(() => undefined);
    }, delayMs);
    this.runtimeTimer.unref?.();
  }

  // ------------------------------------------------------------ shutdown

  /**
   * Stop polling, start nothing new, let running builds finish within the
   * grace period, then end them (recorded `interrupted`, redone on next start).
   */
  stop(graceMs = this.config.shutdownGraceMs): Promise<void> {
    this.stopping ??= this.doStop(graceMs);
    return this.stopping;
  }

  /** A second Ctrl-C: end running builds now instead of waiting out the grace. */
  interruptNow(): void {
    this.log.warn({}, 'interrupting running builds now');
    this.abort.abort();
  }

  private async doStop(graceMs: number): Promise<void> {
    this.log.info({ running: this.queue.runningCount(), graceMs }, 'stopping');
    this.poller.stop();
    this.queue.pause();
    for (const j of this.jobs) j.stop();
    for (const t of this.quietTimers.values()) clearTimeout(t);
    this.retries.stop();
    if (this.runtimeTimer) clearTimeout(this.runtimeTimer);
    await this.watcher?.close();
    const idle = this.queue.idle();
    const graceOver = await Promise.race([
      idle.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref?.()),
    ]);
    if (graceOver) {
      this.log.warn({ graceMs }, 'grace period over; interrupting running builds');
      this.abort.abort();
      await idle;
    }
    await this.poller.idle();
    await stopQueryServer();
    await Promise.race([
      this.dispatcher.flush(),
      new Promise((r) => setTimeout(r, 2000).unref?.()),
    ]);
    await this.dispatcher.close();
    await this.http?.close();
    for (const c of this.catchers.values()) await c.stop();
    await this.lock.release();
    this.log.info({}, 'stopped');
  }
}
