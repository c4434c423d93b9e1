import { loadConfig, resolveConfigPath } from '../../config/load.js';
import { loadNotifierPlugin } from '../../notify/instantiate.js';
import { VcsRegistry } from '../../vcs.js';
import { createLogger } from '../../log.js';
import { StagepostError, errorMessage } from '../../errors.js';
import { createPluginContext } from '../../plugin-loader/context.js';
import { openSession } from '../session.js';
import { trackKey } from '../../poll/tracks.js';
import { say, note } from '../output.js';

/**
 * `stagepost check [--remote]`: validate ci.yaml (exit 2 with file:line for
 * each problem), load every plugin and validate its options; with --remote
 * also ask every remote once (exit 1 when one fails).
 */
export async function checkCommand(opts: { config?: string; remote?: boolean }): Promise<number> {
  const file = resolveConfigPath(opts.config, process.env, process.cwd());
  const config = await loadConfig(file);
  const problems: string[] = [];
  const ctx = createPluginContext(config.stateDir, createLogger());
  // A notify entry of the top level appears in every branch's list too: check each once.
  const notifiers = new Map(
    [...config.notify, ...config.branches.flatMap((b) => b.notify)].map((n) => [
      `${n.file}:${n.line}`,
      n,
    ]),
  );
  for (const n of notifiers.values()) {
    try {
      await loadNotifierPlugin(n, ctx);
    } catch (err) {
      problems.push(errorMessage(err));
    }
  }
  const vcs = new VcsRegistry(ctx);
  for (const b of config.branches)
    for (const s of b.sources) {
      try {
        await vcs.get(s.vcs, { file: config.file, line: s.line });
      } catch (err) {
        problems.push(errorMessage(err));
      }
    }
  if (problems.length > 0) throw new StagepostError('ECONFIG', problems.join('\n'));
  say(`${config.file}: valid — ${config.branches.length} branch(es), ${config.jobs.length} job(s)`);
  if (!opts.remote) return 0;

  const session = await openSession(opts.config);
  try {
    await session.poller.setBranches(config.branches, false);
    await session.poller.pollNow();
    let failed = false;
    for (const b of config.branches) {
      const error = session.pollErrors.get(b.name);
      if (error) {
        failed = true;
        note(`${b.name}: ${error}`);
        continue;
      }
      const missing = b.sources.filter((s) => session.poller.tracks[trackKey(s)]?.missing);
      for (const s of missing)
        note(`${b.name}: source ${s.name}: ${session.poller.tracks[trackKey(s)].missing}`);
      if (missing.length > 0) failed = true;
      else say(`${b.name}: remotes answer`);
    }
    return failed ? 1 : 0;
  } finally {
    await session.close();
  }
}
