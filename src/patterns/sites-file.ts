/**
 * The sites the patterns made, kept in `state_dir/sites.json`: which remote
 * branch each follows, its port, and how many answers in a row it was missing.
 * Names and ports stay stable across restarts and config reloads because they
 * are read from here, not worked out again.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { StagepostError, errorMessage } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';

export interface SiteEntry {
  /** The remote branch name (`feature/foo`). */
  ref: string;
  port?: number;
  /** With a cluster and a pattern on several hosts: the host it was placed on, for good. */
  host?: string;
  /** Successful, non-empty answers in a row without the branch. */
  missing: number;
  /** The branch's commit in the last answer that had it. */
  revision?: string;
  /** When a new commit of the branch was last seen (slots: newest first; idle). */
  activeAt: string;
  createdAt: string;
}

/** A matching branch without a site, all slots being taken. */
export interface WaitingEntry {
  revision: string;
  activeAt: string;
}

export interface SitesFile {
  version: 1;
  /** Pattern name → site name → site. */
  patterns: Record<string, Record<string, SiteEntry>>;
  /** Pattern name → remote branch → waiting for a slot. */
  waiting?: Record<string, Record<string, WaitingEntry>>;
  /** Pattern name → retirements the half-at-once guard holds back, and since when. */
  held?: Record<string, { sites: string[]; since: string }>;
  /** Site name → what it was, so its history stays readable (`stagepost history SITE`). */
  retired?: Record<
    string,
    {
      pattern: string;
      ref: string;
      retiredAt: string;
      reason?: 'gone' | 'idle' | 'bumped';
      host?: string;
    }
  >;
}

export const sitesFilePath = (stateDir: string) => path.join(stateDir, 'sites.json');

export function emptySites(): SitesFile {
  return { version: 1, patterns: {} };
}

/** Read synchronously: config loading is synchronous and the file is small. */
export function readSites(stateDir: string): SitesFile {
  let text: string;
  try {
    text = readFileSync(sitesFilePath(stateDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptySites();
    throw err;
  }
  try {
    const data = JSON.parse(text) as Partial<SitesFile>;
    return { ...data, version: 1, patterns: data.patterns ?? {} };
  } catch (err) {
    throw new StagepostError(
      'ESTATE',
      `${sitesFilePath(stateDir)} is not valid JSON (${errorMessage(err)}) — restore it, or remove it to let the patterns make their sites anew (names and ports may change)`,
      { cause: err },
    );
  }
}

export function writeSites(stateDir: string, sites: SitesFile): Promise<void> {
  return writeFileAtomic(sitesFilePath(stateDir), `${JSON.stringify(sites, null, 2)}\n`);
}

const PINS = 'pins.json';
const CONFIRM = 'retire-confirm.json';

/**
 * Pins and confirmations are written by the CLI only, each in a file of its
 * own, so they never race with the daemon's writes of sites.json.
 */
export function readPins(stateDir: string): Set<string> {
  const data = readJson<{ pinned?: string[] }>(path.join(stateDir, PINS));
  return new Set(data?.pinned ?? []);
}

export function writePins(stateDir: string, pinned: ReadonlySet<string>): Promise<void> {
  return writeFileAtomic(
    path.join(stateDir, PINS),
    `${JSON.stringify({ pinned: [...pinned].sort() }, null, 2)}\n`,
  );
}

/** When an operator last ran `stagepost retire --confirm`. */
export function readRetireConfirm(stateDir: string): string | undefined {
  return readJson<{ at?: string }>(path.join(stateDir, CONFIRM))?.at;
}

export function writeRetireConfirm(stateDir: string, at: Date): Promise<void> {
  return writeFileAtomic(
    path.join(stateDir, CONFIRM),
    `${JSON.stringify({ at: at.toISOString() })}\n`,
  );
}

function readJson<T>(file: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new StagepostError(
      'ESTATE',
      `${file} is not valid JSON (${errorMessage(err)}) — remove it and run the command again`,
      { cause: err },
    );
  }
}
