/**
 * The bounded, coalescing queue of builds and jobs.
 *  - A branch's build is waiting at most once: later requests join the entry.
 *  - A request while that branch is building marks exactly one more build.
 *  - At most `concurrency` items run at once, never two of one branch (a job
 *    of a branch waits for its build and the other way round).
 * What a build builds (the newest revisions) is decided when it starts, so
 * commits that arrive while it waits are included. The queue starts items
 * itself: the bound and the one-per-branch rule are decided together here,
 * which a generic promise queue cannot do.
 */
export interface QueueItem {
  branch: string;
  /** `build` or `job:<name>`. */
  kind: string;
  force: boolean;
}

export type ItemRunner = (item: QueueItem) => Promise<void>;

export class BuildQueue {
  private waiting: QueueItem[] = [];
  private readonly running = new Map<string, QueueItem>();
  /** Branches whose build was requested again while building. */
  private readonly again = new Map<string, boolean>();
  private paused = false;
  private readonly listeners = new Set<() => void>();

  constructor(
    private concurrency: number,
    private readonly runner: ItemRunner,
  ) {}

  setConcurrency(concurrency: number): void {
    this.concurrency = concurrency;
    this.pump();
  }

  /** Ask for a build (or job) of a branch. Returns what happened to the request. */
  request(item: QueueItem): 'queued' | 'joined' | 'again' {
    if (item.kind === 'build') {
      const waiting = this.waiting.find((w) => w.branch === item.branch && w.kind === 'build');
      if (waiting) {
        waiting.force ||= item.force;
        return 'joined';
      }
      const running = this.running.get(item.branch);
      if (running?.kind === 'build') {
        this.again.set(item.branch, (this.again.get(item.branch) ?? false) || item.force);
        return 'again';
      }
    } else if (this.waiting.some((w) => w.branch === item.branch && w.kind === item.kind)) {
      return 'joined';
    }
    this.waiting.push({ ...item });
    this.changed();
    this.pump();
    return 'queued';
  }

  /** Drop waiting items of a branch (removed from ci.yaml); a running one finishes. */
  remove(branch: string): void {
    this.waiting = this.waiting.filter((w) => w.branch !== branch);
    this.again.delete(branch);
    this.changed();
  }

  /** Stop starting new items (shutdown). */
  pause(): void {
    this.paused = true;
  }

  waitingItems(): QueueItem[] {
    return [...this.waiting];
  }

  runningCount(): number {
    return this.running.size;
  }

  /** Resolves when nothing is running (waiting items are not waited for when paused). */
  async idle(): Promise<void> {
    while (this.running.size > 0 || (!this.paused && this.waiting.length > 0)) {
      await new Promise<void>((resolve) => {
        const off = this.onChange(() => {
          off();
          resolve();
        });
      });
    }
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const l of [...this.listeners]) l();
  }

  private pump(): void {
    if (this.paused) return;
    for (let i = 0; i < this.waiting.length && this.running.size < this.concurrency;) {
      const item = this.waiting[i];
      if (this.running.has(item.branch)) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.running.set(item.branch, item);
      void (async () => {
        try {
          await this.runner(item);
        } finally {
          this.running.delete(item.branch);
          const again = this.again.get(item.branch);
          if (item.kind === 'build' && again !== undefined) {
            this.again.delete(item.branch);
            this.waiting.push({ branch: item.branch, kind: 'build', force: again });
          }
          this.changed();
          this.pump();
        }
      })();
      this.changed();
    }
  }
}
