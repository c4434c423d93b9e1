/**
 * The public plugin interface. Built-in plugins in `plugins/` import only this
 * file (and the helpers it re-exports), exactly as a third-party plugin would.
 *
 * A plugin module's default export is a `VcsPlugin`, a `NotifierPlugin`, or a
 * factory `(ctx: PluginContext) => VcsPlugin | NotifierPlugin` (sync or async).
 */
import type { Logger } from './log.js';
import type { RunOptions, RunResult } from './util/exec.js';

export type { Logger } from './log.js';
export type { RunOptions, RunResult } from './util/exec.js';
export { run, describeFailure } from './util/exec.js';
/** Like `run`, for the frequent remote query of `remoteRevisions`: in the daemon it goes through a small fork server, which costs the daemon far less CPU than spawning from its own ~70 MB process. */
export { runQuery } from './util/spawner.js';
export { StagepostError } from './errors.js';
export { notificationTitle, headlineEvent, oneLine } from './notify/summary.js';
export { parseDuration, formatDuration } from './util/duration.js';
export { sharedSshWords } from './util/ssh.js';
export { unknownOptionProblems, type OptionProblem } from './notify/options.js';

export interface PluginContext {
  log: Logger;
  /** Directory for the plugin's own files (ssh control sockets, caches). */
  stateDir: string;
  /** Mask secrets in any text before it leaves the process. */
  redact(text: string): string;
}

// ---------------------------------------------------------------- VCS

/** What a VCS plugin is told about one source. */
export interface SourceSpec {
  /** Source name from ci.yaml (`karl`). */
  name: string;
  /** Remote URL as configured (may carry a password; never log it raw). */
  url: string;
  /** git: branch, tag or full ref name. svn: unused (the URL is the branch). */
  ref?: string;
  /** Extra keys of the source entry, for third-party plugins. */
  options?: Record<string, unknown>;
}

export interface Commit {
  id: string;
  author: string;
  /** git author address; svn leaves it empty (the core maps users to addresses). */
  email?: string;
  date?: string;
  /** First line of the message. */
  subject: string;
}

export type RemoteRevision = { revision: string } | { missing: true; reason: string };

export interface QueryOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface CheckoutOptions extends QueryOptions {
  /** Absolute path of the checkout (the branch dir joined with the source path). */
  dir: string;
  onOutput?: (chunk: string) => void;
  onSpawn?: (pgid: number) => void;
}

export interface VcsPlugin {
  kind: 'vcs';
  name: string;
  /** Short display form of a revision (`3f2a9c1`, `r4812`). */
  shortRevision(revision: string): string;
  /**
   * Sources with the same key are answered by ONE remote query per poll cycle
   * (git: the repository URL; svn: the repository root).
   */
  repositoryKey(source: SourceSpec): string;
  /**
   * Ask the remote once for the revisions of all these sources (all with the
   * same repositoryKey). Answers in the same order. Throws (code EREMOTE) when
   * the remote itself could not be asked.
   */
  remoteRevisions(sources: SourceSpec[], options: QueryOptions): Promise<RemoteRevision[]>;
  /** Bring the checkout at options.dir to exactly `revision` (clone/checkout when missing). */
  checkout(source: SourceSpec, revision: string, options: CheckoutOptions): Promise<void>;
  /**
   * Commits after `from` up to and including `to`, newest first, bounded by `limit`.
   * `from` null (first build) or unreachable (force-push): a sensible short list.
   */
  commitsBetween(
    source: SourceSpec,
    from: string | null,
    to: string,
    options: CheckoutOptions & { limit: number },
  ): Promise<Commit[]>;
}

// ---------------------------------------------------------------- notifiers

export type EventName =
  | 'started'
  | 'success'
  | 'failure'
  | 'fixed'
  | 'still-failing'
  | 'job-failure'
  | 'config-error'
  | 'ref-missing'
  | 'ref-back';

