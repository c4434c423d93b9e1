import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * A test may skip when a tool is missing on a laptop, loudly; under CI a
 * missing tool is a failure. Use as `const d = describeIf(hasTool('svn'))`.
 */
export function hasTool(name: string): boolean {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { encoding: 'utf8' });
  const found = r.status === 0;
  if (!found) {
    if (process.env.CI === 'true')
      throw new Error(
        `required tool "${name}" is not installed (CI=true: missing tools fail the run)`,
      );

    console.warn(`\n*** SKIPPING tests that need "${name}": it is not installed ***\n`);
  }
  return found;
}

export function describeIf(condition: boolean): jest.Describe {
  return condition ? describe : describe.skip;
}

/**
 * A process that exists and is not a zombie (a container's init may never reap them).
 * A pid of 0 or less would ask about the test's own process group and always
 * answer yes (a pid file read while empty is `Number('') === 0`): refused.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`processAlive: not a pid: ${pid}`);
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true;
  }
}
