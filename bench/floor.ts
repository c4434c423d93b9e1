import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Own and child CPU per `git ls-remote` started from a bare Node process (bench/spawn-floor.mjs). */
export function spawnFloor(url: string, count: number): { selfMs: number; childrenMs: number } {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'spawn-floor.mjs');
  return JSON.parse(execFileSync(process.execPath, [script, url, String(count)], { encoding: 'utf8' })) as { selfMs: number; childrenMs: number };
}
