import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { BranchConfig, Config } from '../config/types.js';
import type { BuildNotification, EventName, JobNotification } from '../plugin-api.js';
import type {
  BuildSummary,
  CaughtMailSummary,
  CurrentBuild,
  DaemonApi,
  RunHistory,
  StatusDocument,
} from '../api.js';
import { createLogger, type Logger } from '../log.js';
import { loadAndRemember, rejectionOf, type ConfigRejection } from '../config/last-good.js';
import { StagepostError, errorMessage } from '../errors.js';
import { StateStore } from '../state/store.js';
import { FileLock } from '../state/lock.js';
import { VcsRegistry } from '../vcs.js';
import { Poller } from '../poll/poller.js';
import { trackKey } from '../poll/tracks.js';
import { BuildQueue, type QueueItem } from '../queue/build-queue.js';
import { runBuild, targetRevisions, needsBuild } from '../builds/builder.js';
import type { BuildContext } from '../builds/context.js';
import { runJob } from '../builds/job.js';
import type { SlowWatch } from '../builds/slow-watch.js';
import { StateFaults, readTracksOrNone } from './state-faults.js';
import { watchSlowRuns } from './slow-runs.js';
import { recoverInterrupted, resendPendingNotifications } from '../builds/recover.js';
import { NotifyDispatcher } from '../notify/dispatcher.js';
import { createMetrics } from '../metrics.js';
import { listCaughtMail } from '../site/mail-store.js';
import { redactor, stripUrlPassword } from '../util/redact.js';
import { createPluginContext } from '../plugin-loader/context.js';
import { historyOf, runHistoryOf, statusDocument } from './status-document.js';
import { HttpHost } from './http-host.js';
import { MailCatchers } from './mail-catchers.js';
import { JobSchedule } from './job-schedule.js';
import { ConfigWatcher } from './config-watcher.js';
import { PollRecord } from './poll-record.js';
import { RefWatch } from './ref-watch.js';
import { SiteKeeper } from './site-keeper.js';
import { LeavingSites } from './leaving-sites.js';
import { runSitesHook } from './sites-hook.js';
import { ForegroundBuilds } from './foreground-builds.js';
import { RetryBook } from './retry.js';
import { forgetEnvironment } from '../util/forget-env.js';
import type { ClusterLink, HostRequest, SharedAnswer } from '../cluster/link.js';
import {
  clusterDocument,
  configHash,
  hostAlive,
  localView,
  type PublishedStatus,
} from '../cluster/view.js';
import type { TrackState } from '../state/store.js';
import { readSites, writeSites, type SiteEntry, type SitesFile } from '../patterns/sites-file.js';
import {
  RuntimeWriter,
  RUNTIME_WRITE_ROUTINE_MS,
  RUNTIME_WRITE_SOON_MS,
} from './runtime-writer.js';

/** What a pattern's keeper shares of its sites with the hosts they are placed on. */
interface MirroredSites {
  sites: Record<string, SiteEntry>;
  waiting: NonNullable<SitesFile['waiting']>[string];
  retired: NonNullable<SitesFile['retired']>;
}

export interface DaemonOptions {
  configFile: string;
  log?: Logger;
  env?: NodeJS.ProcessEnv;
  /** Watch ci.yaml for edits (default true). */
  watch?: boolean;
  /** `run --http-port`: listen here instead of ci.yaml's port (several hosts of a cluster on one machine). */
  httpPort?: number;
}

/**
 * The daemon: polls, queues, builds, runs jobs, notifies, and follows ci.yaml
 * as it is edited. It wires the parts together and implements the DaemonApi
 * the HTTP server uses; the HTTP listener, mail catchers, cron timers, the
 * config watcher and the runtime file each live in a file of their own.
 */
