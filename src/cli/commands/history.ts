import { loadConfig, resolveConfigPath } from '../../config/load.js';
import { StateStore } from '../../state/store.js';
import { runHistoryOf } from '../../daemon/status-document.js';
import { median } from '../../builds/trends.js';
import { StagepostError } from '../../errors.js';
import { formatDuration } from '../../util/duration.js';
import { redactor } from '../../util/redact.js';
import type { BuildSummary } from '../../api.js';
import { printJson, say, table } from '../output.js';
import { short } from './poll.js';

/**
 * `stagepost history SITE [--job NAME] [--json]`: the runs of a site's builds
 * (or of one job) with their durations, newest first. `--json` prints the
 * shape of `GET /api/branches/:b/history` (with --job: that job's list).
 */
export async function historyCommand(
  branch: string,
  opts: { config?: string; job?: string; json?: boolean },
): Promise<number> {
  const config = await loadConfig(resolveConfigPath(opts.config, process.env, process.cwd()));
  if (!config.branches.some((b) => b.name === branch))
    throw new StagepostError(
      'EUSAGE',
      `branch "${branch}" is not in ${config.file} — known branches: ${config.branches.map((b) => b.name).join(', ') || '(none)'}`,
    );
  const history = redactor.redactValue(
    runHistoryOf(config, new StateStore(config.stateDir), branch),
  );
  if (opts.job !== undefined && !(opts.job in history.jobs))
    throw new StagepostError(
      'EUSAGE',
      `job "${opts.job}" does not run on ${branch} — its jobs: ${Object.keys(history.jobs).join(', ') || '(none)'}`,
    );
  const runs = opts.job === undefined ? history.builds : history.jobs[opts.job];
  if (opts.json) {
    printJson(opts.job === undefined ? history : runs);
    return 0;
  }
  say(runsTable(runs, opts.job === undefined));
  say(medianLine(runs));
  if (opts.job === undefined)
    for (const [job, jobRuns] of Object.entries(history.jobs))
      say(
        `job ${job}: ${jobRuns.length} run${jobRuns.length === 1 ? '' : 's'} kept, ${medianLine(jobRuns)} — stagepost history ${branch} --job ${job}`,
      );
  return 0;
}

function runsTable(runs: BuildSummary[], builds: boolean): string {
  if (runs.length === 0) return builds ? 'no builds yet' : 'no runs yet';
  const rows = [['#', 'RESULT', 'STARTED', 'DURATION', ...(builds ? ['REVISIONS'] : []), 'STEPS']];
  for (const r of runs)
    rows.push([
      String(r.id),
      r.result ?? '-',
      r.startedAt.replace('T', ' ').slice(0, 19),
      r.durationMs === null ? '-' : formatDuration(r.durationMs),
      ...(builds
        ? [
            Object.entries(r.revisions)
              .map(([s, rev]) => `${s}@${short(rev)}`)
              .join(' '),
          ]
        : []),
      r.steps
        .filter((s) => s.result !== 'skipped')
        .map(
          (s) =>
            `${s.name} ${formatDuration(s.durationMs)}${s.result === 'success' ? '' : ` ${s.result}`}`,
        )
        .join(', '),
    ]);
  return table(rows).trimEnd();
}

/** The median the `slow` event compares with: successful runs only. */
export function medianOfRuns(runs: BuildSummary[]): number | null {
  return median(
    runs.filter((r) => r.result === 'success' && r.durationMs !== null).map((r) => r.durationMs!),
  );
}

function medianLine(runs: BuildSummary[]): string {
  const m = medianOfRuns(runs);
  const n = runs.filter((r) => r.result === 'success').length;
  return m === null
    ? 'median: - (no successful run)'
    : `median: ${formatDuration(m)} (of ${n} successful)`;
}
