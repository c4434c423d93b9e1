/**
 * After ci.yaml is loaded, the daemon (and a command that runs steps)
 * forgets the variables its `${VAR}` read (the notifiers' passwords, the
 * HTTP token): deleted from process.env, so no child inherits them, and
 * blanked in the environment block the kernel shows as /proc/<pid>/environ,
 * which a step (same user) could read through /proc/$PPID/environ. The
 * values live on in the loaded config, and the daemon keeps a copy of its
 * start-up environment for reloads.
 */
import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';

/** Never forgotten: steps and every git/svn child need them. */
const KEPT = /^(PATH|HOME|LANG|LC_[A-Z_]+|TZ|USER|LOGNAME|SHELL|TMPDIR)$/;

export interface Forgotten {
  names: string[];
  /** Why /proc/self/environ could not be blanked, if it could not. */
  procError?: string;
}

export function forgetEnvironment(
  names: string[],
  env: NodeJS.ProcessEnv = process.env,
): Forgotten {
  const gone = names.filter((n) => !KEPT.test(n) && env[n] !== undefined);
  for (const name of gone) delete env[name];
  if (gone.length === 0) return { names: gone };
  try {
    blankInitialEnvironment(new Set(gone));
    return { names: gone };
  } catch (err) {
    return { names: gone, procError: (err as Error).message };
  }
}

/**
 * The block between env_start and env_end (fields 50 and 51 of
 * /proc/self/stat) still holds the environment the process was started
 * with, whatever unsetenv did to the pointers. Entries of `names` are
 * overwritten with NULs in place through /proc/self/mem; nothing points at
 * them any more once they are deleted from process.env.
 */
function blankInitialEnvironment(names: Set<string>): void {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state) of proc(5).
  const start = Number(fields[50 - 3]);
  const end = Number(fields[51 - 3]);
  if (!(start > 0 && end > start && end - start < 1 << 24))
    throw new Error('no environment block in /proc/self/stat');
  const fd = openSync('/proc/self/mem', 'r+');
  try {
    const block = Buffer.alloc(end - start);
    readSync(fd, block, 0, block.length, start);
    let changed = false;
    for (let at = 0; at < block.length;) {
      let stop = block.indexOf(0, at);
      if (stop < 0) stop = block.length;
      const entry = block.toString('utf8', at, stop);
      const eq = entry.indexOf('=');
      if (eq > 0 && names.has(entry.slice(0, eq))) {
        block.fill(0, at, stop);
        changed = true;
      }
      at = stop + 1;
    }
    if (changed) writeSync(fd, block, 0, block.length, start);
  } finally {
    closeSync(fd);
  }
}
