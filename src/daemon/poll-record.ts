import type { Metrics } from '../metrics.js';

export interface LastPoll {
  at: string;
  error: string | null;
}

/** The last answer of each branch's remote, for status, metrics and the runtime file. */
export class PollRecord {
  readonly lastPoll: Record<string, LastPoll> = {};

  constructor(private readonly metrics: Metrics) {}

  /** Returns whether the answer is news: a first answer, or a new or cleared error. */
  polled(branches: string[], error: string | null, durationMs: number, vcs: string): boolean {
    this.metrics.remoteQueriesTotal.inc({ vcs });
    this.metrics.pollDurationSeconds.observe({ vcs }, durationMs / 1000);
    let news = false;
    // One shared entry: this runs for every branch of the repository on every answer.
    const entry = { at: new Date().toISOString(), error };
    for (const b of branches) {
      const before = this.lastPoll[b];
      if (!before || before.error !== error) news = true;
      this.lastPoll[b] = entry;
    }
    this.metrics.countPolls(branches, error !== null);
    return news;
  }
}
