import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../log.js';

/** Calls `onEdit` once an edit of ci.yaml has settled. */
export class ConfigWatcher {
  private readonly watcher: FSWatcher;
  private timer: NodeJS.Timeout | undefined;

  constructor(file: string, log: Logger, onEdit: () => void) {
    // chokidar follows a file that an editor replaces by rename (its atomic
    // save), which a plain fs.watch on the old inode would miss.
    this.watcher = watch(file, {
      ignoreInitial: true,
      awaitWriteFinish: { stabilityThreshold: 100, pollInterval: 50 },
    });
    // An editor's save is often several events; one reload for all of them.
    const settle = () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(onEdit, 150);
    };
    this.watcher.on('add', settle).on('change', settle).on('unlink', settle);
    this.watcher.on('error', (err) => log.warn({ error: err }, 'cannot watch ci.yaml'));
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    await this.watcher.close();
  }
}
