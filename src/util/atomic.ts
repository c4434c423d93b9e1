import { promises as fs } from 'node:fs';
import path from 'node:path';

/**
 * Write-then-rename with fsync of file and directory, so a `kill -9` or power
 * cut leaves either the old or the new content, never a torn file.
 * `durable: false` keeps the rename (no torn file after a crash of ours) but
 * skips both fsyncs, for files that are only a cache of what the daemon knows.
 */
export async function writeFileAtomic(
  file: string,
  data: string | Buffer,
  options: { durable?: boolean } = {},
): Promise<void> {
  const durable = options.durable ?? true;
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const handle = await fs.open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(data);
    if (durable) await handle.sync();
  } catch (err) {
    // A full disk (ENOSPC, EFBIG) must not leave a 0-byte temp file behind.
    await handle.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  if (durable) await syncDir(path.dirname(file));
}

async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await fs.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  }
}
