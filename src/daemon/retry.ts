/**
 * Branches whose build could not start (a lock or state write failed: a full
 * state_dir, too many open files, a damaged file that could not be moved) and
 * when they are tried again. The delay doubles up to a cap, so a fault that
 * lasts an hour costs a try a minute, and the branch builds soon after it ends
 * instead of waiting for the next commit.
 */
export interface Waiting {
  /** Why the build waits, with what to do about it. */
  reason: string;
  since: string;
  /** When the next try is due. */
  retryAt: string;
  attempts: number;
}

export class RetryBook {
  private readonly entries = new Map<string, { waiting: Waiting; timer: NodeJS.Timeout }>();

  constructor(
    private readonly retry: (branch: string) => void,
    private readonly firstDelayMs = 1000,
    private readonly maxDelayMs = 60_000,
  ) {}

  /** Note a failed start and schedule the next try; returns the delay. */
  failed(branch: string, reason: string): number {
    const before = this.entries.get(branch);
    if (before) clearTimeout(before.timer);
    const attempts = (before?.waiting.attempts ?? 0) + 1;
    const delay = Math.min(this.maxDelayMs, this.firstDelayMs * 2 ** (attempts - 1));
    const timer = setTimeout(() => this.retry(branch), delay);
    timer.unref?.();
    this.entries.set(branch, {
      waiting: {
        reason,
        since: before?.waiting.since ?? new Date().toISOString(),
        retryAt: new Date(Date.now() + delay).toISOString(),
        attempts,
      },
      timer,
    });
    return delay;
  }

  /** The build started: forget the branch. */
  started(branch: string): void {
    const entry = this.entries.get(branch);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.entries.delete(branch);
  }

  all(): Record<string, Waiting> {
    return Object.fromEntries([...this.entries].map(([b, e]) => [b, e.waiting]));
  }

  stop(): void {
    for (const e of this.entries.values()) clearTimeout(e.timer);
    this.entries.clear();
  }
}
