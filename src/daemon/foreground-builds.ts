import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';

/**
 * Builds run by the CLI (`update`, `create`, `job`, `teardown`) in another
 * process, told in the daemon's log like its own builds, so the journal of
 * the service shows everything that happened to a site. They are seen in
 * the branch state files the CLI writes (`running`, then the record).
 */
export class ForegroundBuilds {
  private watcher: FSWatcher | null = null;
  /** Branch → id of the foreground build seen running. */
  private readonly running = new Map<string, number>();

  constructor(
    private readonly store: StateStore,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.watcher = watch(this.store.branchesDir, {
      ignoreInitial: true,
      depth: 0,
      awaitWriteFinish: false,
    });
    const onFile = (file: string) => {
      if (file.endsWith('.json')) this.check(path.basename(file, '.json'));
    };
    this.watcher.on('add', onFile).on('change', onFile);
    this.watcher.on('error', (err) =>
      this.log.warn({ error: err }, 'cannot watch the branch state files'),
    );
  }

  private check(branch: string): void {
    let state;
    try {
      state = this.store.readBranch(branch);
    } catch {
      return;
    }
    const run = state.running;
    const seen = this.running.get(branch);
    if (run && run.pid !== process.pid && seen !== run.id) {
      this.running.set(branch, run.id);
      this.log.info(
        { branch, build: run.id, kind: run.kind, pid: run.pid, forced: run.forced },
        'foreground build started',
      );
    } else if (seen !== undefined && run?.id !== seen) {
      this.running.delete(branch);
      const record = state.builds.find((b) => b.id === seen);
      this.log.info(
        {
          branch,
          build: seen,
          kind: record?.kind,
          result: record?.result ?? null,
          failedStep: record?.failedStep,
          durationMs: record?.durationMs,
        },
        'foreground build finished',
      );
    }
  }

  async close(): Promise<void> {
    await this.watcher?.close();
  }
}