export class Daemon implements DaemonApi {
  /** The part of ci.yaml this host runs (all of it without a cluster). */
  config!: Config;
  /** ci.yaml as loaded: with a cluster, every host's sites (they are all polled). */
  private fullConfig!: Config;
  private link: ClusterLink | null = null;
  private hash = '';
  readonly log: Logger;
  private store!: StateStore;
  private lock!: FileLock;
  private vcs!: VcsRegistry;
  private poller!: Poller;
  private queue!: BuildQueue;
  private dispatcher!: NotifyDispatcher;
  private slowWatch!: SlowWatch;
  private readonly metrics = createMetrics();
  private readonly polls = new PollRecord(this.metrics);
  private readonly http: HttpHost;
  private readonly catchers: MailCatchers;
  private readonly schedule = new JobSchedule((job) => this.runJobNow(job));
  private watcher: ConfigWatcher | null = null;
  private readonly runtime = new RuntimeWriter(
    () => this.config.stateDir,
    () => ({
      pid: process.pid,
      startedAt: this.startedAt,
      updatedAt: new Date().toISOString(),
      lastPoll: this.polls.lastPoll,
      queue: this.queue.waitingItems().map((i) => i.branch),
      current: this.current,
      outbox: this.dispatcher.outboxSize(),
      configError: this.configRejection,
      waiting: this.retries.all(),
      httpUrl: this.http.url ?? null,
    }),
  );
  private readonly abort = new AbortController();
  private readonly events = new EventEmitter();
  private readonly current: Record<string, CurrentBuild> = {};
  private readonly quietTimers = new Map<string, NodeJS.Timeout>();
  private lastConfigError: string | null = null;
  private configRejection: ConfigRejection | null = null;
  private refs!: RefWatch;
  private sites!: SiteKeeper;
  private foreground: ForegroundBuilds | null = null;
  private readonly leavingSites: LeavingSites;
  private branchIndex: { config: Config; map: Map<string, BranchConfig> } | null = null;
  private reloading: Promise<void> = Promise.resolve();
  private startedAt = new Date().toISOString();
  private stopping: Promise<void> | null = null;
  /** Builds that could not start, tried again with backoff (issue 16, point 3). */
  private readonly retries = new RetryBook((b) =>
    this.queue.request({ branch: b, kind: 'build', force: this.retryForced.has(b) }),
  );
  private readonly retryForced = new Set<string>();
  private readonly faults: StateFaults;

  /** ci.yaml's `${VAR}` values: the start-up environment, kept for reloads once forgotten. */
  private readonly env: NodeJS.ProcessEnv;

  private constructor(private readonly options: DaemonOptions) {
    this.log = options.log ?? createLogger();
    this.env = options.env ?? { ...process.env };
    this.events.setMaxListeners(0);
    this.http = new HttpHost(this, this.metrics, this.log);
    this.leavingSites = new LeavingSites({
      queue: () => this.queue,
      dispatcher: () => this.dispatcher,
      log: this.log,
      // Every pattern: a site placed here by another host's keeper retires here (keep_dir, URLs).
      config: () => ({ ...this.config, patterns: this.fullConfig.patterns }),
      vcs: () => this.vcs,
      tracks: () => this.poller.tracks,
      buildContext: () => this.buildContext(),
      present: (name) => !!this.branch(name),
      aborted: () => this.abort.signal.aborted,
      changed: (branch) => this.changed({ type: 'build', branch }),
    });
    this.faults = new StateFaults(
      this.log,
      () => this.store.branchesDir,
      (file, message) =>
        void this.dispatcher
          .dispatch({ type: 'config', file, message }, ['config-error'])
          .catch(() => undefined),
      // Before the queue exists, start-up considers every branch anyway.
      (branch) => this.queue && this.considerBuild(branch),
    );
    this.catchers = new MailCatchers(this.log, (branch) => this.changed({ type: 'mail', branch }));
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    const daemon = new Daemon(options);
    await daemon.init();
    return daemon;
  }

