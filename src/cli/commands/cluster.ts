import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Config, ClusterConfig } from '../../config/types.js';
import { loadConfig, resolveConfigPath } from '../../config/load.js';
import { StateStore, type BranchState, type StateDamage } from '../../state/store.js';
import { readLock } from '../../state/lock.js';
import {
  BOSS_SCHEMA,
  HOSTS,
  MIGRATION,
  POLL_QUEUE,
  SCHEMA,
  hostQueue,
} from '../../cluster/tables.js';
import { configHash, hostAlive } from '../../cluster/view.js';
import { StagepostError, errorMessage } from '../../errors.js';
import { formatDuration } from '../../util/duration.js';
import { redactor, stripUrlPassword } from '../../util/redact.js';
import { printJson, say, table } from '../output.js';

async function clusterConfig(flag: string | undefined, command: string) {
  const config = await loadConfig(resolveConfigPath(flag, process.env, process.cwd()));
  if (!config.cluster)
    throw new StagepostError(
      'ECONFIG',
      `${config.file} has no cluster: section — add one (cluster: { database: \${STAGEPOST_DATABASE_URL}, host: NAME }) and a host: to every branch, then run stagepost cluster ${command}`,
    );
  // Its password is masked wherever it could show (a driver's error message); the rest of the URL may show.
  redactor.add(urlPassword(config.cluster.database));
  return { config, cluster: config.cluster };
}

function urlPassword(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}

/** The database URL as it may be shown: never with its password. */
const shown = (cluster: ClusterConfig) => redactor.redact(stripUrlPassword(cluster.database));

async function connect(cluster: ClusterConfig, what: string): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: cluster.database,
    connectionTimeoutMillis: 5000,
    application_name: `stagepost cluster ${what}`,
  });
  // A server going away after connecting must fail the command, not crash it.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new StagepostError(
      'EREMOTE',
      `cannot reach the cluster database ${shown(cluster)}: ${redactor.redact(stripUrlPassword(errorMessage(err)))} — check cluster.database and that PostgreSQL is up`,
      { cause: err },
    );
  }
  return client;
}

// ------------------------------------------------------------ import

export interface ImportSummary {
  database: string;
  host: string;
  stateDir: string;
  tracks: { inserted: number; updated: number; unchanged: number; newerInDatabase: string[] };
  branches: {
    name: string;
    host: string;
    result: 'inserted' | 'updated' | 'unchanged' | 'skipped';
    reason?: string;
  }[];
  skipped: { file: string; reason: string }[];
  outbox: { dir: string; waiting: number; undeliverable: number };
}

const UPSERT_TRACK = `
INSERT INTO ${SCHEMA}.tracks AS t (key, revision, missing, refs, changed_at)
VALUES ($1, $2, $3, $4::jsonb, $5)
ON CONFLICT (key) DO UPDATE SET
  revision = EXCLUDED.revision, missing = EXCLUDED.missing, refs = EXCLUDED.refs,
  changed_at = EXCLUDED.changed_at, seq = nextval('${SCHEMA}.answer_seq')
WHERE t.changed_at < EXCLUDED.changed_at
   OR (t.changed_at = EXCLUDED.changed_at
       AND (t.revision, t.missing, t.refs) IS DISTINCT FROM (EXCLUDED.revision, EXCLUDED.missing, EXCLUDED.refs))
RETURNING (xmax = 0) AS inserted`;

const SAME_TRACK = `SELECT changed_at > $2 AS newer FROM ${SCHEMA}.tracks WHERE key = $1`;

/** Written unless the database holds the same, or a state written after the file. */
const UPSERT_BRANCH = `
INSERT INTO ${SCHEMA}.branches AS b (name, host, state, updated_at) VALUES ($1, $2, $3::jsonb, now())
ON CONFLICT (name) DO UPDATE SET host = EXCLUDED.host, state = EXCLUDED.state, updated_at = now()
WHERE (b.host, b.state) IS DISTINCT FROM (EXCLUDED.host, EXCLUDED.state) AND b.updated_at <= $4
RETURNING (xmax = 0) AS inserted`;

const BRANCH_ROW = `SELECT host, (host = $2 AND state = $3::jsonb) AS same, updated_at FROM ${SCHEMA}.branches WHERE name = $1`;

