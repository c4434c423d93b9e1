import { parseConfig } from '../../src/config/load.js';
import type { Problem } from '../../src/config/problems.js';
import { StagepostError } from '../../src/errors.js';

export const FILE = '/srv/stagepost/ci.yaml';

/** The problems parseConfig reports for `text` (fails the test when it accepts it). */
export function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): Problem[] {
  try {
    parseConfig(text, FILE, env);
  } catch (err) {
    if (!(err instanceof StagepostError) || err.code !== 'ECONFIG') throw err;
    return err.details!.problems as Problem[];
  }
  throw new Error('expected the config to be rejected');
}

/** 1-based line of the first line of `text` containing `marker`. */
export function lineWith(text: string, marker: string): number {
  const index = text.split('\n').findIndex((l) => l.includes(marker));
  if (index < 0) throw new Error(`marker ${marker} not in the text`);
  return index + 1;
}

/** A valid config with two git branches; `extra` is appended verbatim. */
export const BASE = `version: 1
steps:
  - name: build
    run: make
branches:
  staging:
    dir: ./sites/staging
    port: 6543
    sources:
      - { name: app, vcs: git, url: "https://git.example.com/app.git", ref: main, path: src/app }
    customers: [osf, anothercustomer]
  branch1:
    dir: ./sites/branch1
    port: 6544
    sources:
      - { name: app, vcs: git, url: "https://git.example.com/app.git", ref: feature, path: src/app }
    customers: [osf]
`;
