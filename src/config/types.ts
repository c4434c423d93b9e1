/**
 * The resolved configuration: what `loadConfig` returns after parsing,
 * `${VAR}` substitution, defaults, per-branch overrides and validation.
 * All durations are milliseconds, all paths absolute.
 */
import type { EventName } from '../plugin-api.js';

export interface StepConfig {
  name: string;
  run: string;
  timeoutMs: number;
}

export interface PollSettings {
  intervalMs: number;
  timeoutMs: number;
  quietMs: number;
}

export interface HealthSettings {
  /** Template with {branch} {customer} {port}. */
  url: string;
  /** Accepted status ranges, inclusive (`200-399`, `200`, `[200, 302]`). */
  expect: Array<{ min: number; max: number }>;
  timeoutMs: number;
}

export interface NotifierConfig {
  /** `email`, `webhook`, `log`, a path (resolved absolute) or a package name. */
  use: string;
  on: EventName[];
  /** Every other key of the entry, after `${VAR}` substitution. */
  options: Record<string, unknown>;
  /** Where it was written, for plugin errors. */
  file: string;
  line: number;
  /** Stable identity across reloads (use + options), for the outbox. */
  key: string;
}

export interface SourceConfig {
  name: string;
  /** `git`, `svn`, or a plugin path/package. */
  vcs: string;
  url: string;
  ref?: string;
  /** Relative to the branch dir, as written. */
  path: string;
  /** Keys of the entry other than name/vcs/url/ref/path (for plugin VCSs). */
  options: Record<string, unknown>;
  line: number;
  /** Only in a pattern's template: the glob over the remote's branches (the ref of each site). */
  match?: string;
}

export interface BranchConfig {
  name: string;
  /** With a cluster: the host that holds the site. */
  host?: string;
  /** A site made by a pattern: the pattern's name and the remote branch it follows. */
  pattern?: { name: string; ref: string };
  dir: string;
  port?: number;
  sources: SourceConfig[];
  customers: string[];
  mailin: string[];
  smtpPort?: number;
  mailout: boolean;
  poll: PollSettings;
  stepTimeoutMs: number;
  keep: number;
  /** What steps and jobs get beyond PATH, HOME, LANG, LC_*, TZ and STAGEPOST_* (ci.yaml `env`). */
  env?: Record<string, string>;
  steps: StepConfig[];
  create: StepConfig[];
  /** Run when the branch leaves ci.yaml, or by `stagepost teardown` (absent: none). */
  teardown?: StepConfig[];
  health?: HealthSettings;
  /** Global notifiers followed by the branch's own. */
  notify: NotifierConfig[];
  line: number;
}

/** A branch entry with `match:`: one site per matching remote branch. */
export interface PatternConfig {
  name: string;
  /** The matched source, the glob over its remote branches, and when a gone branch retires its site. */
  match: { source: string; refs: string; retireAfter: number };
  /** `port: A-B`, inclusive. */
  ports?: { first: number; last: number };
  /** At most this many sites at once (pinned ones included); the newest branches get them. */
  slots?: number;
  /** Retire a site after this long without a new commit. */
  idleMs?: number;
  /** `keep_dir: true`: a retired site's directory stays. */
  keepDir: boolean;
  /** With a cluster: the hosts its sites go to (the first decides them). */
  hosts?: string[];
  /** The entry resolved like a branch, with `{branch}` still in its values and no port. */
  template: BranchConfig;
  line: number;
}

export interface JobConfig {
  name: string;
  /** 5 fields, or 6 with seconds first. */
  schedule: string;
  timezone?: string;
  /** Resolved: `all` expanded to every branch name. */
  branches: string[];
  run: string;
  timeoutMs: number;
  notifyOn: EventName[];
  line: number;
}

export interface HttpConfig {
  host: string;
  port: number;
  token?: string;
  /** Public base URL for links in mail; default http://host:port. */
  publicUrl: string;
  /** Build logs readable without the token (default true). */
  publicLogs: boolean;
  /** Whether public_url was written (its host is then an accepted Host header). */
  publicUrlSet: boolean;
}

export interface ClusterConfig {
  /** PostgreSQL URL (a secret: masked wherever shown). */
  database: string;
  /** This daemon's name. */
  host: string;
  heartbeatMs: number;
}

export interface SiteConfig {
  baseUrl?: string;
  certificate?: string;
  certificateKey?: string;
  smtpRelay?: string;
  mailDomain?: string;
}

export interface Config {
  /** Absolute path of ci.yaml. */
  file: string;
  /** Its directory. */
  dir: string;
  version: 1;
  stateDir: string;
  site: SiteConfig;
  poll: PollSettings;
  concurrency: number;
  /** builds.shutdown_grace: how long running builds may finish on SIGTERM. */
  shutdownGraceMs: number;
  /** builds.checkout_timeout: a checkout longer than this is ended. */
  checkoutTimeoutMs: number;
  /** builds.checkout_stall: a checkout without progress for this long is ended. */
  checkoutStallMs: number;
  /** builds.log_max in bytes: a longer build log is cut, its head and tail kept. */
  logMaxBytes: number;
  steps: StepConfig[];
  create: StepConfig[];
  teardown?: StepConfig[];
  health?: HealthSettings;
  notify: NotifierConfig[];
  authors: Record<string, string>;
  authorsDomain?: string;
  http?: HttpConfig;
  /** Several hosts sharing a database; absent on a single host. */
  cluster?: ClusterConfig;
  /** `on_sites_changed`: shell command run when a pattern's sites come or go. */
  onSitesChanged?: string;
  /** The fixed branches of ci.yaml, then the sites of the patterns (state_dir/sites.json). */
  branches: BranchConfig[];
  patterns: PatternConfig[];
  jobs: JobConfig[];
  /** Names of the environment variables `${VAR}` read: the daemon drops them from its environment. */
  secretNames: string[];
}