  private async init(): Promise<void> {
    this.useConfig(await loadAndRemember(this.options.configFile, this.env));
    this.forgetSecrets();
    this.store = new StateStore(this.config.stateDir, {
      onDamage: (d) => this.faults.damaged(d),
      written: (branch, state) => this.link?.saveBranch(branch, state),
    });
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
    this.vcs = new VcsRegistry(createPluginContext(this.config.stateDir, this.log));
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
    let shared: Record<string, TrackState> = {};
    if (this.fullConfig.cluster) {
      // pg and pg-boss are loaded only by a host of a cluster: a single host never needs them.
      const { ClusterLink } = await import('../cluster/link.js');
      const { seedMissingStates } = await import('../cluster/seed.js');
      this.link = await ClusterLink.start({
        cluster: this.fullConfig.cluster,
        configHash: this.hash,
        log: this.log,
        httpUrl: this.config.http?.publicUrl,
        poll: (group) => this.poller.queryClaimed(group),
        answered: (tracks, answer) => this.sharedAnswer(tracks, answer),
        request: (request) => this.hostRequest(request),
        load: () => this.clusterLoad(),
        reachability: () => this.changed({ type: 'cluster' }),
        adopt: (records) => void this.dispatcher.adopt(records),
        sites: (pattern, body) => this.mirrorSites(pattern, body as MirroredSites),
      });
      // Mail another host sent for this one while it was down is not sent again.
      const waiting = await this.dispatcher.waiting();
      await this.dispatcher.drop(await this.link.settledElsewhere(waiting.map((r) => r.id)));
      for (const record of await this.dispatcher.waiting()) this.link.mailQueued(record);
      const link = this.link;
      this.dispatcher.shareWith({
        queued: (record) => link.mailQueued(record),
        settled: (id) => link.mailSettled(id),
      });
      shared = await this.link.readTracks();
      // A site that moved here keeps the state it had (no rebuild, no mail) when its dir is a checkout.
      await seedMissingStates(this.fullConfig.cluster, this.store, this.config.branches, this.log);
    }
    await this.dispatcher.start();
    this.slowWatch = watchSlowRuns({
      store: this.store,
      dispatcher: this.dispatcher,
      log: this.log,
      config: () => this.config,
    });
    this.faults.started();
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

    const known = { ...readTracksOrNone(this.store, this.log), ...shared };
    this.refs = new RefWatch(this.config.branches, known);
    this.sites = new SiteKeeper({
      log: this.log,
      config: () => this.config,
      tracks: () => this.poller.tracks,
      reload: () => this.reload(),
      // A site placed on another host of the cluster is retired there, where its files are.
      retire: (site, reason) =>
        site.host && this.link && site.host !== this.link.host
          ? Promise.resolve()
          : this.leavingSites.retire(site, reason),
      held: (pattern, sites) => this.leavingSites.held(pattern.name, sites),
      sitesChanged: (change) => runSitesHook(this.config, this.log, change),
      written: (sites) => this.shareSites(sites),
    });
    this.poller = new Poller({
      vcs: this.vcs,
      log: this.log,
      tracks: known,
      ...(this.link ? { share: this.pollSharing(this.link) } : {}),
      persist: (tracks) =>
        void this.store
          .writePoll({ version: 1, tracks })
          .catch((err) => this.log.error({ error: err }, 'cannot save poll state')),
      events: {
        changed: (branches) => {
          // A ref can only go or come back in an answer that changed something.
          for (const b of branches) this.refAnswered(b);
          for (const b of branches) this.considerBuild(b);
        },
        polled: (branches, error, durationMs, vcs) => {
          // Only a poll that turns out differently from the last one is news for
          // `stagepost status`. A branch whose ref is gone keeps that error while
          // its remote answers; looking it up costs one Map.get on an answer.
          // A pattern's discovery entry is no branch: no lastPoll, no metrics label of its own.
          const real = this.sites.branchesOnly(branches);
          const news = this.polls.polled(real, error, durationMs, vcs, (b, at) => {
            const missing = this.refs.errorOf(b);
            return missing === null ? null : { at, error: missing };
          });
          this.log.debug({ branches, vcs, durationMs, error }, 'polled');
          this.sites.polled(branches, error);
          this.changed({ type: 'poll' }, news);
        },
      },
    });

    await this.http.apply(this.config);
    await this.catchers.apply(this.config);
    this.schedule.apply(this.config.jobs);
    if (this.options.watch !== false) {
      this.watcher = new ConfigWatcher(this.config.file, this.log, () => void this.reload());
      this.foreground = new ForegroundBuilds(this.store, this.log);
      this.foreground.start();
    }
    this.log.info(
      {
        config: this.config.file,
        branches: this.config.branches.map((b) => b.name),
        stateDir: this.config.stateDir,
        http: this.http.url,
      },
      'stagepost started',
    );

    // What the database has of a site this host has no state of yet (it builds it) stays until it has.
    if (this.link)
      for (const b of this.config.branches)
        if (existsSync(this.store.branchFile(b.name)))
          this.link.saveBranch(b.name, this.store.readBranch(b.name));
    await this.poller.setBranches(this.sites.pollerBranches(this.fullConfig));
    // Only now does this host know every repository it may be asked to poll.
    await this.link?.serve();
    this.followSites();
    if (this.link) this.shareSites(readSites(this.config.stateDir));
    // Branches whose revisions are already known (restart) need no poll to be considered.
    for (const b of this.config.branches) this.considerBuild(b.name);
  }

