import { spawnSync } from 'node:child_process';

/**
 * A test may skip when a tool is missing on a laptop, loudly; under CI a
 * missing tool is a failure. Use as `const d = describeIf(hasTool('svn'))`.
 */
export function hasTool(name: string): boolean {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { encoding: 'utf8' });
  const found = r.status === 0;
  if (!found) {
    if (process.env.CI === 'true') throw new Error(`required tool "${name}" is not installed (CI=true: missing tools fail the run)`);
    // eslint-disable-next-line no-console
    console.warn(`\n*** SKIPPING tests that need "${name}": it is not installed ***\n`);
  }
  return found;
}

export function describeIf(condition: boolean): jest.Describe {
  return condition ? describe : describe.skip;
}
