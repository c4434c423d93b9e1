import path from 'node:path';
import type { Logger } from '../log.js';
import type { StateDamage, StateStore, TrackState } from '../state/store.js';

/**
 * What the daemon does about a damaged state file (the store has moved it
 * aside already): log it, mail the operators once per file, and build a
 * branch whose record went with its file. Damage found while the daemon
 * starts is mailed once the notifiers are up.
 */
export class StateFaults {
  private beforeStart: StateDamage[] | null = [];

  constructor(
    private readonly log: Logger,
    private readonly branchesDir: () => string,
    private readonly mail: (file: string, message: string) => void,
    private readonly rebuild: (branch: string) => void,
  ) {}

  damaged(d: StateDamage): void {
    this.log.error(
      { file: d.file, movedTo: d.movedTo, problem: d.problem },
      'state file damaged; moved aside and started afresh',
    );
    if (this.beforeStart) this.beforeStart.push(d);
    else this.tell(d);
    // Its attempted revisions went with the file: build the branch again.
    const branch = this.branchOf(d);
    if (branch) setImmediate(() => this.rebuild(branch));
  }

  /** The notifiers are up: mail what was found before. */
  started(): void {
    for (const d of this.beforeStart ?? []) this.tell(d);
    this.beforeStart = null;
  }

  private branchOf(d: StateDamage): string | null {
    return path.dirname(d.file) === this.branchesDir() ? path.basename(d.file, '.json') : null;
  }

  private tell(d: StateDamage): void {
    const what = this.branchOf(d)
      ? 'the branch is built again and its history starts afresh'
      : 'every remote is polled again';
    this.mail(
      d.file,
      `state file ${d.file} was damaged (${d.problem}); it was moved to ${d.movedTo ?? '(not moved)'} and ${what}. Nothing to do unless you want to look at the moved file; delete it when done.`,
    );
  }
}

/** poll.json unreadable (not damaged: that is moved aside) costs one round of polls, not the daemon. */
export function readTracksOrNone(store: StateStore, log: Logger): Record<string, TrackState> {
  try {
    return store.readPoll().tracks;
  } catch (err) {
    log.error({ error: err }, 'cannot read poll state; polling every remote afresh');
    return {};
  }
}