  // ------------------------------------------------------------ cluster

  /** Take a loaded ci.yaml: with a cluster, this host runs its own part of it. */
  private useConfig(loaded: Config): void {
    let config = loaded;
    const port = this.options.httpPort;
    if (port !== undefined && config.http) {
      const http = { ...config.http, port };
      if (!http.publicUrlSet)
        http.publicUrl = `http://${http.host.includes(':') ? `[${http.host}]` : http.host}:${port}`;
      config = { ...config, http };
    }
    this.fullConfig = config;
    this.config = localView(config);
    if (config.cluster) {
      this.hash = configHash(config);
      this.link?.setConfigHash(this.hash);
      this.followSites();
    }
  }

  /** Patterns kept by another host that may place sites here. */
  private followSites(): void {
    const me = this.link?.host;
    if (!me) return;
    this.link!.followSites(
      this.fullConfig.patterns
        .filter((p) => p.hosts?.includes(me) && p.hosts[0] !== me)
        .map((p) => p.name),
    );
  }

  /** This host keeps patterns on several hosts: their sites go to the database for the others. */
  private shareSites(sites: SitesFile): void {
    for (const pattern of this.config.patterns) {
      if ((pattern.hosts?.length ?? 0) < 2) continue;
      this.link?.shareSites(pattern.name, {
        sites: sites.patterns[pattern.name] ?? {},
        waiting: sites.waiting?.[pattern.name] ?? {},
        retired: Object.fromEntries(
          Object.entries(sites.retired ?? {}).filter(([, r]) => r.pattern === pattern.name),
        ),
      } satisfies MirroredSites);
    }
  }

  /**
   * Another host keeps this pattern: its sites, as it decided them, become
   * this host's sites.json entry for it; the reload builds the ones placed
   * here and retires those gone (teardown, port, dir, mail, as the keeper would).
   */
  private mirrorChain: Promise<void> = Promise.resolve();
  private mirrorSites(pattern: string, body: MirroredSites): void {
    this.mirrorChain = this.mirrorChain
      .then(async () => {
        const dir = this.config.stateDir;
        const sites = readSites(dir);
        const next: SitesFile = {
          ...sites,
          patterns: { ...sites.patterns, [pattern]: body.sites },
          waiting: { ...sites.waiting, [pattern]: body.waiting },
          retired: { ...sites.retired, ...body.retired },
        };
        if (JSON.stringify(next) === JSON.stringify(sites)) return;
        const here = (s: SitesFile) =>
          Object.entries(s.patterns[pattern] ?? {})
            .filter(([, site]) => site.host === this.link?.host)
            .map(([name]) => name);
        const before = new Set(here(sites));
        const after = new Set(here(next));
        await writeSites(dir, next);
        await this.reload();
        const added = [...after].filter((n) => !before.has(n));
        const retired = [...before].filter((n) => !after.has(n));
        if (added.length > 0 || retired.length > 0) {
          this.log.info({ pattern, added, retired }, 'pattern sites placed on this host changed');
          await runSitesHook(this.config, this.log, { added, retired });
        }
      })
      .catch((err: unknown) =>
        this.log.error(
          { pattern, error: err },
          'cannot take the sites of a pattern from its keeper',
        ),
      );
  }

