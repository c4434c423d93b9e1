#!/usr/bin/env node
// Runs the compiled JavaScript in dist/ (made by `npm ci` / `npm run build`)
// while it is newer than every source file; otherwise the TypeScript sources
// through tsx's loader, so an edited checkout never runs stale code.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function distIsFresh() {
  if (process.env.STAGEPOST_FROM_SOURCE) return false;
  let stamp;
  try {
    stamp = statSync(path.join(root, 'dist', '.stamp')).mtimeMs;
  } catch {
    return false;
  }
  for (const top of ['src', 'plugins']) {
    for (const entry of readdirSync(path.join(root, top), {
      recursive: true,
      withFileTypes: true,
    })) {
      if (
        entry.isFile() &&
        statSync(path.join(entry.parentPath ?? entry.path, entry.name)).mtimeMs > stamp
      )
        return false;
    }
  }
  return true;
}

let main;
if (distIsFresh()) {
  ({ main } = await import('../dist/src/cli/main.js'));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
