import { loadConfig, resolveConfigPath } from '../../config/load.js';
import { loadPlugin } from '../../plugins/loader.js';
import { StagepostError, errorMessage } from '../../errors.js';
import { redactor } from '../../util/redact.js';
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
  const ctx = { log: { debug() {}, info() {}, warn() {}, error() {}, child() { return this; } }, stateDir: config.stateDir, redact: (t: string) => redactor.redact(t) };
  const notifiers = [...config.notify, ...config.branches.flatMap((b) => b.notify)];
  const seen = new Set<string>();
  for (const n of notifiers) {
    if (seen.has(`${n.file}:${n.line}`)) continue;
    seen.add(`${n.file}:${n.line}`);
    try {
      const plugin = await loadPlugin(n.use, ctx, { file: n.file, line: n.line });
      if (plugin.kind !== 'notifier') problems.push(`${n.file}:${n.line}: "${n.use}" is not a notifier plugin`);
      else for (const p of plugin.validate?.(n.options) ?? []) problems.push(`${n.file}:${n.line}: notify (${n.use}) ${p.path.join('.')}: ${p.message}`);
    } catch (err) {
      problems.push(errorMessage(err));
    }
  }
  for (const b of config.branches) for (const s of b.sources) {
    if (s.vcs === 'git' || s.vcs === 'svn') continue;
    try { await loadPlugin(s.vcs, ctx, { file: config.file, line: s.line }); } catch (err) { problems.push(errorMessage(err)); }
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
      if (error) { failed = true; note(`${b.name}: ${error}`); continue; }
      const missing = b.sources.filter((s) => session.poller.tracks[trackKey(s)]?.missing);
      for (const s of missing) note(`${b.name}: source ${s.name}: ${session.poller.tracks[trackKey(s)]!.missing}`);
      if (missing.length > 0) failed = true;
      else say(`${b.name}: remotes answer`);
    }
    return failed ? 1 : 0;
  } finally {
    await session.close();
  }
}
