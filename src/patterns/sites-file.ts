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
  /** Successful, non-empty answers in a row without the branch. */
  missing: number;
  createdAt: string;
}

export interface SitesFile {
  version: 1;
  /** Pattern name → site name → site. */
  patterns: Record<string, Record<string, SiteEntry>>;
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
    return { version: 1, patterns: data.patterns ?? {} };
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
