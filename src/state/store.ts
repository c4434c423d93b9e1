import { promises as fs, readdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import type { BuildSummary } from '../api.js';
import type { BuildNotification, EventName, JobNotification } from '../plugin-api.js';
import { writeFileAtomic } from '../util/atomic.js';
import { StagepostError } from '../errors.js';
import { BranchStateSchema, PollFileSchema } from './schemas.js';

/**
 * What stagepost remembers, in two kinds of files so that the daemon and a
 * foreground `update` never overwrite each other:
 *  - `poll.json`: the remote revision of every (repository, ref), written by
 *    the daemon only when a revision changes.
 *  - `branches/<name>.json`: attempted/built revisions and build history of one
 *    branch, written only by the holder of that branch's build lock.
 * Every write is atomic (write, fsync, rename); `kill -9` leaves the old or new file.
 */

export interface TrackState {
  revision: string | null;
  /** Set when the ref/URL does not exist on the remote. */
  missing?: string;
  /** When `revision` last changed (for the quiet period). */
  changedAt: string;
  /** A pattern's track: the matching remote branches → commit of the last answer. */
  refs?: Record<string, string>;
}

/** A finished build or job as kept in the history: the status document's shape. */
export type BuildRecord = BuildSummary;

export interface RunningBuild {
  id: number;
  kind: string;
  startedAt: string;
  forced: boolean;
  revisions: Record<string, string>;
  /** Process groups of this build's children, so a restarted daemon can end them. */
  pgids: number[];
  pid: number;
}

export interface BranchState {
  /** Revisions of the last build attempted, whatever its result (source name → revision). */
  attempted: Record<string, string>;
  /** Revisions of the last successful build. */
  built: Record<string, string>;
  /** First line of the commit at each built revision. */
  subjects: Record<string, string>;
  /** Number of the next build; jobs count their runs apart (`jobs`). */
  nextId: number;
  /** Builds only, newest first. */
  builds: BuildRecord[];
  /**
   * Runs of each job, newest first, with their own numbering and retention, so
   * a frequent job never pushes the branch's builds out of its history.
   */
  jobs: Record<string, JobHistory>;
  /** The build or job running now (one at a time: they share the branch lock). */
  running: RunningBuild | null;
  /** A forced build was asked for and not yet started (survives restarts). */
  forcePending?: boolean;
  /**
   * The notification of the last build or job, recorded with it and cleared
   * once it is in the outbox: a crash in between sends it on the next start.
   */
  pendingNotification?: PendingNotification;
}

export interface JobHistory {
  nextId: number;
  runs: BuildRecord[];
}

export interface PendingNotification {
  notification: Omit<BuildNotification, 'events'> | Omit<JobNotification, 'events'>;
  events: EventName[];
}

export interface PollFile {
  version: 1;
  tracks: Record<string, TrackState>;
}

export function emptyBranchState(): BranchState {
  return {
    attempted: {},
    built: {},
    subjects: {},
    nextId: 1,
    builds: [],
    jobs: {},
    running: null,
  };
}

/**
 * State files written before jobs had their own history kept job runs among
 * the builds (`kind: job:<name>`): they move to their job, keeping their
 * numbers, so the builds they had pushed out stay the only thing trimmed.
 */
function separateJobRuns(state: BranchState): BranchState {
  if (!state.builds.some((b) => b.kind.startsWith('job:'))) return state;
  const builds: BuildRecord[] = [];
  for (const record of state.builds) {
    if (!record.kind.startsWith('job:')) {
      builds.push(record);
      continue;
    }
    const history = (state.jobs[record.kind.slice(4)] ??= { nextId: 1, runs: [] });
    history.runs.push(record);
    history.nextId = Math.max(history.nextId, record.id + 1);
  }
  return { ...state, builds };
}

/** A state file that did not parse or had the wrong shape, and where it went. */
export interface StateDamage {
  file: string;
  /** `<file>.corrupt-<time>`, where the damaged file now lies; null when left in place (moveAside: false). */
  movedTo: string | null;
  problem: string;
}

export interface StateStoreOptions {
  /** Told once per damaged file, after it was moved aside. */
  onDamage?: (damage: StateDamage) => void;
  /**
   * false for readers that must not change the state (`stagepost status`):
   * a damaged file is reported and read as fresh, but left where it is for
   * the daemon to move aside. Default true.
   */
  moveAside?: boolean;
  /** Told after a branch's state was written (a cluster mirrors it into the database). */
  written?: (branch: string, state: BranchState) => void;
}

export class StateStore {
  readonly pollFile: string;
  readonly branchesDir: string;
  readonly logsDir: string;

  constructor(
    readonly stateDir: string,
    private readonly options: StateStoreOptions = {},
  ) {
    this.pollFile = path.join(stateDir, 'poll.json');
    this.branchesDir = path.join(stateDir, 'branches');
    this.logsDir = path.join(stateDir, 'logs');
  }

  async init(): Promise<void> {
    try {
      await fs.mkdir(this.branchesDir, { recursive: true });
      await fs.mkdir(this.logsDir, { recursive: true });
      await fs.access(this.stateDir, fs.constants?.W_OK ?? 2);
    } catch (err) {
      throw new StagepostError(
        'ESTATE',
        `state_dir ${this.stateDir} is not writable: ${(err as Error).message} — fix its permissions or set state_dir in ci.yaml`,
        { cause: err },
      );
    }
  }

  readPoll(): PollFile {
    return this.readChecked<PollFile>(this.pollFile, PollFileSchema, () => ({
      version: 1,
      tracks: {},
    }));
  }

  async writePoll(data: PollFile): Promise<void> {
    await this.write(this.pollFile, data);
  }

  branchFile(branch: string): string {
    return path.join(this.branchesDir, `${branch}.json`);
  }

  readBranch(branch: string): BranchState {
    return separateJobRuns(
      this.readChecked<BranchState>(this.branchFile(branch), BranchStateSchema, () => ({
        ...emptyBranchState(),
        // Build ids go on after the logs left behind, so no new log appends to an old one.
        nextId: this.lastLogId(branch) + 1,
      })),
    );
  }

  private lastLogId(branch: string): number {
    try {
      return Math.max(
        0,
        ...readdirSync(path.join(this.logsDir, branch))
          .map((n) => /^(\d+)\.log$/.exec(n)?.[1])
          .filter((n): n is string => !!n)
          .map(Number),
      );
    } catch {
      return 0;
    }
  }

  /**
   * A missing file is a fresh start. A damaged one (bad JSON, wrong shape) is
   * moved aside to `<file>.corrupt-<time>` and the fresh start used, so no
   * input from disk can stop the daemon; one that cannot be read at all
   * (EMFILE, EACCES) throws ESTATE for the caller to retry.
   */
  private readChecked<T>(file: string, schema: z.ZodType, fresh: () => T): T {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fresh();
      throw new StagepostError(
        'ESTATE',
        `cannot read ${file}: ${(err as Error).message} — if it persists, check the file's permissions and the daemon's open-file limit (LimitNOFILE)`,
        { cause: err },
      );
    }
    let problem: string;
    try {
      const parsed = schema.safeParse(JSON.parse(text));
      if (parsed.success) return parsed.data as T;
      problem = parsed.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`)
        .join('; ');
    } catch (err) {
      problem = `not valid JSON (${(err as Error).message})`;
    }
    if (this.options.moveAside === false) {
      this.options.onDamage?.({ file, movedTo: null, problem });
      return fresh();
    }
    const movedTo = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    try {
      renameSync(file, movedTo);
    } catch (err) {
      throw new StagepostError(
        'ESTATE',
        `${file} is damaged (${problem}) and cannot be moved aside (${(err as Error).message}) — move it away by hand; that part of the state then starts afresh`,
        { cause: err },
      );
    }
    this.options.onDamage?.({ file, movedTo, problem });
    return fresh();
  }

  async writeBranch(branch: string, state: BranchState): Promise<void> {
    await this.write(this.branchFile(branch), state);
    this.options.written?.(branch, state);
  }

  logFile(branch: string, id: number): string {
    return path.join(this.logsDir, branch, `${id}.log`);
  }

  /** Job logs live apart from build logs: both are numbered from 1. */
  jobLogFile(branch: string, job: string, id: number): string {
    return path.join(this.logsDir, branch, 'jobs', job, `${id}.log`);
  }

  lockFile(branch: string): string {
    return path.join(this.stateDir, 'locks', `${branch}.lock`);
  }

  /** Remove logs of builds (or of one job's runs) no longer in the history. */
  async pruneLogs(branch: string, keepIds: number[], job?: string): Promise<void> {
    const dir = job
      ? path.dirname(this.jobLogFile(branch, job, 0))
      : path.join(this.logsDir, branch);
    const keep = new Set(keepIds.map((id) => `${id}.log`));
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      return;
    }
    await Promise.all(
      names
        .filter((n) => n.endsWith('.log') && !keep.has(n))
        .map((n) => fs.rm(path.join(dir, n), { force: true })),
    );
  }

  /**
   * Writes of one file land in the order they were asked for: the content is
   * taken now, and a write waits for the one before it. (Unordered, a slow
   * earlier write could land last and drop a process group recorded since.)
   */
  private write(file: string, data: unknown): Promise<void> {
    const text = JSON.stringify(data, null, 1) + '\n';
    const previous = this.writes.get(file) ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(() => writeFileAtomic(file, text))
      .catch((err: unknown) => {
        throw new StagepostError(
          'ESTATE',
          `cannot write ${file}: ${(err as Error).message} — check free space and permissions of state_dir`,
          { cause: err },
        );
      });
    this.writes.set(file, next);
    void next
      .catch(() => undefined)
      .then(() => {
        if (this.writes.get(file) === next) this.writes.delete(file);
      });
    return next;
  }

  private readonly writes = new Map<string, Promise<void>>();
}