/**
 * `stagepost cluster import`: this host's state_dir (the remotes' last
 * revisions, each site's state and history) into the cluster's database, so
 * that turning the cluster on rebuilds nothing and mails nobody. The outbox
 * stays: this host's daemon sends it, as before.
 */
export async function clusterImportCommand(opts: {
  config?: string;
  json?: boolean;
}): Promise<number> {
  const { config, cluster } = await clusterConfig(opts.config, 'import');
  const daemon = await readLock(path.join(config.stateDir, 'daemon.lock'));
  if (daemon)
    throw new StagepostError(
      'ELOCKED',
      `a stagepost daemon (pid ${daemon.pid}) runs on state_dir ${config.stateDir}: it writes the state while it is read — stop it, run stagepost cluster import, then start it again`,
    );
  const summary = await importState(config, cluster);
  if (opts.json) printJson(summary);
  else printImport(summary);
  return 0;
}

async function importState(config: Config, cluster: ClusterConfig): Promise<ImportSummary> {
  const damaged = new Map<string, string>();
  const store = new StateStore(config.stateDir, {
    moveAside: false,
    onDamage: (d: StateDamage) => damaged.set(d.file, d.problem),
  });
  const summary: ImportSummary = {
    database: shown(cluster),
    host: cluster.host,
    stateDir: config.stateDir,
    tracks: { inserted: 0, updated: 0, unchanged: 0, newerInDatabase: [] },
    branches: [],
    skipped: [],
    outbox: outboxCount(config.stateDir),
  };

  const poll = store.readPoll();
  if (damaged.has(store.pollFile))
    summary.skipped.push({
      file: store.pollFile,
      reason: `damaged (${damaged.get(store.pollFile)}); no track imported`,
    });

  const byName = new Map(config.branches.map((b) => [b.name, b]));
  const states: { name: string; host: string; state: BranchState; mtime: Date }[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(store.branchesDir).sort();
  } catch {
    // No branches dir: a host that never built.
  }
  for (const file of names) {
    const full = path.join(store.branchesDir, file);
    if (!file.endsWith('.json')) {
      if (!file.endsWith('.tmp'))
        summary.skipped.push({ file: full, reason: 'not a state file (<branch>.json)' });
      continue;
    }
    const name = file.slice(0, -'.json'.length);
    const branch = byName.get(name);
    if (!branch) {
      summary.skipped.push({ file: full, reason: `branch ${name} is not in ci.yaml` });
      continue;
    }
    const state = store.readBranch(name);
    if (damaged.has(full)) {
      summary.skipped.push({ file: full, reason: `damaged (${damaged.get(full)})` });
      continue;
    }
    states.push({
      name,
      host: branch.host ?? cluster.host,
      state,
      mtime: statSync(full).mtime,
    });
  }

  const client = await connect(cluster, 'import');
  try {
    await client.query(MIGRATION);
    await client.query('BEGIN');
    for (const [key, t] of Object.entries(poll.tracks)) {
      const changedAt = new Date(t.changedAt);
      const { rows } = await client.query<{ inserted: boolean }>(UPSERT_TRACK, [
        key,
        t.revision,
        t.missing ?? null,
        t.refs ? JSON.stringify(t.refs) : null,
        changedAt,
      ]);
      if (rows[0]) {
        if (rows[0].inserted) summary.tracks.inserted += 1;
        else summary.tracks.updated += 1;
        continue;
      }
      const same = await client.query<{ newer: boolean }>(SAME_TRACK, [key, changedAt]);
      if (same.rows[0]?.newer) summary.tracks.newerInDatabase.push(key);
      else summary.tracks.unchanged += 1;
    }
    for (const s of states) {
      const text = JSON.stringify(s.state);
      const { rows } = await client.query<{ inserted: boolean }>(UPSERT_BRANCH, [
        s.name,
        s.host,
        text,
        s.mtime,
      ]);
      if (rows[0]) {
        summary.branches.push({
          name: s.name,
          host: s.host,
          result: rows[0].inserted ? 'inserted' : 'updated',
        });
        continue;
      }
      const row = await client.query<{ host: string; same: boolean; updated_at: Date }>(
        BRANCH_ROW,
        [s.name, s.host, text],
      );
      const found = row.rows[0];
      summary.branches.push(
        !found || found.same
          ? { name: s.name, host: s.host, result: 'unchanged' }
          : {
              name: s.name,
              host: s.host,
              result: 'skipped',
              reason: `the database holds a newer state (written ${found.updated_at.toISOString()} by host ${found.host}) than ${store.branchFile(s.name)}`,
            },
      );
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw new StagepostError(
      'EREMOTE',
      `importing into ${shown(cluster)} failed, nothing written: ${redactor.redact(errorMessage(err))}`,
      { cause: err },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
  return summary;
}

/** Messages this host's daemon still has to send (they stay here: it sends them). */
function outboxCount(stateDir: string): ImportSummary['outbox'] {
  const dir = path.join(stateDir, 'outbox');
  const count = (d: string) => {
    try {
      return readdirSync(d).filter((n) => n.endsWith('.json')).length;
    } catch {
      return 0;
    }
  };
  return { dir, waiting: count(dir), undeliverable: count(path.join(dir, 'undeliverable')) };
}

function printImport(s: ImportSummary): void {
  say(`imported ${s.stateDir} into ${s.database} (this host: ${s.host})`);
  const t = s.tracks;
  say(
    `tracks: ${t.inserted} new, ${t.updated} updated, ${t.unchanged} unchanged, ${t.newerInDatabase.length} newer in the database (kept)`,
  );
  const written = s.branches.filter((b) => b.result !== 'skipped');
  const hosts = [...new Set(written.map((b) => b.host))].sort();
  say(`branches: ${written.length}${hosts.length ? '' : ' (none)'}`);
  for (const host of hosts) {
    const of = written.filter((b) => b.host === host);
    const counts = (['inserted', 'updated', 'unchanged'] as const)
      .map((r) => [r, of.filter((b) => b.result === r).length] as const)
      .filter(([, n]) => n > 0)
      .map(([r, n]) => `${n} ${r === 'inserted' ? 'new' : r}`)
      .join(', ');
    say(
      `  ${host}${host === s.host ? ' (this host)' : ''}: ${of.map((b) => b.name).join(' ')} (${counts})`,
    );
  }
  const moved = written.filter((b) => b.host !== s.host);
  if (moved.length)
    say(
      `sites held by other hosts: ${moved.map((b) => `${b.name} → ${b.host}`).join(', ')}; each such host takes the state from the database at its start when the site's dir is a checkout there, else it builds the site`,
    );
  for (const b of s.branches.filter((x) => x.result === 'skipped'))
    say(`skipped ${b.name}: ${b.reason}`);
  for (const f of s.skipped) say(`skipped ${f.file}: ${f.reason}`);
  say(
    `outbox: ${s.outbox.waiting} message${s.outbox.waiting === 1 ? '' : 's'} waiting in ${s.outbox.dir}${s.outbox.undeliverable ? ` (${s.outbox.undeliverable} undeliverable)` : ''}; not imported: this host's daemon sends them`,
  );
}

// ------------------------------------------------------------ status

export interface ClusterStatusDocument {
  database: string;
  host: string;
  configHash: string;
  hosts: {
    name: string;
    alive: boolean;
    /** null: never beat (a host of ci.yaml not started yet). */
    heartbeatAt: string | null;
    heartbeatAgeMs: number | null;
    startedAt: string | null;
    pid: number | null;
    httpUrl: string | null;
    running: number;
    queued: number;
    slots: number;
    configHash: string | null;
    configDiffers: boolean;
    sites: string[];
  }[];
  queues: { name: string; queued: number; active: number }[];
}

interface HostRow {
  name: string;
  config_hash: string;
  started_at: Date;
  heartbeat_at: Date;
  pid: number | null;
  http_url: string | null;
  running: number;
  queued: number;
  slots: number;
  age_ms: string;
}

/** Exact counts from pg-boss's job table (getQueues() reports counts its monitor caches). */
const QUEUES = `
SELECT q.name,
  count(j.id) FILTER (WHERE j.state IN ('created', 'retry'))::int AS queued,
  count(j.id) FILTER (WHERE j.state = 'active')::int AS active
FROM ${BOSS_SCHEMA}.queue q LEFT JOIN ${BOSS_SCHEMA}.job j ON j.name = q.name
WHERE q.name = $1 OR q.name LIKE $2
GROUP BY q.name ORDER BY q.name`;

/** `stagepost cluster status [--json]`: every host, the queues, and which sites each holds. */
export async function clusterStatusCommand(opts: {
  config?: string;
  json?: boolean;
}): Promise<number> {
  const { config, cluster } = await clusterConfig(opts.config, 'status');
  const hash = configHash(config);
  const client = await connect(cluster, 'status');
  let hostRows: HostRow[] = [];
  let queues: ClusterStatusDocument['queues'] = [];
  try {
    const tables = await client.query<{ hosts: string | null; boss: string | null }>(
      `SELECT to_regclass('${SCHEMA}.hosts')::text AS hosts, to_regclass('${BOSS_SCHEMA}.job')::text AS boss`,
    );
    if (tables.rows[0]?.hosts) hostRows = (await client.query<HostRow>(HOSTS)).rows;
    if (tables.rows[0]?.boss)
      queues = (
        await client.query<ClusterStatusDocument['queues'][number]>(QUEUES, [
          POLL_QUEUE,
          `${hostQueue('')}%`,
        ])
      ).rows;
  } catch (err) {
    throw new StagepostError(
      'EREMOTE',
      `reading ${shown(cluster)} failed: ${redactor.redact(errorMessage(err))}`,
      { cause: err },
    );
  } finally {
    await client.end().catch(() => undefined);
  }

  const sitesOf = (host: string) =>
    config.branches.filter((b) => b.host === host).map((b) => b.name);
  const hosts: ClusterStatusDocument['hosts'] = hostRows.map((r) => ({
    name: r.name,
    alive: hostAlive(Number(r.age_ms), cluster.heartbeatMs),
    heartbeatAt: new Date(r.heartbeat_at).toISOString(),
    heartbeatAgeMs: Math.max(0, Number(r.age_ms)),
    startedAt: new Date(r.started_at).toISOString(),
    pid: r.pid,
    httpUrl: r.http_url,
    running: r.running,
    queued: r.queued,
    slots: r.slots,
    configHash: r.config_hash,
    configDiffers: r.config_hash !== hash,
    sites: sitesOf(r.name),
  }));
  // Hosts ci.yaml places sites on that never beat.
  for (const name of new Set(config.branches.map((b) => b.host ?? cluster.host)))
    if (!hosts.some((h) => h.name === name))
      hosts.push({
        name,
        alive: false,
        heartbeatAt: null,
        heartbeatAgeMs: null,
        startedAt: null,
        pid: null,
        httpUrl: null,
        running: 0,
        queued: 0,
        slots: 0,
        configHash: null,
        configDiffers: false,
        sites: sitesOf(name),
      });
  hosts.sort((a, b) => a.name.localeCompare(b.name));
  if (!queues.some((q) => q.name === POLL_QUEUE))
    queues.unshift({ name: POLL_QUEUE, queued: 0, active: 0 });
  const doc: ClusterStatusDocument = redactor.redactValue({
    database: shown(cluster),
    host: cluster.host,
    configHash: hash,
    hosts,
    queues,
  });
  if (opts.json) printJson(doc);
  else printStatus(doc);
  return 0;
}

function printStatus(doc: ClusterStatusDocument): void {
  say(`database: ${doc.database}`);
  say(`this host: ${doc.host}, ci.yaml ${doc.configHash}`);
  const rows = [['HOST', 'ALIVE', 'HEARTBEAT', 'RUNNING', 'QUEUED', 'SLOTS', 'CONFIG', 'SITES']];
  for (const h of doc.hosts)
    rows.push([
      h.name,
      h.heartbeatAt === null ? 'never' : h.alive ? 'up' : 'DOWN',
      h.heartbeatAgeMs === null ? '-' : `${formatDuration(h.heartbeatAgeMs)} ago`,
      h.heartbeatAt === null ? '-' : String(h.running),
      h.heartbeatAt === null ? '-' : String(h.queued),
      h.heartbeatAt === null ? '-' : String(h.slots),
      h.configHash === null ? '-' : h.configDiffers ? `${h.configHash} DIFFERS` : h.configHash,
      h.sites.join(' ') || '-',
    ]);
  say(table(rows).trimEnd());
  say('');
  const queueRows = [['QUEUE', 'QUEUED', 'ACTIVE']];
  for (const q of doc.queues) queueRows.push([q.name, String(q.queued), String(q.active)]);
  say(table(queueRows).trimEnd());
}
