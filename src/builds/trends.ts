import type { BuildRecord } from '../state/store.js';
import type { SlowNotification } from '../plugin-api.js';
import { formatDuration } from '../util/duration.js';

/**
 * How long a build or job usually takes, from its own history. A run is
 * `slow` past 3x the median of the successful runs before it (at least 5 of
 * them) and at least a minute longer; "much faster" below a third and a
 * minute shorter. Both need the minute so that a 2 s build taking 7 s is not news.
 */
export const SLOW_FACTOR = 3;
export const MIN_RUNS = 5;
export const MIN_DIFFERENCE_MS = 60_000;
/** The median is taken over this many of the newest successful runs. */
const BASELINE_RUNS = 20;
const RECENT_RUNS = 10;

export interface Trend {
  medianMs: number;
  /** A run longer than this is slow. */
  slowAfterMs: number;
  /** A run shorter than this got much faster. */
  fasterBelowMs: number;
  /** The last runs before this one, newest first, whatever their result. */
  recent: SlowNotification['recent'];
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** `previous`: the runs of the same build or job before this one, newest first. */
export function trendOf(previous: BuildRecord[]): Trend | null {
  const successes = previous
    .filter((r) => r.result === 'success' && typeof r.durationMs === 'number')
    .slice(0, BASELINE_RUNS)
    .map((r) => r.durationMs!);
  if (successes.length < MIN_RUNS) return null;
  const medianMs = median(successes)!;
  return {
    medianMs,
    slowAfterMs: Math.max(medianMs * SLOW_FACTOR, medianMs + MIN_DIFFERENCE_MS),
    fasterBelowMs: Math.min(medianMs / SLOW_FACTOR, medianMs - MIN_DIFFERENCE_MS),
    recent: previous
      .filter((r) => typeof r.durationMs === 'number')
      .slice(0, RECENT_RUNS)
      .map((r) => ({ id: r.id, result: r.result, durationMs: r.durationMs! })),
  };
}

export const isSlow = (durationMs: number, trend: Trend): boolean => durationMs > trend.slowAfterMs;

export const isMuchFaster = (durationMs: number, trend: Trend): boolean =>
  durationMs < trend.fasterBelowMs;

/** The line a much faster run leaves for the branch's next mail. */
export function fasterLine(what: string, id: number, durationMs: number, trend: Trend): string {
  return `${what} #${id} took ${formatDuration(durationMs)}, much faster than its median of ${formatDuration(trend.medianMs)}`;
}
