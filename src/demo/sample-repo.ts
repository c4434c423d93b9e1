import { readFileSync, readdirSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, describeFailure, type RunOptions } from '../util/exec.js';
import { StagepostError } from '../errors.js';

/**
 * What the demo's commit loop needs from a sample "remote": commit a change
 * on a ref as some author. Implemented for git and svn.
 */
export interface Author {
  name: string;
  email: string;
  /** svn user name; its address comes from ci.yaml's authors / authors_domain. */
  user: string;
}

export interface SampleRepo {
  vcs: 'git' | 'svn';
  /** The URL ci.yaml names (for svn: the repository root; add /trunk). */
  url: string;
  /** Check `ref` out in the work copy, let `edit` change files there, commit and push. Returns the new revision. */
  commit(
    ref: string,
    author: Author,
    message: string,
    edit: (dir: string) => void,
  ): Promise<string>;
}

const SAMPLE_APP = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sample-app');

/** Put the sample app (build script, restart script, app server) into a work copy. */
export function writeSampleApp(dir: string): void {
  for (const name of readdirSync(SAMPLE_APP)) {
    writeFileSync(path.join(dir, name), readFileSync(path.join(SAMPLE_APP, name)));
    if (name.endsWith('.sh')) chmodSync(path.join(dir, name), 0o755);
  }
  writeFileSync(path.join(dir, 'CHANGES.txt'), 'first version of the sample app\n');
}

/** Run a tool of the demo's setup; a failure stops the demo with the tool's own words. */
export async function must(
  file: string,
  args: string[],
  options: RunOptions = {},
): Promise<string> {
  const result = await run(file, args, { timeoutMs: 30_000, ...options });
  if (result.exitCode !== 0) {
    const said = (result.stderr || result.stdout).trim().split('\n').slice(-3).join(' / ');
    throw new StagepostError(
      'EREMOTE',
      `demo setup: ${result.command} failed (${describeFailure(result)})${said ? `: ${said}` : ''} — is ${file} installed and working?`,
    );
  }
  return result.stdout.trim();
}
