import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Own and child CPU per query started from a bare Node process (bench/spawn-floor.mjs):
 * `git ls-remote URL`, or `git upload-pack DIR` with an ls-refs request.
 */
export function spawnFloor(
  mode: 'ls-remote' | 'upload-pack',
  target: string,
  count: number,
): { selfMs: number; childrenMs: number } {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'spawn-floor.mjs');
  return JSON.parse(
    execFileSync(process.execPath, [script, mode, target, String(count)], { encoding: 'utf8' }),
  ) as { selfMs: number; childrenMs: number };
}
