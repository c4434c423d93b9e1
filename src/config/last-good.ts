/**
 * The last good ci.yaml. The daemon keeps running on it after a rejected
 * edit; a copy of its text under state_dir lets the read-only commands
 * (`status`, `log`, `poll`) do the same, saying so, instead of refusing.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { writeFileAtomic } from '../util/atomic.js';
import { stripUrlPassword } from '../util/redact.js';
import { errorMessage } from '../errors.js';
import { loadConfig, parseConfig } from './load.js';
import { configProblems } from './problems.js';
import { DEFAULTS } from './schema.js';
import type { Config } from './types.js';

/** A rejected edit of ci.yaml, as status, the API and the dashboard show it. */
export interface ConfigRejection {
  message: string;
  file: string;
  line: number | null;
  /** When the rejected text was first seen (the daemon's reload, else the file's mtime). */
  since: string;
}

const COPY = 'last-good-ci.yaml';

/** Load ci.yaml; when it is valid, keep a copy of its text (the `${…}` unsubstituted, URL passwords masked). */
export async function loadAndRemember(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Config> {
  const text = await readFile(file, 'utf8').catch(() => null);
  const config = text === null ? await loadConfig(file, env) : parseConfig(text, file, env);
  if (text !== null) {
    const copy = path.join(config.stateDir, COPY);
    // No state file holds a secret: a password written into a URL is masked
    // (the read-only commands that use the copy need none).
    const kept = stripUrlPassword(text);
    const same = existsSync(copy) && readFileSync(copy, 'utf8') === kept;
    // Only a convenience for the CLI: a full disk must not reject a good config.
    if (!same) await writeFileAtomic(copy, kept, { durable: false }).catch(() => undefined);
  }
  return config;
}

export function rejectionOf(err: unknown, file: string, since?: string): ConfigRejection {
  const first = configProblems(err)[0];
  return {
    message: errorMessage(err),
    file: first?.file ?? file,
    line: first?.line ?? null,
    since: since ?? mtimeOf(file),
  };
}

/**
 * ci.yaml for a command that only reads: the file when valid, else the last
 * good copy with the rejection. Anything else (no file, no copy) throws as
 * loadConfig does.
 */
export async function loadForReading(
  file: string,
  env: NodeJS.ProcessEnv,
): Promise<{ config: Config; rejected: ConfigRejection | null }> {
  try {
    return { config: await loadAndRemember(file, env), rejected: null };
  } catch (err) {
    if (configProblems(err).length === 0) throw err;
    const copy = path.join(guessStateDir(file), COPY);
    let text: string;
    try {
      text = readFileSync(copy, 'utf8');
    } catch {
      throw err;
    }
    return { config: parseConfig(text, file, env), rejected: rejectionOf(err, file) };
  }
}

/** state_dir as the rejected file says it, where it can still be read. */
function guessStateDir(file: string): string {
  let stateDir: unknown;
  try {
    stateDir = parseDocument(readFileSync(file, 'utf8')).get('state_dir');
  } catch {
    stateDir = undefined;
  }
  return path.resolve(
    path.dirname(file),
    typeof stateDir === 'string' && !stateDir.includes('${') ? stateDir : DEFAULTS.stateDir,
  );
}

function mtimeOf(file: string): string {
  try {
    return statSync(file).mtime.toISOString();
  } catch {
    return new Date().toISOString();
  }
}

/** The line a person reads: where, what, and that the last good config is in use. */
export function rejectionNote(r: ConfigRejection): string {
  const where = r.line === null ? r.file : `${r.file}:${r.line}`;
  return `ci.yaml edit rejected (${where}, since ${r.since.replace('T', ' ').slice(0, 19)}); showing the last good config:\n${r.message}`;
}
