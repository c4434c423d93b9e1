import { once } from 'node:events';
import { existsSync, createReadStream } from 'node:fs';
import path from 'node:path';
import { resolveConfigPath } from '../../config/load.js';
import { loadForReading, rejectionNote } from '../../config/last-good.js';
import { StateStore, type StateDamage } from '../../state/store.js';
import { readLock } from '../../state/lock.js';
import { readRuntimeFile, type RuntimeFile } from '../../daemon/runtime-file.js';
import { statusDocument } from '../../daemon/status-document.js';
import { StagepostError } from '../../errors.js';
import { formatDuration } from '../../util/duration.js';
import { redactor } from '../../util/redact.js';
import type { BranchStatus, ClusterStatus, StatusDocument } from '../../api.js';
import type { Config } from '../../config/types.js';
import { localView } from '../../cluster/view.js';
import { note, printJson, say, table, writeOut } from '../output.js';
import { short } from './poll.js';
import { medianOfRuns } from './history.js';

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
  const { config, rejected } = await loadForReading(
    resolveConfigPath(opts.config, process.env, process.cwd()),
    process.env,
  );
  const store = new StateStore(config.stateDir, readOnly);
  const daemon = await readLock(path.join(config.stateDir, 'daemon.lock'));
  const runtime = daemon ? readRuntimeFile(config.stateDir) : null;
  // The daemon's own view wins: it knows since when it runs without the edit.
  const configError = runtime?.configError ?? rejected;
  // A host of a cluster: every host and its sites, as the running daemon sees them.
  const clustered = config.cluster ? await clusterView(config, !!daemon, runtime) : null;
  const local = (): StatusDocument => ({
    ...statusDocument(localView(config), store, {
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
    configError,
  });
  const doc = redactor.redactValue(clustered ?? local());
  const cluster = config.cluster;
  // Without the daemon's view, a host of a cluster shows its own sites.
  if (cluster && !doc.cluster) for (const b of doc.branches) b.host = cluster.host;
  if (doc.configError) note(rejectionNote(doc.configError));
  if (opts.json) {
    printJson(doc);
    return 0;
  }
  const withHost = !!cluster;
  const rows = [
    [
      'BRANCH',
      ...(withHost ? ['HOST'] : []),
      'STATE',
      'SOURCES',
      'LAST BUILD',
      'RESULT',
      'WHEN',
      'DURATION',
      'MEDIAN',
      'LAST POLL',
    ],
  ];
  for (const b of doc.branches) {
    // Another host's builds are in its own state_dir.
    const own = !cluster || b.host === cluster.host;
    const typical = own ? medianOfRuns(store.readBranch(b.name).builds) : null;
    rows.push([
      b.name,
      ...(withHost ? [hostCell(b, doc.cluster)] : []),
      b.current
        ? `building (${b.current.step ?? 'starting'}, ${formatDuration(b.current.elapsedMs)})`
        : b.waiting
          ? `waiting: ${b.waiting.reason}`
          : b.state,
      b.sources.map((s) => `${s.name}@${short(s.revision, s.vcs)}`).join(' '),
      b.lastBuild ? `#${b.lastBuild.id}` : '-',
      b.lastBuild?.result ?? '-',
      b.lastBuild ? b.lastBuild.startedAt.replace('T', ' ').slice(0, 19) : '-',
      b.lastBuild?.durationMs != null ? formatDuration(b.lastBuild.durationMs) : '-',
      typical === null ? '-' : formatDuration(typical),
      lastPollCell(b),
    ]);
  }
  say(table(rows).trimEnd());
  const pinned = doc.branches.filter((b) => b.pinned).map((b) => b.name);
  if (pinned.length) say(`pinned: ${pinned.join(' ')}`);
  for (const w of doc.waiting ?? [])
    say(
      `waiting for a slot of ${w.pattern}: ${w.ref} (newest commit seen ${w.since.replace('T', ' ').slice(0, 19)})`,
    );
  if (doc.configError)
    say(
      `config: edit REJECTED at ${doc.configError.file}${doc.configError.line === null ? '' : `:${doc.configError.line}`} since ${doc.configError.since.replace('T', ' ').slice(0, 19)} — running on the last good config`,
    );
  if (doc.cluster) printHosts(doc.cluster);
  say(
    daemon
      ? `daemon: running (pid ${daemon.pid})${cluster ? `, host ${cluster.host}` : ''}${doc.queue.length ? `, queue: ${doc.queue.join(' ')}` : ''}`
      : 'daemon: not running',
  );
  return 0;
}

/** How long `status` waits for the daemon's /api/status. */
const CLUSTER_STATUS_TIMEOUT_MS = 5000;

/**
 * The cluster view from this host's running daemon (`GET /api/status` at the
 * URL it wrote in runtime.json, which `run --http-port` may have moved), or
 * null with a note when there is none: `status` then shows this host's own
 * sites from state_dir.
 */
async function clusterView(
  config: Config,
  running: boolean,
  runtime: RuntimeFile | null,
): Promise<StatusDocument | null> {
  const host = config.cluster!.host;
  const fallback = `showing only host ${host}'s own sites, from ${config.stateDir}`;
  if (!running) {
    note(
      `cluster: the daemon of host ${host} is not running — ${fallback}; the other hosts show with \`stagepost run\``,
    );
    return null;
  }
  // A daemon from before runtime.json named its URL: ci.yaml's.
  const url = runtime?.httpUrl !== undefined ? runtime.httpUrl : (config.http?.publicUrl ?? null);
  if (!url) {
    note(
      `cluster: the daemon of host ${host} has no HTTP API (http: in ci.yaml), which the cluster view comes from — ${fallback}`,
    );
    return null;
  }
  try {
    const res = await fetch(new URL('/api/status', url), {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(CLUSTER_STATUS_TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return (await res.json()) as StatusDocument;
  } catch (err) {
    note(
      `cluster: the daemon of host ${host} did not answer at ${url} (${(err as Error).message}) — ${fallback}`,
    );
    return null;
  }
}

/** A site's host, marked when that host is down (its builds wait for it). */
function hostCell(b: BranchStatus, cluster: ClusterStatus | undefined): string {
  const host = cluster?.hosts.find((h) => h.name === b.host);
  return `${b.host ?? '-'}${host && !host.alive ? ' (down)' : ''}`;
}

/** Every host as its last heartbeat left it, the database, and a ci.yaml that differs. */
function printHosts(cluster: ClusterStatus): void {
  // The ages on the daemon's clock: this host's own beat is its "now".
  const self = cluster.hosts.find((h) => h.name === cluster.host);
  const now = self?.heartbeatAt ? Date.parse(self.heartbeatAt) : Date.now();
  const rows = [['HOST', 'STATE', 'LAST HEARTBEAT', 'RUNNING', 'QUEUED', 'SLOTS', 'CI.YAML']];
  for (const h of cluster.hosts) {
    const me = h.name === cluster.host;
    rows.push([
      me ? `${h.name} (this host)` : h.name,
      h.alive ? 'alive' : 'DOWN',
      me
        ? 'now'
        : h.heartbeatAt
          ? `${formatDuration(Math.max(0, now - Date.parse(h.heartbeatAt)))} ago${h.alive ? '' : ', its queue waits'}`
          : 'never',
      String(h.running),
      String(h.queued),
      String(h.slots),
      h.configDiffers ? 'DIFFERS' : 'same',
    ]);
  }
  say('');
  say(table(rows).trimEnd());
  say(
    cluster.unreachableSince
      ? `database unreachable since ${cluster.unreachableSince.replace('T', ' ').slice(0, 19)} (${cluster.database}): host ${cluster.host} goes on alone with its own sites`
      : `database: ${cluster.database}`,
  );
  for (const h of cluster.hosts)
    if (h.configDiffers)
      say(`warning: host ${h.name} runs a ci.yaml that differs from host ${cluster.host}'s`);
}

/**
 * `stagepost log BRANCH [BUILD]`: a build's log, the last build by default.
 * With `--job NAME`, BUILD is a run of that job (its own numbering).
 */
export async function logCommand(
  branch: string,
  build: string | undefined,
  opts: { config?: string; job?: string },
): Promise<number> {
  const { config, rejected } = await loadForReading(
    resolveConfigPath(opts.config, process.env, process.cwd()),
    process.env,
  );
  if (rejected) note(rejectionNote(rejected));
  if (!config.branches.some((b) => b.name === branch))
    throw new StagepostError('ENOBRANCH', `branch "${branch}" is not in ${config.file}`);
  const job = opts.job;
  if (job !== undefined && !config.jobs.some((j) => j.name === job))
    throw new StagepostError(
      'EUSAGE',
      `job "${job}" is not in ${config.file} — known jobs: ${config.jobs.map((j) => j.name).join(', ') || '(none)'}`,
    );
  const store = new StateStore(config.stateDir, readOnly);
  const state = store.readBranch(branch);
  const kind = job === undefined ? 'build' : `job:${job}`;
  const runs = job === undefined ? state.builds : (state.jobs[job]?.runs ?? []);
  const what = job === undefined ? 'build' : `run of job ${job}`;
  let id: number | undefined;
  if (build === undefined || build === 'last')
    id = state.running?.kind === kind ? state.running.id : runs[0]?.id;
  else if (/^\d+$/.test(build.replace(/^#/, ''))) id = Number(build.replace(/^#/, ''));
  else throw new StagepostError('EUSAGE', `BUILD must be a number like 12, not "${build}"`);
  if (id === undefined)
    throw new StagepostError(
      'ENOTFOUND',
      job === undefined
        ? `${branch} has no builds yet — run \`stagepost update ${branch}\``
        : `job ${job} has not run on ${branch} yet — run \`stagepost job ${job} --branch ${branch}\``,
    );
  const file = job === undefined ? store.logFile(branch, id) : store.jobLogFile(branch, job, id);
  if (!existsSync(file))
    throw new StagepostError(
      build === undefined ? 'ENOTFOUND' : 'EUSAGE',
      `no log for ${branch} ${what} #${id} (kept: ${runs.map((b) => b.id).join(', ') || 'none'})`,
    );
  if (process.stdout.isTTY) {
    // A log holds whatever the steps printed: escaped for the terminal.
    for await (const chunk of createReadStream(file, 'utf8'))
      if (!writeOut(chunk as string)) await once(process.stdout, 'drain');
    return 0;
  }
  await new Promise<void>((resolve, reject) =>
    createReadStream(file)
      .on('error', reject)
      .on('end', resolve)
      .pipe(process.stdout, { end: false }),
  );
  return 0;
}

/** The poll error, or a ref gone from the remote (known from the poll state without a daemon). */
function lastPollCell(b: BranchStatus): string {
  if (b.lastPoll?.error) return `ERROR ${b.lastPoll.error}`;
  const missing = b.sources.filter((s) => s.missing);
  if (missing.length > 0)
    return `ERROR ${missing.map((s) => `ref missing: source ${s.name}: ${s.missing}`).join('; ')}`;
  return b.lastPoll ? b.lastPoll.at.slice(11, 19) : '-';
}