export const EVENT_NAMES: readonly EventName[] = [
  'started',
  'success',
  'failure',
  'fixed',
  'still-failing',
  'job-failure',
  'config-error',
  'ref-missing',
  'ref-back',
];

export type BuildResult = 'success' | 'failure' | 'timeout' | 'interrupted';

export interface StepReport {
  name: string;
  result: BuildResult | 'skipped';
  durationMs: number;
  exitCode?: number | null;
  /** Why it failed, one line (`exit code 2`, `timed out after 45m`). */
  reason?: string;
}

export interface RevisionReport {
  source: string;
  vcs: string;
  revision: string;
  short: string;
  previous: string | null;
  /** Short display form of `previous`. */
  previousShort?: string | null;
}

export interface CommitReport extends Commit {
  source: string;
}

export interface BuildNotification {
  type: 'build';
  /** The events of this build that the receiving notifier's `on` picked. */
  events: EventName[];
  branch: string;
  build: {
    id: number;
    /** Absent for `started`. */
    result?: BuildResult;
    startedAt: string;
    durationMs?: number;
    failedStep?: string;
    steps: StepReport[];
    /** Last lines of the build log (failures only), already redacted. */
    logTail: string[];
    logUrl?: string;
    forced: boolean;
  };
  revisions: RevisionReport[];
  /** Commits since the last build, newest first; `email` filled in by the core. */
  commits: CommitReport[];
  customerUrls: string[];
}

export interface JobNotification {
  type: 'job';
  events: EventName[];
  job: string;
  branch: string;
  result: BuildResult;
  startedAt: string;
  durationMs: number;
  logTail: string[];
  logUrl?: string;
}

export interface ConfigErrorNotification {
  type: 'config';
  events: EventName[];
  file: string;
  message: string;
}

/** A source's ref (or svn URL) went missing on its remote (`ref-missing`), or is back (`ref-back`). */
export interface RefNotification {
  type: 'ref';
  events: EventName[];
  branch: string;
  /** The sources concerned. */
  sources: string[];
  /** What is missing (or what was, for `ref-back`). */
  message: string;
}

export type Notification =
  BuildNotification | JobNotification | ConfigErrorNotification | RefNotification;

export interface Notifier {
  /**
   * Turn a notification into a JSON-serializable message, or null for nothing
   * to send. The core stores it in the outbox before `deliver`, so it must hold
   * no secrets (take those from options at deliver time).
   */
  prepare(notification: Notification): Promise<unknown | null> | unknown | null;
  /** Send a prepared message. Throw to have the outbox retry it later. */
  deliver(message: unknown): Promise<void>;
  close?(): Promise<void> | void;
}

/** One option of a notifier's `notify:` entry, for its docs (docs/config.md). */
export interface OptionDoc {
  key: string;
  type: string;
  required?: boolean;
  /** As written in ci.yaml. */
  default?: string;
  description: string;
}

export interface NotifierPlugin {
  kind: 'notifier';
  name: string;
  /**
   * Its options, documented. A built-in plugin's validate accepts exactly
   * these keys, so docs/config.md describes what the loader takes.
   */
  options?: readonly OptionDoc[];
  /**
   * Validate the notifier's own options (everything in its `notify:` entry but
   * `use` and `on`). Return problems as `{ path, message }`; the core adds the
   * file and line.
   */
  validate?(
    options: Record<string, unknown>,
  ): Array<{ path: Array<string | number>; message: string }>;
  create(options: Record<string, unknown>, ctx: NotifierContext): Notifier | Promise<Notifier>;
}

export interface NotifierContext extends PluginContext {
  /** Fallback for svn users not in `authors`. */
  authorsDomain?: string;
  /** Where the dashboard lives, when `http` is set. */
  httpUrl?: string;
  /** Directory of ci.yaml: the base of relative paths in a notifier's options (`dir:./mail`). */
  configDir?: string;
}

export type Plugin = VcsPlugin | NotifierPlugin;
export type PluginFactory = (ctx: PluginContext) => Plugin | Promise<Plugin>;
