/**
 * docs/config.md and config/ci.schema.json are generated from the loader's
 * schemas by `npm run docs`; this fails when the committed files are stale.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configJsonSchemaText, configMarkdown } from '../../src/config/docs.js';
import { builtinNotifierDocs } from '../../src/config/notifier-docs.js';
import { ConfigSchema, BranchConfigSchema } from '../../src/config/schema.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const committed = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

test.each([
  ['docs/config.md', async () => configMarkdown(await builtinNotifierDocs())],
  ['config/ci.schema.json', configJsonSchemaText],
])(
  '%s is up to date with src/config/schema.ts — run `npm run docs` and commit',
  async (file, render) => {
    expect(committed(file)).toBe(await render());
  },
);

test('the built-in notifiers are documented with exactly the options they accept', async () => {
  const docs = await builtinNotifierDocs();
  expect(docs.map((d) => d.name)).toEqual(['email', 'webhook', 'log']);
  const email = docs.find((d) => d.name === 'email')!;
  expect(email.options.map((o) => o.key)).toEqual(['transport', 'from', 'to', 'committers']);
  const doc = configMarkdown(docs);
  for (const d of docs) {
    expect(doc).toContain(`### \`use: ${d.name}\``);
    for (const o of d.options) expect(doc).toContain(`| \`${o.key}\``);
  }
  expect(doc).toContain('`dir:./mail`');
  expect(doc).toContain('| `ref-missing` |');
  for (const heading of [
    'New branches and `create`',
    'Removing a branch',
    'Jobs',
    'Mail-in (`mailin`)',
  ])
    expect(doc).toContain(`## ${heading}`);
});

test('the reference documents every key the loader accepts', () => {
  const doc = configMarkdown();
  for (const key of Object.keys(ConfigSchema.shape)) expect(doc).toContain(`## \`${key}\``);
  for (const key of Object.keys(BranchConfigSchema.shape))
    expect(doc).toContain(`| \`branches.<name>.${key}\``);
  expect(doc).toContain('| `builds.shutdown_grace` | duration | `30s` |');
});

test('the JSON schema rejects unknown top-level keys and names the version', () => {
  const schema = JSON.parse(committed('config/ci.schema.json')) as {
    additionalProperties: unknown;
    required: string[];
    properties: {
      branches: {
        anyOf: Array<{
          additionalProperties: { properties: { sources: { items: { required: string[] } } } };
        }>;
      };
    };
  };
  expect(schema.additionalProperties).toBe(false);
  expect(schema.required).toContain('version');
  expect(
    schema.properties.branches.anyOf[0].additionalProperties.properties.sources.items.required,
  ).toEqual(['name', 'vcs', 'url']);
});
