import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { EventName } from '../plugin-api.js';
import { writeFileAtomic } from '../util/atomic.js';

/**
 * Prepared messages waiting for delivery: one JSON file each under
 * `<state_dir>/outbox/`, written atomically BEFORE the first delivery attempt,
 * removed after success. A `kill -9` at any moment leaves every message either
 * delivered or on disk (at worst both, when the kill falls between a delivery
 * and the removal: then it is sent once more after the restart).
 */
export interface OutboxRecord {
  version: 1;
  id: string;
  /** Hash of the notifier's config key (use + options): the key itself may hold secrets. */
  notifier: string;
  /** The notifier's `use`, for logs. */
  use: string;
  branch?: string;
  events: EventName[];
  createdAt: string;
  attempts: number;
  nextAttemptAt: string;
  lastError?: string;
  message: unknown;
}

export class Outbox {
  readonly dir: string;
  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'outbox');
  }

  /** Ids sort by creation time, so a restart retries the oldest first. */
  newId(now: number): string {
    return `${now.toString().padStart(14, '0')}-${randomBytes(6).toString('hex')}`;
  }

  write(record: OutboxRecord): Promise<void> {
    return writeFileAtomic(this.file(record.id), JSON.stringify(record, null, 1) + '\n');
  }

  async remove(id: string): Promise<void> {
    await fs.rm(this.file(id), { force: true });
  }

  /** Moved aside, not deleted: an operator can still read what was never sent. */
  async bury(id: string): Promise<string> {
    const dead = path.join(this.dir, 'undeliverable');
    await fs.mkdir(dead, { recursive: true });
    const target = path.join(dead, `${id}.json`);
    await fs.rename(this.file(id), target);
    return target;
  }

  /** Every readable record; unreadable files are reported, not deleted. */
  async readAll(): Promise<{ records: OutboxRecord[]; unreadable: string[] }> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], unreadable: [] };
      throw err;
    }
    const records: OutboxRecord[] = [];
    const unreadable: string[] = [];
    // Half-written temp files of a process killed mid-write: the rename never happened.
    for (const name of names.filter((n) => n.endsWith('.tmp')))
      await fs.rm(path.join(this.dir, name), { force: true });
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      const file = path.join(this.dir, name);
      try {
        const record = JSON.parse(await fs.readFile(file, 'utf8')) as OutboxRecord;
        if (
          record.version !== 1 ||
          `${record.id}.json` !== name ||
          typeof record.notifier !== 'string'
        )
          throw new Error('not an outbox record');
        records.push(record);
      } catch {
        unreadable.push(file);
      }
    }
    return { records, unreadable };
  }

  private file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }
}
