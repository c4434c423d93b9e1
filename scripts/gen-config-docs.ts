/**
 * `npm run docs`: writes docs/config.md and config/ci.schema.json from the
 * zod schemas of src/config/schema.ts. test/config/docs.test.ts fails when
 * the committed files differ from what this writes.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configJsonSchemaText, configMarkdown } from '../src/config/docs.js';
import { builtinNotifierDocs } from '../src/config/notifier-docs.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
for (const [file, text] of [
  ['docs/config.md', configMarkdown(await builtinNotifierDocs())],
  ['config/ci.schema.json', configJsonSchemaText()],
] as const) {
  writeFileSync(path.join(root, file), text);
  console.log(`wrote ${file}`);
}
