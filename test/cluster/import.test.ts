/**
 * `stagepost cluster import` and `cluster status` against a real PostgreSQL,
 * through the real CLI (bin/stagepost.js runs dist/: `npm run build` first).
 *
 * One story: a single host builds two sites on a real git remote; ci.yaml
 * gains `cluster:`, its state_dir is moved to `state-a`, and import writes
 * it into the database (twice: the same result). A daemon of host b then
 * starts on the same machine: the site that moved to it, whose dir is a
 * checkout, takes its state from the database and is not rebuilt; a site of
 * b with no dir is built.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote, gitBranchYaml, type GitRemote } from '../helpers/git.js';
import {
  DaemonProcess,
  isBuildFinished,
  isBuildStarted,
  isPolled,
  runCli,
} from '../helpers/cli.js';
import { hasPostgres, startPostgres, type PgServer } from '../helpers/postgres.js';
import { freePort } from '../plugins/vcs-helpers.js';

const describeIf = hasPostgres() ? describe : describe.skip;

describeIf('cluster import and status (real PostgreSQL, real CLI)', () => {
  let server: PgServer;
  let t: ReturnType<typeof tempDir>;
  let remote: GitRemote;
  let db: pg.Client;
  let configFile: string;

  beforeAll(async () => {
    server = (await startPostgres({ name: 'cluster-cli' }))!;
    db = new pg.Client({ connectionString: server.url });
    await db.connect();
    t = tempDir('stagepost-cluster-cli-');
    remote = makeGitRemote(t.dir);
    remote.commit('main');
    configFile = path.join(t.dir, 'ci.yaml');
  }, 120_000);

  afterAll(async () => {
    await db?.end().catch(() => undefined);
    await server?.destroy();
    t?.cleanup();
  });

  const single = () => `version: 1
state_dir: ./state
poll: { interval: 100ms, timeout: 5s }
steps: [{ name: noop, run: "true" }]
branches:
${gitBranchYaml('alpha', remote.url, 'main')}${gitBranchYaml('beta', remote.url, 'main')}`;

  const clustered = (database = server.url) => `version: 1
state_dir: ./state-{host}
poll: { interval: 100ms, timeout: 5s }
cluster: { database: "${database}", heartbeat: 3s }
steps: [{ name: noop, run: "true" }]
branches:
${gitBranchYaml('alpha', remote.url, 'main', '    host: a\n')}${gitBranchYaml('beta', remote.url, 'main', '    host: b\n')}${gitBranchYaml('gamma', remote.url, 'main', '    host: b\n')}`;

  const asA = { STAGEPOST_HOST: 'a' };

  test('without cluster: exit 2, saying to add it', async () => {
    writeFileSync(configFile, single());
    const r = await runCli(['cluster', 'import', '-c', configFile]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/has no cluster: section — add one/);
    const s = await runCli(['cluster', 'status', '-c', configFile]);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/has no cluster: section/);
  });

  test('a single host builds its sites; import writes them, twice the same', async () => {
    const daemon = new DaemonProcess(configFile);
    try {
      await daemon.waitFor(isBuildFinished(), { count: 2, what: 'two builds', timeoutMs: 60_000 });
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
    // The cluster is turned on: ci.yaml gains cluster:, this host's state_dir is named for it.
    writeFileSync(configFile, clustered());
    renameSync(path.join(t.dir, 'state'), path.join(t.dir, 'state-a'));
    const stateDir = path.join(t.dir, 'state-a');
    writeFileSync(
      path.join(stateDir, 'branches', 'old.json'),
      readFileSync(path.join(stateDir, 'branches', 'alpha.json')),
    );
    mkdirSync(path.join(stateDir, 'outbox'), { recursive: true });
    writeFileSync(path.join(stateDir, 'outbox', '00000000000001-abcdef.json'), '{}');
    const poll = JSON.parse(readFileSync(path.join(stateDir, 'poll.json'), 'utf8')) as {
      tracks: Record<string, { revision: string; changedAt: string }>;
    };
    const keys = Object.keys(poll.tracks);
    expect(keys.length).toBeGreaterThan(0);

    const r = await runCli(['cluster', 'import', '-c', configFile], { env: asA });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`imported ${stateDir} into ${server.url} (this host: a)`);
    expect(lines).toContain(
      `tracks: ${keys.length} new, 0 updated, 0 unchanged, 0 newer in the database (kept)`,
    );
    expect(lines).toContain('branches: 2');
    expect(lines).toContain('  a (this host): alpha (1 new)');
    expect(lines).toContain('  b: beta (1 new)');
    expect(r.stdout).toMatch(/^sites held by other hosts: beta → b; /m);
    expect(lines).toContain(
      `skipped ${path.join(stateDir, 'branches', 'old.json')}: branch old is not in ci.yaml`,
    );
    expect(lines).toContain(
      `outbox: 1 message waiting in ${path.join(stateDir, 'outbox')}; not imported: this host's daemon sends them`,
    );

    const tracks = await db.query<{ key: string; revision: string; changed_at: Date; seq: string }>(
      'SELECT key, revision, changed_at, seq FROM stagepost.tracks ORDER BY key',
    );
    expect(tracks.rows.map((x) => x.key)).toEqual([...keys].sort());
    for (const row of tracks.rows) {
      expect(row.revision).toBe(poll.tracks[row.key].revision);
      expect(row.changed_at.toISOString()).toBe(poll.tracks[row.key].changedAt);
    }
    const branches = await db.query<{
      name: string;
      host: string;
      state: { attempted: Record<string, string>; builds: unknown[] };
      updated_at: Date;
    }>('SELECT name, host, state, updated_at FROM stagepost.branches ORDER BY name');
    expect(branches.rows.map((b) => [b.name, b.host])).toEqual([
      ['alpha', 'a'],
      ['beta', 'b'],
    ]);
    const beta = JSON.parse(readFileSync(path.join(stateDir, 'branches', 'beta.json'), 'utf8')) as {
      attempted: Record<string, string>;
    };
    expect(branches.rows[1].state.attempted).toEqual(beta.attempted);
    expect(beta.attempted.app).toBe(remote.head('main'));
    expect(branches.rows[1].state.builds).toHaveLength(1);

    // Twice: the same rows, nothing rewritten.
    const again = await runCli(['cluster', 'import', '-c', configFile, '--json'], { env: asA });
    expect(again.code).toBe(0);
    const summary = JSON.parse(again.stdout) as {
      tracks: { inserted: number; updated: number; unchanged: number };
      branches: { name: string; result: string }[];
      outbox: { waiting: number };
    };
    expect(summary.tracks).toMatchObject({ inserted: 0, updated: 0, unchanged: keys.length });
    expect(summary.branches.map((b) => [b.name, b.result])).toEqual([
      ['alpha', 'unchanged'],
      ['beta', 'unchanged'],
    ]);
    expect(summary.outbox.waiting).toBe(1);
    const tracks2 = await db.query(
      'SELECT key, revision, changed_at, seq FROM stagepost.tracks ORDER BY key',
    );
    expect(tracks2.rows).toEqual(tracks.rows);
    const branches2 = await db.query(
      'SELECT name, host, state, updated_at FROM stagepost.branches ORDER BY name',
    );
    expect(branches2.rows).toEqual(branches.rows);
  }, 120_000);

  test('a newer revision in the database is kept', async () => {
    const key = (await db.query<{ key: string }>('SELECT key FROM stagepost.tracks LIMIT 1'))
      .rows[0].key;
    await db.query(
      "UPDATE stagepost.tracks SET revision = 'f00d', changed_at = now() + interval '1 hour' WHERE key = $1",
      [key],
    );
    const r = await runCli(['cluster', 'import', '-c', configFile, '--json'], { env: asA });
    expect(r.code).toBe(0);
    expect(
      (JSON.parse(r.stdout) as { tracks: { newerInDatabase: string[] } }).tracks.newerInDatabase,
    ).toEqual([key]);
    const row = await db.query<{ revision: string }>(
      'SELECT revision FROM stagepost.tracks WHERE key = $1',
      [key],
    );
    expect(row.rows[0].revision).toBe('f00d');
    // Back as the import left it, for the daemon below.
    await db.query('DELETE FROM stagepost.tracks WHERE key = $1', [key]);
    expect((await runCli(['cluster', 'import', '-c', configFile], { env: asA })).code).toBe(0);
  }, 60_000);

  test('refused while a daemon holds the state_dir', async () => {
    const lock = path.join(t.dir, 'state-a', 'daemon.lock');
    // This test's own process: alive, so the lock is held.
    writeFileSync(
      lock,
      JSON.stringify({
        pid: process.pid,
        purpose: 'stagepost run (test)',
        since: new Date().toISOString(),
      }),
    );
    try {
      const r = await runCli(['cluster', 'import', '-c', configFile], { env: asA });
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(
        `a stagepost daemon (pid ${process.pid}) runs on state_dir ${path.join(t.dir, 'state-a')}`,
      );
      expect(r.stderr).toContain('stop it, run stagepost cluster import, then start it again');
    } finally {
      rmSync(lock, { force: true });
    }
  });

  test('the host a site moved to takes its state (dir is a checkout): no rebuild; a new site builds', async () => {
    expect(existsSync(path.join(t.dir, 'sites', 'beta', 'src', 'app', '.git'))).toBe(true);
    expect(existsSync(path.join(t.dir, 'sites', 'gamma'))).toBe(false);
    const daemon = new DaemonProcess(configFile, { STAGEPOST_HOST: 'b' }, []);
    try {
      await daemon.waitFor(isBuildFinished('gamma'), { what: 'gamma built', timeoutMs: 60_000 });
      await daemon.waitFor(isPolled('beta'), { count: 3, what: 'beta polled', timeoutMs: 30_000 });
      expect(daemon.count(isBuildStarted('beta'))).toBe(0);
      expect(
        daemon.count(
          (e) =>
            e.msg.startsWith('site state taken from the cluster database') && e.branch === 'beta',
        ),
      ).toBe(1);
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
    const seeded = JSON.parse(
      readFileSync(path.join(t.dir, 'state-b', 'branches', 'beta.json'), 'utf8'),
    ) as {
      attempted: Record<string, string>;
      builds: unknown[];
      running: unknown;
    };
    expect(seeded.attempted.app).toBe(remote.head('main'));
    expect(seeded.builds).toHaveLength(1);
    expect(seeded.running).toBeNull();
    // The database's copy is b's now, and still the built state (not an empty one).
    const row = await db.query<{ host: string; state: { attempted: Record<string, string> } }>(
      "SELECT host, state FROM stagepost.branches WHERE name = 'beta'",
    );
    expect(row.rows[0].host).toBe('b');
    expect(row.rows[0].state.attempted.app).toBe(remote.head('main'));
  }, 120_000);

  test('status: hosts, queues, sites; a dead host, a differing ci.yaml', async () => {
    // Host b's daemon beat (and left its queue); a is shown as it would beat now.
    const hash = (
      JSON.parse(
        (await runCli(['cluster', 'status', '-c', configFile, '--json'], { env: asA })).stdout,
      ) as { configHash: string }
    ).configHash;
    await db.query(
      `INSERT INTO stagepost.hosts (name, config_hash, started_at, heartbeat_at, pid, http_url, running, queued, slots)
       VALUES ('a', $1, now(), now(), 4242, NULL, 1, 2, 3)`,
      [hash],
    );
    await db.query(
      "UPDATE stagepost.hosts SET heartbeat_at = now() - interval '10 minutes', config_hash = 'deadbeefdeadbeef' WHERE name = 'b'",
    );
    const boss = new PgBoss({ connectionString: server.url, schema: 'stagepost_boss' });
    boss.on('error', () => undefined);
    await boss.start();
    try {
      await boss.send('stagepost-host-b', { kind: 'build', branch: 'beta', force: true });
    } finally {
      await boss.stop({ graceful: false, close: true });
    }

    const json = await runCli(['cluster', 'status', '-c', configFile, '--json'], { env: asA });
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as {
      database: string;
      host: string;
      hosts: {
        name: string;
        alive: boolean;
        configDiffers: boolean;
        sites: string[];
        running: number;
        queued: number;
        slots: number;
        heartbeatAgeMs: number;
      }[];
      queues: { name: string; queued: number; active: number }[];
    };
    expect(doc.database).toBe(server.url);
    expect(doc.host).toBe('a');
    expect(doc.hosts.map((h) => [h.name, h.alive, h.configDiffers, h.sites])).toEqual([
      ['a', true, false, ['alpha']],
      ['b', false, true, ['beta', 'gamma']],
    ]);
    expect(doc.hosts[0]).toMatchObject({ running: 1, queued: 2, slots: 3 });
    expect(doc.hosts[1].heartbeatAgeMs).toBeGreaterThanOrEqual(600_000);
    expect(doc.queues).toEqual([
      { name: 'stagepost-host-b', queued: 1, active: 0 },
      { name: 'stagepost-poll', queued: 0, active: 0 },
    ]);

    const text = await runCli(['cluster', 'status', '-c', configFile], { env: asA });
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`database: ${server.url}`);
    expect(lines[1]).toBe(`this host: a, ci.yaml ${hash}`);
    expect(lines[2]).toMatch(/^HOST +ALIVE +HEARTBEAT +RUNNING +QUEUED +SLOTS +CONFIG +SITES$/);
    expect(lines[3]).toMatch(new RegExp(`^a +up +\\S+ ago +1 +2 +3 +${hash} +alpha$`));
    expect(lines[4]).toMatch(
      /^b +DOWN +10m\S* ago +\d+ +\d+ +\d+ +deadbeefdeadbeef DIFFERS +beta gamma$/,
    );
    expect(lines[5]).toBe('');
    expect(lines[6]).toMatch(/^QUEUE +QUEUED +ACTIVE$/);
    expect(lines).toContainEqual(expect.stringMatching(/^stagepost-host-b +1 +0$/));
    expect(lines).toContainEqual(expect.stringMatching(/^stagepost-poll +0 +0$/));
  }, 60_000);

  test('an unreachable database: exit 1, its password masked', async () => {
    const port = await freePort();
    const url = `postgres://stagepost:s3cretpassw0rd@127.0.0.1:${port}/stagepost`;
    const file = path.join(t.dir, 'unreachable.yaml');
    writeFileSync(file, clustered(url));
    for (const cmd of ['status', 'import']) {
      const r = await runCli(['cluster', cmd, '-c', file], { env: asA });
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(
        `cannot reach the cluster database postgres://stagepost:[secure]@127.0.0.1:${port}/stagepost`,
      );
      expect(r.stderr).not.toContain('s3cretpassw0rd');
    }
  }, 60_000);
});
