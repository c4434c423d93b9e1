import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { StagepostError } from '../errors.js';
import type { CaughtMailSummary } from '../api.js';
import { writeFileAtomic } from '../util/atomic.js';

/**
 * Caught mail on disk, under `<state_dir>/mail/<branch>/`: each message as
 * `<id>.eml` (raw, as received) beside `<id>.json` (its summary and SMTP
 * envelope). Ids sort by arrival time, so listing needs no index to rewrite,
 * and the CLI can read it while the daemon writes.
 */
export interface StoredMail extends CaughtMailSummary {
  envelope: { from: string; to: string[] };
}

export interface PendingRelay {
  id: string;
  attempts: number;
  nextAttemptAt: string;
  lastError?: string;
}

const ID = /^\d{14}-[0-9a-f]{8}$/;

export function mailDir(stateDir: string, branch: string): string {
  return path.join(stateDir, 'mail', branch);
}

let lastStamp = 0;
/** Strictly increasing within this process, so two mails of one millisecond keep their order. */
export function newMailId(now = Date.now()): string {
  lastStamp = Math.max(now, lastStamp + 1);
  return `${String(lastStamp).padStart(14, '0')}-${randomBytes(4).toString('hex')}`;
}

export class MailStore {
  readonly dir: string;
  constructor(
    stateDir: string,
    readonly branch: string,
  ) {
    this.dir = mailDir(stateDir, branch);
  }

  /** The raw message first: a summary never points at a missing file. */
  async add(raw: Buffer, meta: StoredMail): Promise<void> {
    await writeFileAtomic(path.join(this.dir, `${meta.id}.eml`), raw);
    await this.update(meta);
  }

  /** Where a message being received is written, until commit() moves it in place. */
  incoming(id: string): string {
    return path.join(this.dir, `${id}.eml.incoming`);
  }

  /** The received file becomes the message, then its summary is written: never one without the other. */
  async commit(incoming: string, meta: StoredMail): Promise<void> {
    await fs.rename(incoming, path.join(this.dir, `${meta.id}.eml`));
    await this.update(meta);
  }

  /** Files of messages cut off by a kill while they were arriving. */
  async removeIncoming(): Promise<void> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch {
      return;
    }
    for (const name of names)
      if (name.endsWith('.eml.incoming')) await fs.rm(path.join(this.dir, name), { force: true });
  }

  /** The file of a message (ENOTFOUND for an unknown id), for streaming it. */
  async rawPath(id: string): Promise<string> {
    if (!ID.test(id)) throw notFound(this.branch, id);
    const file = path.join(this.dir, `${id}.eml`);
    try {
      await fs.access(file);
    } catch {
      throw notFound(this.branch, id);
    }
    return file;
  }

  update(meta: StoredMail): Promise<void> {
    return writeFileAtomic(path.join(this.dir, `${meta.id}.json`), JSON.stringify(meta) + '\n');
  }

  async ids(): Promise<string[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names
      .filter((n) => n.endsWith('.json') && ID.test(n.slice(0, -5)))
      .map((n) => n.slice(0, -5))
      .sort();
  }

  async read(id: string): Promise<StoredMail | null> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.dir, `${id}.json`), 'utf8')) as StoredMail;
    } catch {
      return null;
    }
  }

  async raw(id: string): Promise<Buffer> {
    if (!ID.test(id)) throw notFound(this.branch, id);
    try {
      return await fs.readFile(path.join(this.dir, `${id}.eml`));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(this.branch, id);
      throw err;
    }
  }

  /** Deletes all but the newest `keep`; returns the ids deleted. */
  async prune(keep: number): Promise<string[]> {
    const ids = await this.ids();
    const old = ids.slice(0, Math.max(0, ids.length - keep));
    for (const id of old) {
      await fs.rm(path.join(this.dir, `${id}.json`), { force: true });
      await fs.rm(path.join(this.dir, `${id}.eml`), { force: true });
    }
    return old;
  }

  async readPending(): Promise<PendingRelay[]> {
    try {
      return JSON.parse(
        await fs.readFile(path.join(this.dir, 'pending.json'), 'utf8'),
      ) as PendingRelay[];
    } catch {
      return [];
    }
  }

  writePending(pending: PendingRelay[]): Promise<void> {
    return writeFileAtomic(
      path.join(this.dir, 'pending.json'),
      JSON.stringify(pending, null, 1) + '\n',
    );
  }
}

function notFound(branch: string, id: string): StagepostError {
  return new StagepostError(
    'ENOTFOUND',
    `no caught mail ${JSON.stringify(id)} for branch ${branch} — list the ids with: stagepost mail ${branch}`,
  );
}

/** Mail caught for a branch, newest first. Works without a running daemon. */
export async function listCaughtMail(
  stateDir: string,
  branch: string,
): Promise<CaughtMailSummary[]> {
  const store = new MailStore(stateDir, branch);
  const out: CaughtMailSummary[] = [];
  for (const id of (await store.ids()).reverse()) {
    const meta = await store.read(id);
    if (!meta) continue; // pruned between readdir and read
    const { envelope, ...summary } = meta;
    out.push(summary);
  }
  return out;
}

/** One caught message, raw. ENOTFOUND for an unknown id. */
export async function readCaughtMail(
  stateDir: string,
  branch: string,
  id: string,
): Promise<string> {
  return (await new MailStore(stateDir, branch).raw(id)).toString('utf8');
}
