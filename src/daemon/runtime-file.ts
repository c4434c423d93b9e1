import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { CurrentBuild } from '../api.js';
import type { ConfigRejection } from '../config/last-good.js';
import { writeFileAtomic } from '../util/atomic.js';

/**
 * What only the running daemon knows (last poll per branch, what is queued and
 * building), written now and then so that `stagepost status` in another
 * process can show it. Not precious: losing it loses nothing.
 */
export interface RuntimeFile {
  pid: number;
  startedAt: string;
  updatedAt: string;
  lastPoll: Record<string, { at: string; error: string | null }>;
  queue: string[];
  current: Record<string, CurrentBuild>;
  outbox: number;
  /** A rejected edit of ci.yaml the daemon runs without (it keeps the last good config). */
  configError?: ConfigRejection | null;
  /** Branches whose build could not start, and why. */
  waiting?: Record<string, { reason: string; since: string; retryAt: string; attempts: number }>;
  /** Where the daemon's HTTP API listens (after `run --http-port`), null without `http:`. */
  httpUrl?: string | null;
}

export function runtimeFilePath(stateDir: string): string {
  return path.join(stateDir, 'runtime.json');
}

export function readRuntimeFile(stateDir: string): RuntimeFile | null {
  try {
    return JSON.parse(readFileSync(runtimeFilePath(stateDir), 'utf8')) as RuntimeFile;
  } catch {
    return null;
  }
}

export async function writeRuntimeFile(stateDir: string, data: RuntimeFile): Promise<void> {
  // Rewritten while the daemon runs and rebuilt from scratch at start: a
  // power cut may lose the last version, which costs nothing.
  await writeFileAtomic(runtimeFilePath(stateDir), JSON.stringify(data), { durable: false });
}
