import type { BuildRecord } from '../state/store.js';
import type { SlowNotification } from '../plugin-api.js';
import { jobOfKind } from '../state/history.js';
import { fasterLine, isMuchFaster, isSlow, trendOf, type Trend } from './trends.js';

/**
 * Watches the daemon's runs for the `slow` event. A run is checked when its
 * slow threshold passes while it still runs (a 14-hour sync is news long
 * before it ends) and again when it ends, and reported once either way. A
 * much faster run leaves a line for the branch's next mail instead.
 */
export interface SlowWatchOptions {
  /** The runs of this kind (`build`, `job:<name>`) of a branch, newest first. */
  history(branch: string, kind: string): BuildRecord[];
  send(notification: Omit<SlowNotification, 'events'>): void;
  logUrl?(branch: string, kind: string, id: number): string | undefined;
  now?: () => number;
}

interface Watched {
  id: number;
  kind: string;
  startedAt: string;
  trend: Trend | null;
  reported: boolean;
  timer?: NodeJS.Timeout;
}

export class SlowWatch {
  private readonly now: () => number;
  private readonly runs = new Map<string, Watched>();
  private readonly notes = new Map<string, string[]>();

  constructor(private readonly options: SlowWatchOptions) {
    this.now = options.now ?? Date.now;
  }

  /** A run began: its baseline is the history before it. */
  started(branch: string, run: { id: number; kind: string; startedAt: string }): void {
    this.clear(branch);
    const trend = trendOf(this.options.history(branch, run.kind).filter((r) => r.id !== run.id));
    const watched: Watched = { ...run, trend, reported: false };
    this.runs.set(branch, watched);
    if (!trend) return;
    const due = Date.parse(run.startedAt) + trend.slowAfterMs + 1 - this.now();
    watched.timer = setTimeout(() => this.check(branch, watched), Math.max(0, due));
    watched.timer.unref?.();
  }

  /** A run ended (recorded in the history already). */
  finished(branch: string, record: BuildRecord): void {
    const watched = this.runs.get(branch);
    const same = watched?.id === record.id && watched.kind === record.kind;
    this.clear(branch);
    const trend = same
      ? watched.trend
      : trendOf(this.options.history(branch, record.kind).filter((r) => r.id !== record.id));
    if (!trend || record.durationMs === null || record.result === 'interrupted') return;
    if (!(same && watched.reported) && isSlow(record.durationMs, trend))
      this.report(branch, record, record.durationMs, false, trend);
    else if (isMuchFaster(record.durationMs, trend)) {
      const job = jobOfKind(record.kind);
      const line = fasterLine(
        job ? `${branch}: job ${job}` : `${branch}: build`,
        record.id,
        record.durationMs,
        trend,
      );
      this.notes.set(branch, [...(this.notes.get(branch) ?? []), line]);
    }
  }

  /** The much-faster lines waiting for the branch's next mail; taking them clears them. */
  takeNotes(branch: string): string[] {
    const notes = this.notes.get(branch) ?? [];
    this.notes.delete(branch);
    return notes;
  }

  stop(): void {
    for (const branch of [...this.runs.keys()]) this.clear(branch);
  }

  private check(branch: string, watched: Watched): void {
    if (this.runs.get(branch) !== watched || watched.reported || !watched.trend) return;
    const elapsed = this.now() - Date.parse(watched.startedAt);
    if (isSlow(elapsed, watched.trend)) {
      watched.reported = true;
      this.report(branch, watched, elapsed, true, watched.trend);
    }
  }

  private report(
    branch: string,
    run: { id: number; kind: string; startedAt: string },
    durationMs: number,
    running: boolean,
    trend: Trend,
  ): void {
    const job = jobOfKind(run.kind) ?? undefined;
    this.options.send({
      type: 'slow',
      branch,
      ...(job ? { job } : {}),
      id: run.id,
      startedAt: run.startedAt,
      durationMs,
      running,
      medianMs: trend.medianMs,
      recent: trend.recent,
      logUrl: this.options.logUrl?.(branch, run.kind, run.id),
    });
  }

  private clear(branch: string): void {
    const watched = this.runs.get(branch);
    if (watched?.timer) clearTimeout(watched.timer);
    this.runs.delete(branch);
  }
}
