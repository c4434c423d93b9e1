import { loadPlugin } from '../plugin-loader/loader.js';
import { BUILTIN_PLUGINS } from '../plugin-loader/registry.js';
import { createPluginContext } from '../plugin-loader/context.js';
import { createLogger } from '../log.js';
import type { NotifierDoc } from './docs.js';

/**
 * The built-in notifiers' documented options, loaded as the daemon loads
 * them: what their validate accepts is what docs/config.md lists.
 */
export async function builtinNotifierDocs(): Promise<NotifierDoc[]> {
  const ctx = createPluginContext('/nonexistent', createLogger({ level: 'error' }));
  const docs: NotifierDoc[] = [];
  for (const name of BUILTIN_PLUGINS.keys()) {
    const plugin = await loadPlugin(name, ctx, { file: 'docs', line: 0 });
    if (plugin.kind === 'notifier') docs.push({ name, options: plugin.options ?? [] });
  }
  return docs;
}
