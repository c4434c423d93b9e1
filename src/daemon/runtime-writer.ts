import { writeRuntimeFile, type RuntimeFile } from './runtime-file.js';

/** How soon `stagepost status` sees news, and routine poll timestamps. */
export const RUNTIME_WRITE_SOON_MS = 500;
export const RUNTIME_WRITE_ROUTINE_MS = 30_000;

/**
 * Writes runtime.json within a delay. Routine polls only refresh timestamps,
 * so they wait long enough that an idle daemon does no file work per cycle;
 * news (queue, builds, a poll error) pulls a pending write forward.
 */
export class RuntimeWriter {
  private timer: NodeJS.Timeout | null = null;
  private due = 0;
  private stopped = false;

  constructor(
    private readonly stateDir: () => string,
    private readonly snapshot: () => RuntimeFile,
  ) {}

  schedule(delayMs: number): void {
    if (this.stopped) return;
    const due = Date.now() + delayMs;
    if (this.timer) {
      if (this.due <= due) return;
      clearTimeout(this.timer);
    }
    this.due = due;
    this.timer = setTimeout(() => {
      this.timer = null;
      void writeRuntimeFile(this.stateDir(), this.snapshot()).catch(() => undefined);
    }, delayMs);
    this.timer.unref?.();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
