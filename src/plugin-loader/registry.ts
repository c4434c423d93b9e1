import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The built-in plugins, by the name an operator writes in ci.yaml (`vcs: git`,
 * `use: email`). They are loaded exactly like a third-party plugin, from their
 * folder in `plugins/`, so the public plugin API is used every day.
 */
export const BUILTIN_PLUGINS: ReadonlyMap<string, string> = new Map([
  ['git', 'git'],
  ['svn', 'svn'],
  ['email', 'email'],
  ['webhook', 'webhook'],
  ['log', 'log'],
]);

const PLUGINS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'plugins',
);

/**
 * Absolute path of a built-in plugin's entry module. The sources run as `.ts`
 * (tsx, ts-jest); a compiled tree would hold `.js`, so take whichever exists.
 */
export function builtinPluginPath(name: string): string | undefined {
  const folder = BUILTIN_PLUGINS.get(name);
  if (!folder) return undefined;
  const base = path.join(PLUGINS_DIR, folder, 'index');
  return existsSync(`${base}.ts`) ? `${base}.ts` : `${base}.js`;
}
