/**
 * The shape of `status --json` and `GET /api/status` (SPEC), plus the
 * interface the HTTP server uses to talk to a running daemon.
 */
import type { BuildResult, StepReport } from './plugin-api.js';
import type { ConfigRejection } from './config/last-good.js';

export type BranchState = 'idle' | 'queued' | 'building' | 'failing';

export interface SourceStatus {
  name: string;
  vcs: string;
  /** Built revision, null before the first successful build. */
  revision: string | null;
  /** Newest revision seen on the remote. */
  remoteRevision: string | null;
  /** URL with any password masked. */
  url: string;
  ref?: string;
  /** First line of the commit at `revision`, when known. */
  subject?: string;
  /** Set when the ref (or svn URL) no longer exists on the remote; the site is kept. */
  missing?: string;
}

export interface BuildSummary {
  id: number;
  /** `build` or `job:<name>`. */
  kind: string;
  result: BuildResult | null;
  startedAt: string;
  durationMs: number | null;
  forced: boolean;
  failedStep?: string;
  steps: StepReport[];
  revisions: Record<string, string>;
}

/** A branch's history: builds, and each job's runs apart (own numbering). */
export interface RunHistory {
  builds: BuildSummary[];
  jobs: Record<string, BuildSummary[]>;
}

export interface CurrentBuild {
  id: number;
  kind: string;
  step: string | null;
  startedAt: string;
  elapsedMs: number;
}

export interface BranchStatus {
  name: string;
  state: BranchState;
  sources: SourceStatus[];
  lastBuild: {
    id: number;
    result: BuildResult | null;
    startedAt: string;
    durationMs: number | null;
  } | null;
  lastPoll: { at: string; error: string | null } | null;
  current: CurrentBuild | null;
  customers: Array<{ name: string; url: string | null; mailin: boolean }>;
  port: number | null;
  /** The port of the branch's mail catcher; null: it has none (no `smtp_port`). */
  smtpPort?: number | null;
  dir: string;
  /** A site made by a pattern: the pattern and the remote branch it follows. */
  pattern?: { name: string; ref: string };
  /** `stagepost pin`: never retired or bumped. */
  pinned?: boolean;
  /** With a cluster: the host that holds the site. */
  host?: string;
  /** Set while a build could not start (state_dir full, lock failing) and waits for its next try. */
  waiting?: { reason: string; since: string; retryAt: string; attempts: number } | null;
}

export interface StatusDocument {
  branches: BranchStatus[];
  /** Branch names (and `job:<name>@branch`) waiting, in order. */
  queue: string[];
  outbox: number;
  daemon: { running: boolean; pid: number | null; startedAt: string | null };
  /** A rejected edit of ci.yaml: what is shown runs on the last good config. */
  configError?: ConfigRejection | null;
  /** With a cluster: this host, the database, and every host as its last heartbeat left it. */
  cluster?: ClusterStatus;
  /** Matching branches without a site, all `slots` of their pattern being taken (configs with patterns). */
  waiting?: Array<{ pattern: string; ref: string; since: string }>;
}

export interface HostStatus {
  name: string;
  /** A heartbeat came within 3 heartbeat intervals. */
  alive: boolean;
  heartbeatAt: string | null;
  startedAt: string | null;
  /** Builds and jobs running, and waiting, on the host. */
  running: number;
  queued: number;
  /** builds.concurrency of the host. */
  slots: number;
  /** Its ci.yaml differs from this host's (hash compared through the database). */
  configDiffers: boolean;
  httpUrl: string | null;
}

export interface ClusterStatus {
  host: string;
  /** The database URL, password masked. */
  database: string;
  /** Set while this host cannot reach the database: it goes on alone meanwhile. */
  unreachableSince: string | null;
  hosts: HostStatus[];
}

export interface CaughtMailSummary {
  id: string;
  receivedAt: string;
  from: string;
  to: string[];
  subject: string;
  size: number;
  relayed: boolean | null;
}

/** What the HTTP server needs from the daemon. */
export interface DaemonApi {
  status(): StatusDocument;
  /**
   * The two numbers /metrics mirrors, without building the whole status
   * document; `cluster`: this daemon is a host of a cluster, and /metrics
   * reads the status document for the hosts and every host's sites.
   */
  counts(): { queue: number; outbox: number; cluster?: boolean };
  hasBranch(name: string): boolean;
  /** Build history of a branch, newest first. */
  history(branch: string): BuildSummary[];
  /** Builds and, apart, each job's runs of a branch, newest first (`GET /api/branches/:b/history`). */
  runHistory(branch: string): RunHistory;
  /** Absolute path of a build's log file, or null when there is none. */
  logFile(branch: string, id: number): string | null;
  /** Absolute path of a job run's log file, or null when there is none. */
  jobLogFile(branch: string, job: string, id: number): string | null;
  /** Commit hook: poll now (one branch or all). Resolves when the poll is done. */
  pollNow(branch?: string): Promise<void>;
  /** Queue a forced build. */
  forceBuild(branch: string): void;
  /** Mail caught for a branch (newest first). */
  caughtMail(branch: string): Promise<CaughtMailSummary[]>;
  /**
   * With a cluster: where a branch of another host is served (its HTTP base
   * URL, null when unknown), or null for a branch of this host.
   */
  ownerOf?(branch: string): { host: string; url: string | null; alive: boolean } | null;
  /** Subscribe to changes (state, build started/finished, step); returns unsubscribe. */
  onChange(listener: (event: { type: string; branch?: string }) => void): () => void;
}
