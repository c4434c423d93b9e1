#!/usr/bin/env node
// Runs the compiled JavaScript in dist/ only: an installed package ships it,
// a checkout makes it with `npm run build` (tsx is for development, not for
// running the service).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write(
    `stagepost: ${fileURLToPath(entry)} is missing: this checkout is not built. Run \`npm run build\` in ${fileURLToPath(new URL('..', import.meta.url))} (a package installed with npm ships dist/ already).\n`,
  );
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
