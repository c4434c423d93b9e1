import { existsSync } from 'node:fs';
import pg from 'pg';
import { describeIf } from './tools.js';
import { hasPostgres, startPostgres, type PgServer } from './postgres.js';

/** `select 1` over a fresh connection; throws when the server does not answer. */
async function selectOne(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    const r = await client.query<{ one: number }>('select 1 as one');
    return r.rows[0].one;
  } finally {
    await client.end();
  }
}

describeIf(hasPostgres())('PostgreSQL test harness', () => {
  let server: PgServer | null = null;
  afterAll(async () => server?.destroy());

  test('starts, stops, restarts, survives a crash, and is destroyed', async () => {
    server = await startPostgres({ name: 'harness' });
    expect(server).not.toBeNull();
    const s = server!;
    expect(s.url).toBe(`postgres://stagepost@127.0.0.1:${s.port}/postgres`);
    expect(await selectOne(s.url)).toBe(1);

    await s.stop();
    await expect(selectOne(s.url)).rejects.toThrow(/ECONNREFUSED|connect/);

    await s.start();
    expect(await selectOne(s.url)).toBe(1);

    // A crash (immediate shutdown) and a start on the same port and data.
    const client = new pg.Client({ connectionString: s.url });
    await client.connect();
    await client.query('create table kept (n int); insert into kept values (42)');
    await client.end();
    await s.kill();
    await expect(selectOne(s.url)).rejects.toThrow();
    await s.start();
    const again = new pg.Client({ connectionString: s.url });
    await again.connect();
    const r = await again.query<{ n: number }>('select n from kept');
    await again.end();
    expect(r.rows).toEqual([{ n: 42 }]);

    await s.destroy();
    expect(existsSync(s.dataDir)).toBe(false);
    await expect(selectOne(s.url)).rejects.toThrow();
  });
});
