import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';
import { jobHistory, jobOfKind } from '../state/history.js';

/**
 * Builds run by the CLI (`update`, `create`, `job`, `teardown`) in another
 * process, told in the daemon's log like its own builds, so the journal of
 * the service shows everything that happened to a site. They are seen in
 * the branch state files the CLI writes (`running`, then the record).
 */
export class ForegroundBuilds {
  private watcher: FSWatcher | null = null;
  /** Branch → the foreground run seen running (a job's runs are numbered apart). */
  private readonly running = new Map<string, { id: number; kind: string }>();

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
    if (run && run.pid !== process.pid && (seen?.id !== run.id || seen.kind !== run.kind)) {
      this.running.set(branch, { id: run.id, kind: run.kind });
      this.log.info(
        { branch, build: run.id, kind: run.kind, pid: run.pid, forced: run.forced },
        'foreground build started',
      );
    } else if (seen !== undefined && (run?.id !== seen.id || run.kind !== seen.kind)) {
      this.running.delete(branch);
      const job = jobOfKind(seen.kind);
      const records = job === null ? state.builds : jobHistory(state, job).runs;
      const record = records.find((b) => b.id === seen.id && b.kind === seen.kind);
      this.log.info(
        {
          branch,
          build: seen.id,
          kind: seen.kind,
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
