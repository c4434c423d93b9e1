import { readFileSync } from 'node:fs';
import path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '../..');

/**
 * The node flags the shipped systemd unit starts the daemon with (the words
 * between `node` and the script in ExecStart), so tests and the bench run the
 * daemon the way an installed one runs.
 */
export function unitNodeFlags(
  unitText = readFileSync(path.join(REPO, 'config/stagepost.service'), 'utf8'),
): string[] {
  const line = unitText.split('\n').find((l) => l.startsWith('ExecStart='));
  if (!line) throw new Error('config/stagepost.service has no ExecStart=');
  const words = line.slice('ExecStart='.length).trim().split(/\s+/).slice(1);
  const flags: string[] = [];
  for (const word of words) {
    if (!word.startsWith('--')) break;
    flags.push(word);
  }
  return flags;
}
