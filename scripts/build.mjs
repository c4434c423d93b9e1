#!/usr/bin/env node
// Compiles src/ and plugins/ to dist/ (run by `npm ci` through "prepare").
// The daemon then runs plain JavaScript: less memory and CPU than the tsx
// loader. bin/stagepost.js uses dist/ only while it is newer than the sources.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
if (result.status !== 0) {
  // A tree that does not compile must not install: `npm ci` runs this as
  // "prepare", so a type error fails the install instead of shipping nothing.
  rmSync(dist, { recursive: true, force: true });
  console.error('stagepost: compiling failed (the type errors are above)');
  process.exit(result.status ?? 1);
}
// Files the code reads at run time (dashboard page, demo app).
for (const top of ['src', 'plugins']) {
  for (const entry of readdirSync(path.join(root, top), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name.endsWith('.ts')) continue;
    const from = path.join(entry.parentPath ?? entry.path, entry.name);
    const to = path.join(dist, path.relative(root, from));
    mkdirSync(path.dirname(to), { recursive: true });
    copyFileSync(from, to);
  }
}
writeFileSync(path.join(dist, '.stamp'), new Date().toISOString() + '\n');
