import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Plugin, PluginContext } from '../plugin-api.js';
import { StagepostError, errorMessage } from '../errors.js';
import { builtinPluginPath } from './registry.js';
import { shapeProblems } from './shape.js';

/** Where a plugin was named in ci.yaml, for error messages. */
export interface PluginSite {
  file: string;
  line: number;
  /** The config path of the entry (`notify[2]`, `branches.b1.sources[0]`). */
  what?: string;
}

// One import per module for the life of the process (Node caches modules too,
// but a failed resolution must be retried after the operator fixes the path).
const modules = new Map<string, Promise<Record<string, unknown>>>();

/**
 * Load a plugin named in ci.yaml: a built-in name (`git`, `email`, …), an
 * absolute path (the config has resolved `./x.js` against its directory), or a
 * package name. The default export is a plugin object or a factory
 * `(ctx) => plugin` (sync or async). Errors are EPLUGIN naming file and line.
 */
export async function loadPlugin(
  use: string,
  ctx: PluginContext,
  where: PluginSite,
): Promise<Plugin> {
  const at = `${where.file}:${where.line}: ${where.what ? `${where.what}: ` : ''}plugin "${use}"`;
  let mod: Record<string, unknown>;
  try {
    mod = await importModule(specifierFor(use));
  } catch (err) {
    throw new StagepostError(
      'EPLUGIN',
      `${at} could not be loaded: ${ctx.redact(errorMessage(err))} — check the path/package name, and that the module loads with node`,
      { cause: err },
    );
  }
  const exported = mod.default ?? mod;
  let plugin: unknown;
  try {
    plugin =
      typeof exported === 'function'
        ? await (exported as (c: PluginContext) => unknown)(ctx)
        : exported;
  } catch (err) {
    throw new StagepostError(
      'EPLUGIN',
      `${at} failed to start: ${ctx.redact(errorMessage(err))} — see the plugin's documentation`,
      { cause: err },
    );
  }
  const problems = shapeProblems(plugin);
  if (problems.length > 0) {
    throw new StagepostError(
      'EPLUGIN',
      `${at} is not a stagepost plugin: ${problems.join('; ')} — its default export must be a VCS or notifier plugin object, or a function returning one`,
    );
  }
  return plugin as Plugin;
}

function specifierFor(use: string): string {
  const builtin = builtinPluginPath(use);
  if (builtin) return pathToFileURL(builtin).href;
  if (path.isAbsolute(use)) return pathToFileURL(use).href;
  return use;
}

function importModule(specifier: string): Promise<Record<string, unknown>> {
  let mod = modules.get(specifier);
  if (!mod) {
    mod = import(specifier) as Promise<Record<string, unknown>>;
    modules.set(specifier, mod);
    mod.catch(() => modules.delete(specifier));
  }
  return mod;
}
