/**
 * Rewriting a file an operator owns (ci.yaml) as they would in an editor:
 * through a symlink to its target, keeping mode and owner, atomically (a temp
 * file beside the target, then rename), and never leaving that temp behind —
 * removed on SIGTERM/SIGINT/SIGHUP, and after a kill -9 by the next call.
 */
import { promises as fs, rmSync } from 'node:fs';
import path from 'node:path';

const TEMP = /^\.(.+)\.stagepost-(\d+)\.tmp$/;

export async function replaceFileInPlace(file: string, data: string): Promise<void> {
  const target = await fs.realpath(file);
  const dir = path.dirname(target);
  const base = path.basename(target);
  await removeStaleTemps(dir, base);
  const stat = await fs.stat(target);
  const tmp = path.join(dir, `.${base}.stagepost-${process.pid}.tmp`);
  const clean = () => rmSync(tmp, { force: true });
  const onSignal = (signal: NodeJS.Signals) => {
    clean();
    process.kill(process.pid, signal);
  };
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const s of signals) process.once(s, onSignal);
  try {
    const handle = await fs.open(tmp, 'w', stat.mode & 0o7777);
    try {
      await handle.writeFile(data);
      // open() applies the umask; the copy gets exactly the original's bits.
      await handle.chmod(stat.mode & 0o7777);
      await handle.chown(stat.uid, stat.gid).catch((err: NodeJS.ErrnoException) => {
        // Only root may give a file away; anyone else writes files as themselves.
        if (err.code !== 'EPERM') throw err;
      });
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, target);
  } catch (err) {
    clean();
    throw err;
  } finally {
    for (const s of signals) process.removeListener(s, onSignal);
  }
}

/** Temps of this file left by a process that no longer exists (kill -9). */
async function removeStaleTemps(dir: string, base: string): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    const m = TEMP.exec(name);
    if (!m || m[1] !== base || isAlive(Number(m[2]))) continue;
    await fs.rm(path.join(dir, name), { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
