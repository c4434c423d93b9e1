import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A PATH shim for `git` and `svn`: each call appends its argv to a log file,
 * then execs the real binary. It counts every child any stagepost process
 * starts (the CLI, the daemon), not only those a plugin reports.
 */
export interface Shim {
  /** Prepend to PATH; set BENCH_SHIM_LOG in the child's environment. */
  env: NodeJS.ProcessEnv;
  /** Lines logged so far (`git ls-remote …`). */
  calls(): string[];
}

export function makeShim(dir: string): Shim {
  mkdirSync(dir, { recursive: true });
  const log = path.join(dir, 'calls.log');
  writeFileSync(log, '');
  for (const tool of ['git', 'svn']) {
    const real = execFileSync('sh', ['-c', 'command -v "$1"', 'sh', tool], {
      encoding: 'utf8',
    }).trim();
    const file = path.join(dir, tool);
    // The log path comes from the environment, never from the script text.
    writeFileSync(
      file,
      `#!/bin/sh\nprintf '%s\\n' "${tool} $*" >> "$BENCH_SHIM_LOG"\nexec '${real.replace(/'/g, `'\\''`)}' "$@"\n`,
    );
    chmodSync(file, 0o755);
  }
  return {
    env: { PATH: `${dir}:${process.env.PATH ?? ''}`, BENCH_SHIM_LOG: log },
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []),
  };
}
