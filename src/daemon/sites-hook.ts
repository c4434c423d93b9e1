/**
 * `on_sites_changed`: the operator's command, run when a pattern's sites come
 * or go, so that generated front doors (`stagepost proxy-config`, `stagepost
 * mail-config`) follow. It is the operator's own shell line; what changed
 * reaches it in the environment, never pasted into the line.
 */
import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import { run } from '../util/exec.js';
import { redactor } from '../util/redact.js';

/** Long enough for an nginx reload, short enough that a hung hook is noticed. */
export const SITES_HOOK_TIMEOUT_MS = 120_000;

export async function runSitesHook(
  config: Config,
  log: Logger,
  change: { added: string[]; retired: string[] },
): Promise<void> {
  const command = config.onSitesChanged;
  if (!command) return;
  const r = await run('sh', ['-c', command], {
    cwd: config.dir,
    env: {
      ...process.env,
      STAGEPOST_CONFIG: config.file,
      STAGEPOST_SITES_ADDED: change.added.join(' '),
      STAGEPOST_SITES_RETIRED: change.retired.join(' '),
    },
    timeoutMs: SITES_HOOK_TIMEOUT_MS,
  });
  const meta = {
    added: change.added,
    retired: change.retired,
    exitCode: r.exitCode,
    timedOut: r.timedOut,
    durationMs: r.durationMs,
    output: redactor.redact(`${r.stdout}${r.stderr}`.slice(-2000)),
  };
  if (r.exitCode === 0 && !r.timedOut) log.info(meta, 'on_sites_changed ran');
  else log.error({ ...meta, spawnError: r.spawnError?.message }, 'on_sites_changed failed');
}