  private pollSharing(link: ClusterLink) {
    return {
      claim: (group: string, slot: number, timeoutMs: number) =>
        link.claimPoll(group, slot, timeoutMs),
      answered: (
        group: string,
        changed: Record<string, TrackState>,
        error: string | null,
        durationMs: number,
      ) => link.shareAnswer(changed, { group, error, durationMs }),
      local: (branches: string[]) =>
        branches.some((b) => this.branch(b) || b.startsWith('pattern:')),
    };
  }

  private sharedAnswer(tracks: Record<string, TrackState>, answer: SharedAnswer): void {
    if (!this.poller) return;
    this.poller.applyShared(tracks, answer);
  }

  /** A request another host's API passed on for one of this host's sites. */
  private hostRequest(request: HostRequest): void {
    if (!this.branch(request.branch)) {
      this.log.warn(
        { branch: request.branch, request: request.kind },
        'request for a site this host does not hold; ignored',
      );
      return;
    }
    if (request.kind === 'build') {
      if (request.force) this.forceBuild(request.branch);
      else this.considerBuild(request.branch);
    } else this.runJobNow(request.job, request.branch);
  }

  private clusterLoad(): {
    running: number;
    queued: number;
    slots: number;
    status: PublishedStatus;
  } {
    const local = this.localStatus();
    return {
      running: this.queue?.runningCount() ?? 0,
      queued: this.queue?.waitingItems().length ?? 0,
      slots: this.config.concurrency,
      status: { branches: local.branches, queue: local.queue, outbox: local.outbox },
    };
  }

  /** A branch of ci.yaml held by another host of the cluster. */
  private remoteBranch(name: string): BranchConfig | undefined {
    if (!this.link || this.branch(name)) return undefined;
    return this.fullConfig.branches.find((b) => b.name === name);
  }

