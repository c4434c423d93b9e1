import { createHash } from 'node:crypto';
import type { NotifierConfig } from '../config/types.js';
import type { Notifier, NotifierContext, NotifierPlugin, PluginContext } from '../plugin-api.js';
import { loadPlugin } from '../plugin-loader/loader.js';
import { StagepostError } from '../errors.js';

/**
 * A notifier entry of ci.yaml made live: load its plugin, check it is a
 * notifier, validate its options, create it. Every problem is EPLUGIN naming
 * the entry's file and line.
 */
export async function instantiateNotifier(
  config: NotifierConfig,
  ctx: NotifierContext,
): Promise<Notifier> {
  const where = `${config.file}:${config.line}: notify (${config.use})`;
  const plugin = await loadNotifierPlugin(config, ctx);
  let notifier: Notifier;
  try {
    notifier = await plugin.create(config.options, ctx);
  } catch (err) {
    throw new StagepostError(
      'EPLUGIN',
      `${where}: could not be started: ${ctx.redact((err as Error).message)} — check its options`,
      { cause: err },
    );
  }
  if (
    !notifier ||
    typeof notifier.prepare !== 'function' ||
    typeof notifier.deliver !== 'function'
  ) {
    throw new StagepostError(
      'EPLUGIN',
      `${where}: create() returned no notifier with prepare() and deliver() — a bug in the plugin`,
    );
  }
  return notifier;
}

/** Load a notify entry's plugin, check it is a notifier and validate its options (what `check` runs). */
export async function loadNotifierPlugin(
  config: NotifierConfig,
  ctx: PluginContext,
): Promise<NotifierPlugin> {
  const where = `${config.file}:${config.line}: notify (${config.use})`;
  const plugin = await loadPlugin(config.use, ctx, {
    file: config.file,
    line: config.line,
    what: 'notify',
  });
  if (plugin.kind !== 'notifier') {
    throw new StagepostError(
      'EPLUGIN',
      `${where}: "${config.use}" is a ${plugin.kind} plugin, not a notifier — use email, webhook, log or a notifier plugin's path`,
    );
  }
  let problems: Array<{ path: Array<string | number>; message: string }>;
  try {
    problems = plugin.validate?.(config.options) ?? [];
  } catch (err) {
    throw new StagepostError(
      'EPLUGIN',
      `${where}: validating the options failed: ${ctx.redact((err as Error).message)} — a bug in the plugin`,
      { cause: err },
    );
  }
  if (problems.length > 0) {
    throw new StagepostError(
      'EPLUGIN',
      problems.map((p) => `${where}: ${p.path.join('.') || '(options)'}: ${p.message}`).join('\n'),
    );
  }
  return plugin;
}

/** The outbox stores this instead of the key: use + options may hold a password. */
export function notifierHash(config: NotifierConfig): string {
  return createHash('sha256').update(config.key).digest('hex').slice(0, 20);
}
