import type { Metrics } from '../metrics.js';

export interface LastPoll {
  at: string;
  error: string | null;
}

/** The last answer of each branch's remote, for status, metrics and the runtime file. */
export class PollRecord {
  readonly lastPoll: Record<string, LastPoll> = {};

  constructor(private readonly metrics: Metrics) {}

  /**
   * Returns whether the answer is news: a first answer, or a new or cleared
   * error. `ownEntry` may give a branch an error of its own in an answer that
   * succeeded (its ref is gone from the remote).
   */
  polled(
    branches: string[],
    error: string | null,
    durationMs: number,
    vcs: string,
    ownEntry?: (branch: string, at: string) => LastPoll | null,
  ): boolean {
    this.metrics.remoteQueriesTotal.inc({ vcs });
    this.metrics.pollDurationSeconds.observe({ vcs }, durationMs / 1000);
    let news = false;
    // One shared entry: this runs for every branch of the repository on every answer.
    const at = new Date().toISOString();
    const entry = { at, error };
    for (const b of branches) {
      const own = (error === null && ownEntry?.(b, at)) || entry;
      const before = this.lastPoll[b];
      if (!before || before.error !== own.error) news = true;
      this.lastPoll[b] = own;
    }
    this.metrics.countPolls(branches, error !== null);
    return news;
  }

  /** A branch's own error found after its answer was recorded (its ref went or came back). */
  setError(branch: string, error: string | null): void {
    const last = this.lastPoll[branch];
    if (last && last.error !== error) this.lastPoll[branch] = { at: last.at, error };
  }
}