  ownerOf(name: string): { host: string; url: string | null; alive: boolean } | null {
    const remote = this.remoteBranch(name);
    if (!remote?.host) return null;
    const peer = this.link!.otherHosts().find((p) => p.name === remote.host);
    const alive = !!peer && hostAlive(peer.ageMs, this.fullConfig.cluster!.heartbeatMs);
    return { host: remote.host, url: peer?.httpUrl ?? null, alive };
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
        const was = this.current[branch];
        if (info && (was?.id !== info.id || was.kind !== info.kind))
          this.slowWatch.started(branch, info);
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
    // Runs that got much faster ride along with the branch's next real mail.
    const trends = events.some((e) => e !== 'started') ? this.slowWatch.takeNotes(n.branch) : [];
    return this.dispatcher.enqueue(trends.length ? { ...n, trends } : n, events, n.branch);
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
    if (item.kind === 'retire' || item.kind === 'teardown')
      return this.leavingSites.run(item.kind, item.branch);
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
          this.slowWatch.finished(branch.name, outcome.record);
        } else if (outcome.status === 'no-revision') {
          this.log.warn({ branch: branch.name, reason: outcome.reason }, 'cannot build yet');
        }
      } else if (item.kind.startsWith('job:')) {
        const job = this.config.jobs.find((j) => `job:${j.name}` === item.kind);
        if (!job) return;
        // A job runs in the site's dir: before the first checkout made it, a tick cannot run,
        // and recording (and mailing) that as a job failure would only be noise.
        if (!existsSync(branch.dir)) {
          this.log.warn(
            { branch: branch.name, job: job.name, dir: branch.dir },
            'job skipped: the site has not been checked out yet',
          );
          return;
        }
        const record = await runJob(
          { ...this.buildContext(), notifyJob: (n, events) => this.notify(n, events) },
          job,
          branch,
        );
        this.metrics.buildsTotal.inc({ branch: branch.name, result: record.result ?? 'unknown' });
        this.metrics.jobDurationSeconds.observe(
          { branch: branch.name, job: job.name },
          (record.durationMs ?? 0) / 1000,
        );
        this.slowWatch.finished(branch.name, record);
      }
    } catch (err) {
      this.log.error({ branch: item.branch, kind: item.kind, error: err }, 'build could not run');
    } finally {
      this.metrics.buildRunning.set({ branch: branch.name }, 0);
      this.changed({ type: 'build', branch: item.branch });
    }
  }

  /** A missing ref is a poll error of its branch, told to the notifiers once. */
  private refAnswered(name: string): void {
    const branch = this.branch(name);
    if (!branch) return;
    const seen = this.refs.answered(branch, this.poller.tracks);
    // A pattern's site whose branch is gone is retired in its own time, and mailed then.
    if (seen.event && !branch.pattern) {
      this.log.warn({ branch: name, event: seen.event, error: seen.message }, 'ref changed');
      void this.dispatcher
        .dispatch(
          { type: 'ref', branch: name, sources: seen.sources, message: seen.message },
          [seen.event],
          name,
        )
        .catch(() => undefined);
      // The answer was recorded before its tracks were looked at: correct it.
      this.polls.setError(name, seen.error);
      this.changed({ type: 'poll', branch: name });
    }
  }

  /**
   * Every branch of every changed answer is looked up (ref watch, build
   * decision): by name in an index made once per loaded config, not by a
   * search through the branch list.
   */
  private branch(name: string): BranchConfig | undefined {
    if (this.branchIndex?.config !== this.config)
      this.branchIndex = {
        config: this.config,
        map: new Map(this.config.branches.map((b) => [b.name, b])),
      };
    return this.branchIndex.map.get(name);
  }

  // ------------------------------------------------------------ live config

  /** Load ci.yaml again. An invalid edit changes nothing (and is reported once). */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(() => this.doReload());
    return this.reloading;
  }

  private async doReload(): Promise<void> {
    if (this.stopping) return;
    let next: Config;
    try {
      if (!existsSync(this.config.file)) {
        // An editor's rename-save passes through here too: the next event reloads.
        this.log.warn(
          { config: this.config.file },
          'ci.yaml is gone; keeping the last good config until it is back',
        );
        return;
      }
      next = await loadAndRemember(this.config.file, this.env);
    } catch (err) {
      const message = redactor.redact(errorMessage(err));
      this.log.error(
        { config: this.config.file, error: message },
        'ci.yaml edit rejected; keeping the last good config',
      );
      if (message !== this.lastConfigError) {
        this.lastConfigError = message;
        this.configRejection = redactor.redactValue(
          rejectionOf(err, this.config.file, new Date().toISOString()),
        );
        void this.dispatcher
          .dispatch({ type: 'config', file: this.config.file, message }, ['config-error'])
          .catch(() => undefined);
      }
      this.changed({ type: 'config-error' });
      return;
    }
    this.lastConfigError = null;
    this.configRejection = null;
    const before = new Set(this.config.branches.map((b) => b.name));
    const old = this.config.branches;
    this.useConfig(next);
    this.forgetSecrets();
    const after = new Set(this.config.branches.map((b) => b.name));
    for (const name of before) if (!after.has(name)) this.queue.remove(name);
    for (const name of before) if (!after.has(name)) this.retries.started(name);
    this.queue.setConcurrency(this.config.concurrency);
    await this.configureNotifiers();
    await this.poller.setBranches(this.sites.pollerBranches(this.fullConfig));
    await this.http.apply(this.config);
    await this.catchers.apply(this.config);
    this.schedule.apply(this.config.jobs);
    const added = [...after].filter((n) => !before.has(n));
    const removed = [...before].filter((n) => !after.has(n));
    this.log.info({ added, removed, branches: [...after] }, 'ci.yaml reloaded');
    const retiredHere = this.link ? (readSites(this.config.stateDir).retired ?? {}) : {};
    for (const b of old) {
      if (!removed.includes(b.name)) continue;
      // A site another host's keeper retired, placed here: retired here, where its files are.
      const retired = b.pattern && !this.config.patterns.some((p) => p.name === b.pattern!.name);
      const entry = retired ? retiredHere[b.name] : undefined;
      if (entry) void this.leavingSites.retire(b, entry.reason ?? 'gone');
      else this.leavingSites.branchLeft(b);
    }
    for (const b of this.config.branches) this.considerBuild(b.name);
    this.changed({ type: 'config' });
  }

  /** Steps and other children must not inherit ci.yaml's secrets from our environment. */
  private forgetSecrets(): void {
    if (this.options.env) return;
    const { names, procError } = forgetEnvironment(this.config.secretNames);
    if (procError)
      this.log.warn({ names, error: procError }, 'cannot blank secrets in /proc/self/environ');
    else if (names.length > 0) this.log.debug({ names }, 'secrets dropped from the environment');
  }

  private async configureNotifiers(): Promise<void> {
    // Every host's branches: mail of a host that is down may be sent from here.
    const perBranch = new Map(this.fullConfig.branches.map((b) => [b.name, b.notify] as const));
    await this.dispatcher.setNotifiers(this.config.notify, perBranch, {
      authorsDomain: this.config.authorsDomain,
      httpUrl: this.config.http?.publicUrl,
      configDir: this.config.dir,
    });
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
    const local = this.localStatus();
    if (!this.link) return local;
    const doc = redactor.redactValue(
      clusterDocument(local, this.fullConfig, this.link.otherHosts(), {
        configHash: this.hash,
        running: this.queue.runningCount(),
        queued: this.queue.waitingItems().length,
        unreachableSince: this.link.unreachableSince,
      }),
    );
    // Which database, as psql would name it: everything but the password.
    doc.cluster!.database = stripUrlPassword(this.fullConfig.cluster!.database);
    return doc;
  }

  private localStatus(): StatusDocument {
    const queued = new Set(
      this.queue
        .waitingItems()
        .filter((i) => i.kind === 'build')
        .map((i) => i.branch),
    );
    return redactor.redactValue({
      ...statusDocument(this.config, this.store, {
        tracks: this.poller.tracks,
        lastPoll: this.polls.lastPoll,
        queued,
        queue: this.queue
          .waitingItems()
          .map((i) => (i.kind === 'build' ? i.branch : `${i.kind}@${i.branch}`)),
        current: this.current,
        outbox: this.dispatcher.outboxSize(),
        waiting: this.retries.all(),
        daemon: { running: true, pid: process.pid, startedAt: this.startedAt },
      }),
      configError: this.configRejection,
    });
  }

  counts(): { queue: number; outbox: number; cluster?: boolean } {
    return {
      queue: this.queue.waitingItems().length,
      outbox: this.dispatcher.outboxSize(),
      cluster: this.link !== null,
    };
  }

  hasBranch(name: string): boolean {
    return !!this.branch(name) || !!this.remoteBranch(name);
  }

  history(branch: string): BuildSummary[] {
    return historyOf(this.store, branch);
  }

  logFile(branch: string, id: number): string | null {
    if (!this.hasBranch(branch)) return null;
    const file = this.store.logFile(branch, id);
    return existsSync(file) ? file : null;
  }

  runHistory(branch: string): RunHistory {
    return runHistoryOf(this.config, this.store, branch);
  }

  jobLogFile(branch: string, job: string, id: number): string | null {
    if (!this.hasBranch(branch) || !this.config.jobs.some((j) => j.name === job)) return null;
    const file = this.store.jobLogFile(branch, job, id);
    return existsSync(file) ? file : null;
  }

  pollNow(branch?: string): Promise<void> {
    return this.poller.pollNow(branch);
  }

  forceBuild(branch: string): void {
    const remote = this.remoteBranch(branch);
    if (remote?.host) {
      // Its host's queue keeps it while that host is down.
      void this.link!.sendTo(remote.host, { kind: 'build', branch, force: true }).catch(
        (err: unknown) =>
          this.log.error(
            { branch, host: remote.host, error: err },
            'cannot pass the forced build to its host',
          ),
      );
      return;
    }
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
    if (!this.stopping)
      this.runtime.schedule(news ? RUNTIME_WRITE_SOON_MS : RUNTIME_WRITE_ROUTINE_MS);
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
    this.schedule.stop();
    for (const t of this.quietTimers.values()) clearTimeout(t);
    this.slowWatch.stop();
    this.retries.stop();
    this.runtime.stop();
    await this.watcher?.close();
    await this.foreground?.close();
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
    await this.sites.idle();
    await Promise.race([
      this.dispatcher.flush(),
      new Promise((r) => setTimeout(r, 2000).unref?.()),
    ]);
    await this.dispatcher.close();
    await this.link?.stop();
    await this.http.close();
    await this.catchers.stop();
    await this.lock.release();
    this.log.info({}, 'stopped');
  }
}
