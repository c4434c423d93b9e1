/**
 * seedMissingStates against a real PostgreSQL: a site with no local state
 * takes the database's only when its dir is a checkout; what belonged to the
 * other host's process (its running build, an unsent notification) is dropped.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { tempDir } from '../helpers/tmp.js';
import { hasPostgres, startPostgres, type PgServer } from '../helpers/postgres.js';
import { seedMissingStates } from '../../src/cluster/seed.js';
import { MIGRATION, SAVE_BRANCH } from '../../src/cluster/tables.js';
import { StateStore, emptyBranchState, type BranchState } from '../../src/state/store.js';
import { createLogger } from '../../src/log.js';
import type { BranchConfig, ClusterConfig } from '../../src/config/types.js';

const describeIf = hasPostgres() ? describe : describe.skip;

describeIf('seedMissingStates (real PostgreSQL)', () => {
  let server: PgServer;
  let t: ReturnType<typeof tempDir>;
  let db: pg.Client;

  beforeAll(async () => {
    server = (await startPostgres({ name: 'cluster-seed' }))!;
    db = new pg.Client({ connectionString: server.url });
    await db.connect();
    await db.query(MIGRATION);
    t = tempDir('stagepost-cluster-seed-');
  }, 120_000);

  afterAll(async () => {
    await db?.end().catch(() => undefined);
    await server?.destroy();
    t?.cleanup();
  });

  const branch = (name: string): BranchConfig =>
    ({
      name,
      host: 'b',
      dir: path.join(t.dir, 'sites', name),
      sources: [{ name: 'app', vcs: 'git', url: 'file:///nowhere', path: 'src/app' }],
    }) as unknown as BranchConfig;

  test('seeds a checkout, never a missing dir nor a site with local state', async () => {
    const cluster: ClusterConfig = { database: server.url, host: 'b', heartbeatMs: 5000 };
    const remoteState: BranchState = {
      ...emptyBranchState(),
      attempted: { app: 'abc123' },
      built: { app: 'abc123' },
      nextId: 8,
      running: {
        id: 7,
        kind: 'build',
        startedAt: new Date().toISOString(),
        forced: false,
        revisions: { app: 'abc123' },
        pgids: [999999],
        pid: 999999,
      },
      pendingNotification: { notification: {} as never, events: ['success'] },
    };
    for (const name of ['checkout', 'nodir', 'plaindir', 'local'])
      await db.query(SAVE_BRANCH, [name, 'a', JSON.stringify(remoteState)]);
    mkdirSync(path.join(t.dir, 'sites', 'checkout', 'src', 'app', '.git'), { recursive: true });
    mkdirSync(path.join(t.dir, 'sites', 'plaindir', 'src', 'app'), { recursive: true });
    mkdirSync(path.join(t.dir, 'sites', 'local', 'src', 'app', '.git'), { recursive: true });

    const store = new StateStore(path.join(t.dir, 'state'));
    await store.init();
    const own = { ...emptyBranchState(), attempted: { app: 'mine' } };
    await store.writeBranch('local', own);
    const lines: string[] = [];
    const log = createLogger({ format: 'json', level: 'debug', write: (l) => lines.push(l) });

    const seeded = await seedMissingStates(
      cluster,
      store,
      ['checkout', 'nodir', 'plaindir', 'local'].map(branch),
      log,
    );
    expect(seeded).toEqual(['checkout']);
    const state = store.readBranch('checkout');
    expect(state.attempted).toEqual({ app: 'abc123' });
    expect(state.nextId).toBe(8);
    expect(state.running).toBeNull();
    expect(state.pendingNotification).toBeUndefined();
    expect(store.readBranch('nodir').attempted).toEqual({});
    expect(store.readBranch('plaindir').attempted).toEqual({});
    expect(store.readBranch('local').attempted).toEqual({ app: 'mine' });
    expect(lines.join('\n')).toContain('site state taken from the cluster database');
  }, 60_000);

  test('an unreachable database seeds nothing and does not throw', async () => {
    const cluster: ClusterConfig = {
      database: 'postgres://stagepost:pw12345@127.0.0.1:1/none',
      host: 'b',
      heartbeatMs: 5000,
    };
    mkdirSync(path.join(t.dir, 'sites', 'other', 'src', 'app', '.git'), { recursive: true });
    const store = new StateStore(path.join(t.dir, 'state2'));
    await store.init();
    const lines: string[] = [];
    const log = createLogger({ format: 'json', level: 'debug', write: (l) => lines.push(l) });
    expect(await seedMissingStates(cluster, store, [branch('other')], log)).toEqual([]);
    expect(lines.join('\n')).toContain('cannot read site states from the cluster database');
  });
});
