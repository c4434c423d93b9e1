/**
 * stagepost's own tables, beside pg-boss's schema: what every host must see
 * (hosts and their load, the answers of the remotes, each site's state).
 * Jobs (polls, requests to a host) are pg-boss's.
 */
export const SCHEMA = 'stagepost';
export const BOSS_SCHEMA = 'stagepost_boss';

/** NOTIFY channel of the remotes' answers: every host reacts to a commit at once. */
export const ANSWER_CHANNEL = 'stagepost_answer';

/** Held while creating the tables, so hosts starting together do not race on CREATE. */
const MIGRATION_LOCK = 0x5354_4750; // "STGP"

export const MIGRATION = `
SELECT pg_advisory_xact_lock(${MIGRATION_LOCK});
CREATE SCHEMA IF NOT EXISTS ${SCHEMA};
CREATE TABLE IF NOT EXISTS ${SCHEMA}.hosts (
  name text PRIMARY KEY,
  config_hash text NOT NULL,
  started_at timestamptz NOT NULL,
  heartbeat_at timestamptz NOT NULL,
  pid integer,
  http_url text,
  running integer NOT NULL DEFAULT 0,
  queued integer NOT NULL DEFAULT 0,
  slots integer NOT NULL DEFAULT 1,
  status jsonb
);
CREATE SEQUENCE IF NOT EXISTS ${SCHEMA}.answer_seq;
CREATE TABLE IF NOT EXISTS ${SCHEMA}.tracks (
  key text PRIMARY KEY,
  revision text,
  missing text,
  refs jsonb,
  changed_at timestamptz NOT NULL,
  seq bigint NOT NULL DEFAULT nextval('${SCHEMA}.answer_seq')
);
CREATE INDEX IF NOT EXISTS tracks_seq ON ${SCHEMA}.tracks (seq);
CREATE TABLE IF NOT EXISTS ${SCHEMA}.outbox (
  id text PRIMARY KEY,
  host text NOT NULL,
  record jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  taken_by text,
  done_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_open ON ${SCHEMA}.outbox (host) WHERE done_at IS NULL;
CREATE TABLE IF NOT EXISTS ${SCHEMA}.sites (
  pattern text PRIMARY KEY,
  keeper text NOT NULL,
  body jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ${SCHEMA}.branches (
  name text PRIMARY KEY,
  host text NOT NULL,
  state jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
`;

/** One statement: upsert the changed tracks and tell every host. */
export const SHARE_ANSWER = `
WITH input AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb)
    AS t(key text, revision text, missing text, refs jsonb, changed_at timestamptz)
), up AS (
  INSERT INTO ${SCHEMA}.tracks AS t (key, revision, missing, refs, changed_at)
  SELECT key, revision, missing, refs, changed_at FROM input
  ON CONFLICT (key) DO UPDATE SET
    revision = EXCLUDED.revision, missing = EXCLUDED.missing, refs = EXCLUDED.refs,
    changed_at = EXCLUDED.changed_at, seq = nextval('${SCHEMA}.answer_seq')
  RETURNING t.seq
)
SELECT pg_notify('${ANSWER_CHANNEL}', jsonb_build_object(
  'answer', $2::jsonb, 'seq', (SELECT max(seq) FROM up))::text)`;

export const TRACKS_SINCE = `SELECT key, revision, missing, refs, changed_at, seq FROM ${SCHEMA}.tracks WHERE seq > $1 ORDER BY seq`;

export const HEARTBEAT = `
INSERT INTO ${SCHEMA}.hosts AS h (name, config_hash, started_at, heartbeat_at, pid, http_url, running, queued, slots, status)
VALUES ($1, $2, $3, now(), $4, $5, $6, $7, $8, $9)
ON CONFLICT (name) DO UPDATE SET config_hash = EXCLUDED.config_hash, started_at = EXCLUDED.started_at,
  heartbeat_at = now(), pid = EXCLUDED.pid, http_url = EXCLUDED.http_url, running = EXCLUDED.running,
  queued = EXCLUDED.queued, slots = EXCLUDED.slots, status = EXCLUDED.status
RETURNING (SELECT coalesce(jsonb_agg(jsonb_build_object(
  'name', o.name, 'configHash', o.config_hash, 'startedAt', o.started_at, 'heartbeatAt', o.heartbeat_at,
  'pid', o.pid, 'httpUrl', o.http_url, 'running', o.running, 'queued', o.queued, 'slots', o.slots,
  'status', o.status, 'ageMs', (extract(epoch FROM now() - o.heartbeat_at) * 1000)::bigint)), '[]'::jsonb)
  FROM ${SCHEMA}.hosts o WHERE o.name <> $1) AS others`;

export const HOSTS = `SELECT name, config_hash, started_at, heartbeat_at, pid, http_url, running, queued, slots,
  (extract(epoch FROM now() - heartbeat_at) * 1000)::bigint AS age_ms FROM ${SCHEMA}.hosts ORDER BY name`;

export const SAVE_BRANCH = `
INSERT INTO ${SCHEMA}.branches (name, host, state, updated_at) VALUES ($1, $2, $3, now())
ON CONFLICT (name) DO UPDATE SET host = EXCLUDED.host, state = EXCLUDED.state, updated_at = now()`;

/** A message in a host's outbox, so a live host can send it while that host is down. */
export const OUTBOX_PUT = `INSERT INTO ${SCHEMA}.outbox (id, host, record, done_at)
  VALUES ($1, $2, $3, CASE WHEN $4::boolean THEN now() END) ON CONFLICT (id) DO NOTHING`;
export const OUTBOX_DONE = `UPDATE ${SCHEMA}.outbox SET done_at = now() WHERE id = $1`;
/**
 * Take the unsent mail of hosts silent for longer than $2 ms: one UPDATE,
 * so two live hosts never take the same message.
 */
export const OUTBOX_ADOPT = `
UPDATE ${SCHEMA}.outbox o SET taken_by = $1
WHERE o.done_at IS NULL AND o.taken_by IS NULL AND o.host <> $1 AND o.host IN (
  SELECT name FROM ${SCHEMA}.hosts WHERE heartbeat_at < now() - make_interval(secs => $2::double precision / 1000))
RETURNING o.id, o.record`;
/** Of these messages of this host, the ones another host sent or took meanwhile. */
export const OUTBOX_SETTLED = `SELECT id FROM ${SCHEMA}.outbox WHERE id = ANY($1::text[]) AND (done_at IS NOT NULL OR (taken_by IS NOT NULL AND taken_by <> $2))`;

/** A pattern on several hosts: its keeper's sites, for the hosts they are placed on. */
export const SITES_SAVE = `INSERT INTO ${SCHEMA}.sites (pattern, keeper, body, updated_at) VALUES ($1, $2, $3, now())
  ON CONFLICT (pattern) DO UPDATE SET keeper = EXCLUDED.keeper, body = EXCLUDED.body, updated_at = now()`;
export const SITES_READ = `SELECT pattern, body FROM ${SCHEMA}.sites WHERE pattern = ANY($1::text[])`;

export const READ_BRANCH = `SELECT host, state FROM ${SCHEMA}.branches WHERE name = $1`;

/** pg-boss queue of the polls: one queued and one running per repository, cluster-wide. */
export const POLL_QUEUE = 'stagepost-poll';
/** pg-boss queue of requests to one host (forced builds, jobs run by hand). */
export const hostQueue = (host: string) => `stagepost-host-${host}`;
