/**
 * The public plugin interface (`stagepost/plugin-api`): types and pure helpers
 * only. Built-in plugins in `plugins/` import only this entry, exactly as a
 * third-party plugin would; what a plugin needs from the running core (a
 * logger, its folder, the redactor, the command runner) comes in its context.
 *
 * A plugin module's default export is a `VcsPlugin`, a `NotifierPlugin`, or a
 * factory `(ctx: PluginContext) => VcsPlugin | NotifierPlugin` (sync or async).
 */
import type { Logger } from './log.js';
import type { RunOptions, RunResult } from './util/exec.js';

export type { Logger } from './log.js';
export type { RunOptions, RunResult } from './util/exec.js';
export { describeFailure } from './util/exec.js';
export { StagepostError } from './errors.js';
export { notificationTitle, headlineEvent, oneLine } from './notify/summary.js';
export { parseDuration, formatDuration } from './util/duration.js';
export { unknownOptionProblems, type OptionProblem } from './notify/options.js';

export interface PluginContext {
  log: Logger;
  /** Directory for the plugin's own files (ssh control sockets, caches). */
  stateDir: string;
  /** Mask secrets in any text before it leaves the process. */
  redact(text: string): string;
  /**
   * Start a command as the core starts its own: an argv (no shell), its own
   * process group ended as a whole on timeout or abort, failures as data.
   */
  run: CommandRunner;
  /**
   * The ssh command line for the plugin's ssh remotes, as words: `base` is
   * batch mode (a prompt would hang a poll until its timeout); `sharing` adds
   * one connection per host shared by every poll and checkout (ControlMaster,
   * sockets under `stateDir`), and is empty when the folder cannot hold them.
   * Quote the words as your VCS reads them; leave `sharing` out if you cannot.
   * Call it only when you use ssh: it makes the socket folder.
   */
  sshWords(): SshWords;
}

export interface SshWords {
  base: string[];
  sharing: string[];
}

export type CommandRunner = (
  file: string,
  args: readonly string[],
  options?: RunOptions,
) => Promise<RunResult>;

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
  /**
   * A pattern's glob over the remote's branch names (`feature/*`) instead of
   * a ref: the answer lists every matching branch in `refs`. Plugins that
   * cannot list branches answer `missing`.
   */
  match?: string;
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

export type RemoteRevision =
  | {
      revision: string;
      /** For a `match` source: matching branch name → commit; `revision` then digests them. */
      refs?: Record<string, string>;
    }
  | { missing: true; reason: string };

export interface QueryOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface CheckoutOptions extends QueryOptions {
  /** Absolute path of the checkout (the branch dir joined with the source path). */
  dir: string;
  onOutput?: (chunk: string) => void;
  onSpawn?: (pgid: number) => void;
  /**
   * The core ends a checkout that shows no output for this long; a plugin
   * should make its transfer report progress (git: `--progress`) and may pass
   * the bound to its transport (git: http.lowSpeedTime).
   */
  stallMs?: number;
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
   *
   * Same array in: while a repository's sources do not change, the core passes
   * the very same `sources` array every poll, so a plugin may key what it works
   * out once (checks, query arguments) on it, e.g. in a WeakMap. Same frozen
   * answer out: a plugin may return, at an index, the same `Object.isFrozen`
   * object it returned there last time; the core takes that to mean "unchanged"
   * without comparing. Both are optional: a new array of new objects is always
   * correct, only slower at many branches.
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
  | 'slow'
  | 'ref-missing'
  | 'ref-back'
  | 'retired'
  | 'retire-held';

export const EVENT_NAMES: readonly EventName[] = [
  'started',
  'success',
  'failure',
  'fixed',
  'still-failing',
  'job-failure',
  'config-error',
  'slow',
  'ref-missing',
  'ref-back',
  'retired',
  'retire-held',
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
  /**
   * Commits since the last build, newest first. The core fills in `email`
   * only for commits since the site's last finished build: a first build's
   * commits carry none, so no committer outside `to` is mailed for them.
   */
  commits: CommitReport[];
  customerUrls: string[];
  /** Runs of the branch that got much faster since the last mail, one line each. */
  trends?: string[];
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
  /** Runs of the branch that got much faster since the last mail, one line each. */
  trends?: string[];
}

/**
 * A build or job run taking more than 3x its median (and a minute longer):
 * sent once per run, while it still runs or when it ends.
 */
export interface SlowNotification {
  type: 'slow';
  events: EventName[];
  branch: string;
  /** The job's name; absent for a build. */
  job?: string;
  id: number;
  startedAt: string;
  /** The run's duration so far (`running`) or in all. */
  durationMs: number;
  running: boolean;
  /** Median of the successful runs before it. */
  medianMs: number;
  /** The last (up to 10) runs before it, newest first. */
  recent: Array<{ id: number; result: BuildResult | null; durationMs: number }>;
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

/**
 * A pattern's site was retired (`retired`: its branch gone, idle, or bumped
 * from a slot), or one answer would have retired more than half of a
 * pattern's sites and none was (`retire-held`).
 */
export interface SiteNotification {
  type: 'site';
  events: EventName[];
  /** The site retired; for `retire-held`, the pattern. */
  branch: string;
  pattern: string;
  /** What happened and what to do, one line or a few. */
  message: string;
  /** The retired site's customer URLs. */
  urls: string[];
  /** The last commits of the site's branch: with `committers`, their authors are mailed. */
  commits: CommitReport[];
}

export type Notification =
  | BuildNotification
  | JobNotification
  | ConfigErrorNotification
  | SlowNotification
  | RefNotification
  | SiteNotification;

export interface Notifier {
  /**
   * Turn a notification into a JSON-serializable message, or null for nothing
   * to send, directly or through a promise. The core stores it in the outbox
   * before `deliver`, so it must hold no secrets (take those from options at
   * deliver time).
   */
  prepare(notification: Notification): unknown;
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
