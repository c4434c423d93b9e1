import { existsSync, createReadStream } from 'node:fs';
import path from 'node:path';
import { loadConfig, resolveConfigPath } from '../../config/load.js';
import { StateStore, type StateDamage } from '../../state/store.js';
import { readLock } from '../../state/lock.js';
import { readRuntimeFile } from '../../daemon/runtime-file.js';
import { statusDocument } from '../../daemon/status.js';
import { StagepostError } from '../../errors.js';
import { formatDuration } from '../../util/duration.js';
import { redactor } from '../../util/redact.js';
import { note, printJson, say, table } from '../output.js';
import { short } from './poll.js';

/** Reading must not change the state: a damaged file is left for the daemon, and named. */
const readOnly = {
  moveAside: false,
  onDamage: (d: StateDamage) =>
    note(
      `warning: ${d.file} is damaged (${d.problem}); shown as empty. stagepost run or update moves it aside when it next reads it.`,
    ),
};

/** `stagepost status [--json]`: from the state files plus what a running daemon last wrote. */
export async function statusCommand(opts: { config?: string; json?: boolean }): Promise<number> {
  const config = await loadConfig(resolveConfigPath(opts.config, process.env, process.cwd()));
  const store = new StateStore(config.stateDir, readOnly);
  const daemon = await readLock(path.join(config.stateDir, 'daemon.lock'));
  const runtime = daemon ? readRuntimeFile(config.stateDir) : null;
  const doc = redactor.redactValue(
    statusDocument(config, store, {
      tracks: store.readPoll().tracks,
      lastPoll: runtime?.lastPoll ?? {},
      queued: new Set(runtime?.queue ?? []),
      queue: runtime?.queue ?? [],
      current: runtime?.current ?? {},
      outbox: runtime?.outbox ?? 0,
      waiting: runtime?.waiting,
      daemon: {
        running: !!daemon,
        pid: daemon?.pid ?? null,
        startedAt: runtime?.startedAt ?? null,
      },
    }),
  );
  if (opts.json) {
    printJson(doc);
    return 0;
  }
  const rows = [
    ['BRANCH', 'STATE', 'SOURCES', 'LAST BUILD', 'RESULT', 'WHEN', 'DURATION', 'LAST POLL'],
  ];
  for (const b of doc.branches) {
    rows.push([
      b.name,
      b.current
        ? `building (${b.current.step ?? 'starting'}, ${formatDuration(b.current.elapsedMs)})`
        : b.waiting
          ? `waiting: ${b.waiting.reason}`
          : b.state,
      b.sources.map((s) => `${s.name}@${short(s.revision)}`).join(' '),
      b.lastBuild ? `#${b.lastBuild.id}` : '-',
      b.lastBuild?.result ?? '-',
      b.lastBuild ? b.lastBuild.startedAt.replace('T', ' ').slice(0, 19) : '-',
      b.lastBuild?.durationMs != null ? formatDuration(b.lastBuild.durationMs) : '-',
      b.lastPoll
        ? b.lastPoll.error
          ? `ERROR ${b.lastPoll.error}`
          : b.lastPoll.at.slice(11, 19)
        : '-',
    ]);
  }
  say(table(rows).trimEnd());
  say(
    daemon
      ? `daemon: running (pid ${daemon.pid})${doc.queue.length ? `, queue: ${doc.queue.join(' ')}` : ''}`
      : 'daemon: not running',
  );
  return 0;
}

/** `stagepost log BRANCH [BUILD]`: a build's log, the last one by default. */
export async function logCommand(
  branch: string,
  build: string | undefined,
  opts: { config?: string },
): Promise<number> {
  const config = await loadConfig(resolveConfigPath(opts.config, process.env, process.cwd()));
  if (!config.branches.some((b) => b.name === branch))
    throw new StagepostError('ENOBRANCH', `branch "${branch}" is not in ${config.file}`);
  const store = new StateStore(config.stateDir, readOnly);
  const state = store.readBranch(branch);
  let id: number | undefined;
  if (build === undefined || build === 'last') id = state.running?.id ?? state.builds[0]?.id;
  else if (/^\d+$/.test(build.replace(/^#/, ''))) id = Number(build.replace(/^#/, ''));
  else throw new StagepostError('EUSAGE', `BUILD must be a build number like 12, not "${build}"`);
  if (id === undefined)
    throw new StagepostError(
      'ENOTFOUND',
      `${branch} has no builds yet — run \`stagepost update ${branch}\``,
    );
  const file = store.logFile(branch, id);
  if (!existsSync(file))
    throw new StagepostError(
      'ENOTFOUND',
      `no log for ${branch} build #${id} (kept builds: ${state.builds.map((b) => b.id).join(', ') || 'none'})`,
    );
  await new Promise<void>((resolve, reject) =>
    createReadStream(file)
      .on('error', reject)
      .on('end', resolve)
      .pipe(process.stdout, { end: false }),
  );
  return 0;
}
