import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { StagepostError } from '../errors.js';
import { LockInfoSchema } from './schemas.js';

/**
 * A lock file holding the owner's pid and purpose. A lock whose owner is dead
 * (kill -9) is stale and taken over, so a crash never wedges a branch.
 */
export interface LockInfo {
  pid: number;
  purpose: string;
  since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !zombie(pid);
}

/**
 * A process killed -9 whose parent has not reaped it yet (a shell that
 * exec'd, a container without an init) still answers kill 0: it is dead all
 * the same, and its locks are free.
 */
function zombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z';
  } catch {
    return false;
  }
}

export async function readLock(file: string): Promise<LockInfo | null> {
  try {
    // Garbage or a wrong shape is a lock nobody can own: stale, so taken over.
    const parsed = LockInfoSchema.safeParse(JSON.parse(await fs.readFile(file, 'utf8')));
    return parsed.success && alive(parsed.data.pid) ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * Lock files this process holds now. A lock file naming this process that is
 * not in here was left by a release that failed (an I/O error, state_dir
 * briefly unwritable): stale like a dead owner's, or the branch would wait on
 * itself until a restart.
 */
const heldHere = new Set<string>();

export class FileLock {
  private held = false;
  /** This lock's entry in heldHere: one spelling of the path, whatever the caller's. */
  private readonly key: string;
  constructor(
    readonly file: string,
    private readonly purpose: string,
  ) {
    this.key = path.resolve(file);
  }

  /** Take the lock, or return who holds it. */
  async tryAcquire(): Promise<LockInfo | null> {
    try {
      await fs.mkdir(path.dirname(this.file), { recursive: true });
    } catch (err) {
      throw new StagepostError(
        'ESTATE',
        `cannot create the lock directory ${path.dirname(this.file)}: ${(err as Error).message} — check that state_dir is writable`,
        { cause: err },
      );
    }
    const mine: LockInfo = {
      pid: process.pid,
      purpose: this.purpose,
      since: new Date().toISOString(),
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const handle = await fs.open(this.file, 'wx', 0o600);
        try {
          await handle.writeFile(JSON.stringify(mine));
        } catch (err) {
          // ENOSPC after the create: an empty lock file must not be left behind.
          await handle.close().catch(() => undefined);
          await fs.rm(this.file, { force: true });
          throw err;
        }
        await handle.close();
        this.held = true;
        heldHere.add(this.key);
        return null;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new StagepostError(
            'ESTATE',
            `cannot create lock ${this.file}: ${(err as Error).message} — check that state_dir is writable`,
            { cause: err },
          );
        }
      }
      const owner = await readLock(this.file);
      if (owner && owner.pid !== process.pid) return owner;
      if (owner && heldHere.has(this.key)) return owner; // held elsewhere in this process
      // Stale (owner dead, file unreadable, or our own failed release): remove and try again.
      await fs.rm(this.file, { force: true });
    }
    const owner = await readLock(this.file);
    return owner ?? { pid: -1, purpose: 'unknown', since: '' };
  }

  /** Wait until the lock is free; `onWait` is told once who holds it. */
  async acquire(
    options: { signal?: AbortSignal; onWait?: (owner: LockInfo) => void; pollMs?: number } = {},
  ): Promise<void> {
    let told = false;
    for (;;) {
      const owner = await this.tryAcquire();
      if (!owner) return;
      if (!told) {
        options.onWait?.(owner);
        told = true;
      }
      if (options.signal?.aborted)
        throw new StagepostError(
          'ELOCKED',
          `gave up waiting for ${this.file} (held by pid ${owner.pid}: ${owner.purpose})`,
        );
      await new Promise((r) => setTimeout(r, options.pollMs ?? 200));
    }
  }

  /** Throws if the file cannot be removed; the lock is free all the same (see heldHere). */
  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    heldHere.delete(this.key);
    await fs.rm(this.file, { force: true });
  }
}
