import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote, type GitRemote } from '../helpers/git.js';
import { isBuildFinished, isBuildStarted, writeFile, type LogEvent } from '../helpers/cli.js';
import { hasPostgres, startPostgres, type PgServer } from '../helpers/postgres.js';
import { clusterYamlHead, startCluster, type TestCluster } from '../helpers/cluster.js';
import { freePort } from '../plugins/vcs-helpers.js';
import { until } from '../helpers/wait.js';
import { startSmtp, type TestSmtp } from '../notify/helpers.js';

jest.setTimeout(180_000);

const POLL_S = 1;

/**
 * Three daemons on this machine act as three hosts of one cluster: one
 * ci.yaml, one PostgreSQL (started by the test), own state_dir and port.
 */
(hasPostgres() ? describe : describe.skip)('a cluster of three hosts', () => {
  const tmp = tempDir('stagepost-cluster-');
  let pgServer: PgServer;
  let remote: GitRemote;
  let other: GitRemote;
  let configFile: string;
  let databaseUrl: string;
  let cluster: TestCluster;
  let smtp: TestSmtp;
  /** Where host b's site mails, down until a test starts it. */
  let latePort: number;
  let db: pg.Client;
  const mailSubjects = () =>
    smtp.mails.map((m) => /^Subject: (.*)$/m.exec(m.raw)?.[1] ?? '').filter(Boolean);

  beforeAll(async () => {
    pgServer = (await startPostgres({ name: 'cluster' }))!;
    smtp = await startSmtp();
    latePort = await freePort();
    remote = makeGitRemote(tmp.dir, 'app');
    remote.commit('main');
    remote.commit('b2');
    other = makeGitRemote(tmp.dir, 'other');
    other.commit('b3');
    configFile = writeFile(
      path.join(tmp.dir, 'ci.yaml'),
      `${clusterYamlHead(POLL_S)}http:
  listen: 127.0.0.1:1
  token: cluster-test-token
notify:
  - use: email
    transport: smtp://127.0.0.1:${smtp.port}
    from: "Staging <staging@example.test>"
    to: [ops@example.test]
    on: [success, failure]
steps:
  - name: build
    run: 'if [ -f "$STAGEPOST_DIR/../slow-$STAGEPOST_BRANCH" ]; then sleep 4; fi; echo built'
jobs:
  tick:
    schedule: "*/2 * * * * *"
    branches: all
    run: "true"
    notify_on: []
branches:
  s1:
    host: a
    dir: ./sites/s1
    sources: [{ name: app, vcs: git, url: "${remote.url}", ref: main }]
  s2:
    host: b
    dir: ./sites/s2
    notify:
      - use: email
        transport: smtp://127.0.0.1:${latePort}
        from: "Staging <staging@example.test>"
        to: [team-b@example.test]
        on: [success, failure]
    sources: [{ name: app, vcs: git, url: "${remote.url}", ref: b2 }]
  s3:
    host: c
    dir: ./sites/s3
    # Another repository, asked only at start and by the commit hook.
    poll: { interval: 1h }
    sources: [{ name: app, vcs: git, url: "${other.url}", ref: b3 }]
`,
    );
    // A password in the URL (trust authentication ignores it) must never be shown.
    databaseUrl = pgServer.url.replace('stagepost@', 'stagepost:Pg-s3cret@');
    cluster = await startCluster(configFile, ['a', 'b', 'c'], databaseUrl);
    db = new pg.Client({ connectionString: pgServer.url });
    // This test stops the server under it.
    db.on('error', () => undefined);
    await db.connect();
  });

  afterAll(async () => {
    await cluster?.stopAll();
    await db?.end().catch(() => undefined);
    await smtp?.close();
    await pgServer?.destroy();
    tmp.cleanup();
  });

  const startedOn = (host: string, branch?: string) =>
    cluster.hosts[host].events.filter(isBuildStarted(branch)).map((e: LogEvent) => e.branch);

  test('each host builds only its own sites', async () => {
    await Promise.all([
      cluster.hosts.a.waitFor(isBuildFinished('s1'), { what: 's1 built on a' }),
      cluster.hosts.b.waitFor(isBuildFinished('s2'), { what: 's2 built on b' }),
      cluster.hosts.c.waitFor(isBuildFinished('s3'), { what: 's3 built on c' }),
    ]);
    expect(startedOn('a')).toEqual(['s1']);
    expect(startedOn('b')).toEqual(['s2']);
    expect(startedOn('c')).toEqual(['s3']);
    // A job of every branch runs on each branch's host, once.
    const jobsOn = async (host: string) =>
      (
        await cluster.hosts[host].waitFor((e) => e.msg === 'job finished', {
          what: `a job run on ${host}`,
        })
      ).map((e) => e.branch);
    expect(new Set(await jobsOn('a'))).toEqual(new Set(['s1']));
    expect(new Set(await jobsOn('b'))).toEqual(new Set(['s2']));
    expect(new Set(await jobsOn('c'))).toEqual(new Set(['s3']));
    const status = await cluster.status('b');
    expect(status.cluster!.database).toContain('[secure]');
    expect(JSON.stringify(status)).not.toContain('Pg-s3cret');
    for (const host of ['a', 'b', 'c'])
      expect(cluster.hosts[host].stderr).not.toContain('Pg-s3cret');
  });

  test('one query of the repository per cycle for the whole cluster', async () => {
    // Let every host reach its steady cycle, then count over whole seconds.
    await cluster.waitStatus(
      'a',
      (s) => s.cluster!.hosts.filter((h) => h.alive).length === 3,
      'three hosts alive',
    );
    const before = cluster.queries();
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 6_000));
    const cycles = (Date.now() - started) / (POLL_S * 1000);
    const queries = cluster.queries() - before;
    console.log(
      `cluster queries: ${queries} in ${cycles.toFixed(1)} cycles (a ${cluster.queries('a')}, b ${cluster.queries('b')}, c ${cluster.queries('c')} in all)`,
    );
    // Three hosts polling on their own would make about 3 × cycles.
    // A loaded machine may let a slot pass unclaimed; it never lets one be claimed twice.
    expect(queries).toBeGreaterThanOrEqual(Math.floor(cycles / 2));
    expect(queries).toBeLessThanOrEqual(Math.ceil(cycles) + 1);
  });

  test('a commit hook sent to host a reaches the host of its site; any host shows the build', async () => {
    const mailsBefore = smtp.mails.length;
    const commit = other.commit('b3', 'third site change');
    // s3 is polled hourly: only the hook, sent to another host, can find this commit.
    const hook = await fetch(`http://127.0.0.1:${cluster.ports.a}/api/poll?branch=s3`, {
      method: 'POST',
      headers: { authorization: 'Bearer cluster-test-token' },
    });
    expect(hook.status).toBe(200);
    await cluster.hosts.c.waitFor(isBuildFinished('s3'), { count: 2, what: 's3 rebuilt on c' });
    expect(startedOn('a')).toEqual(['s1']);
    expect(startedOn('b')).toEqual(['s2']);
    const seen = await cluster.waitStatus(
      'a',
      (s) => s.branches.find((b) => b.name === 's3')?.lastBuild?.id === 2,
      "s3's second build in host a's status",
    );
    const s3 = seen.branches.find((b) => b.name === 's3')!;
    expect(s3.host).toBe('c');
    expect(s3.sources[0].revision).toBe(commit);
    // History comes from host c through host a.
    const history = await fetch(`http://127.0.0.1:${cluster.ports.a}/api/branches/s3/builds`);
    expect(history.status).toBe(200);
    expect(history.headers.get('x-stagepost-host')).toBe('c');
    expect(((await history.json()) as Array<{ id: number }>)[0].id).toBe(2);
    // One mail for the one build, though three hosts saw the commit.
    await smtp.waitFor(mailsBefore + 1);
    await new Promise((r) => setTimeout(r, 1500));
    expect(smtp.mails.length).toBe(mailsBefore + 1);
  });

  test('a forced build asked of host a runs on host b', async () => {
    const res = await fetch(`http://127.0.0.1:${cluster.ports.a}/api/branches/s2/build`, {
      method: 'POST',
      headers: { authorization: 'Bearer cluster-test-token' },
    });
    expect(res.status).toBe(202);
    await cluster.hosts.b.waitFor(isBuildFinished('s2'), { count: 2, what: 'forced s2 on b' });
    expect(startedOn('a')).toEqual(['s1']);
  });

  test('host b killed mid-build: redone when it is back, the others go on', async () => {
    writeFile(path.join(tmp.dir, 'sites', 'slow-s2'), '');
    const startedBefore = cluster.hosts.b.count(isBuildStarted('s2'));
    remote.commit('b2', 'slow change');
    await cluster.hosts.b.waitFor(isBuildStarted('s2'), {
      count: startedBefore + 1,
      what: 'slow s2 started on b',
    });
    await cluster.hosts.b.kill9();
    // Host a goes on: a commit of its own is built, and it sees b as down.
    const s1Before = cluster.hosts.a.count(isBuildFinished('s1'));
    remote.commit('main', 'while b is down');
    await cluster.hosts.a.waitFor(isBuildFinished('s1'), { count: s1Before + 1, what: 's1 on a' });
    await cluster.waitStatus(
      'a',
      (s) => s.cluster!.hosts.find((h) => h.name === 'b')?.alive === false,
      'host b shown as down',
    );
    // It comes back with an edited ci.yaml: warned about, not refused.
    const edited = writeFile(
      path.join(tmp.dir, 'ci-b.yaml'),
      readFileSync(configFile, 'utf8') + '# edited on host b only\n',
    );
    const b = cluster.start('b', edited);
    const [redone] = await b.waitFor(isBuildFinished('s2'), { what: 's2 redone on b' });
    expect(redone.result).toBe('success');
    await cluster.waitStatus(
      'c',
      (s) =>
        s.cluster!.hosts.find((h) => h.name === 'b')?.alive === true &&
        s.branches.find((x) => x.name === 's2')?.lastBuild?.result === 'success',
      "host b back, and s2's redone build in host c's status",
    );
    expect(startedOn('c').every((n) => n === 's3')).toBe(true);
    const differs = await cluster.waitStatus(
      'a',
      (s) => s.cluster!.hosts.find((h) => h.name === 'b')?.configDiffers === true,
      "host b's other ci.yaml flagged",
    );
    expect(differs.cluster!.hosts.find((h) => h.name === 'c')!.configDiffers).toBe(false);
    await cluster.hosts.a.waitFor(
      (e) => e.msg.startsWith('another host runs a different ci.yaml') && e.host === 'b',
      { what: 'warning about b on a' },
    );
  });

  test('the unsent mail of a host that is down is sent by another host, once', async () => {
    const b = cluster.hosts.b;
    const finished = b.count(isBuildFinished('s2'));
    remote.commit('b2', 'mail while b goes down');
    await b.waitFor(isBuildFinished('s2'), { count: finished + 1, what: 's2 built on b' });
    // Its mail cannot be delivered (nothing listens yet) and waits in b's outbox, and in the database.
    const open = async () =>
      (
        await db.query<{ n: string }>(
          "SELECT count(*) AS n FROM stagepost.outbox WHERE host = 'b' AND done_at IS NULL AND record::text LIKE '%mail while b goes down%'",
        )
      ).rows[0].n;
    await until(async () => (await open()) === '1', "b's undelivered mail in the database");
    // Its id: b's other message of this build (to ops, delivered at once) says the same.
    const [{ id }] = (
      await db.query<{ id: string }>(
        "SELECT id FROM stagepost.outbox WHERE host = 'b' AND done_at IS NULL AND record::text LIKE '%mail while b goes down%'",
      )
    ).rows as [{ id: string }];
    await b.kill9();
    const late = await startSmtp(latePort);
    try {
      const wanted = () => late.mails.filter((m) => m.raw.includes('mail while b goes down'));
      await until(() => wanted().length === 1, 'the mail sent by another host', 30_000);
      // One host took it (others may have taken older messages of b's in an earlier test).
      const takers = ['a', 'c'].filter((h) =>
        cluster.hosts[h].events.some(
          (e) =>
            e.msg === 'sending the unsent mail of a host that is down' &&
            (e.ids as string[]).includes(id),
        ),
      );
      expect(takers).toHaveLength(1);
      await until(async () => (await open()) === '0', 'the mail marked sent');
      // b comes back with the message still in its own outbox: it is not sent again.
      const back = cluster.start('b');
      await back.waitFor((e) => e.msg === 'stagepost started', { what: 'b started' });
      await new Promise((r) => setTimeout(r, 1500));
      expect(wanted()).toHaveLength(1);
    } finally {
      await late.close();
    }
  });

  test('PostgreSQL stopped mid-build: the build finishes, nothing is lost or doubled', async () => {
    writeFile(path.join(tmp.dir, 'sites', 'slow-s1'), '');
    const a = cluster.hosts.a;
    const startedBefore = a.count(isBuildStarted('s1'));
    const finishedBefore = a.count(isBuildFinished('s1'));
    const mailsBefore = smtp.mails.length;
    remote.commit('main', 'built while the database is down');
    await a.waitFor(isBuildStarted('s1'), { count: startedBefore + 1, what: 's1 started' });
    await pgServer.stop();
    await a.waitFor(isBuildFinished('s1'), { count: finishedBefore + 1, what: 's1 finished' });
    const down = await cluster.waitStatus(
      'a',
      (s) => s.cluster!.unreachableSince !== null,
      'database unreachable shown',
    );
    expect(down.cluster!.unreachableSince).toMatch(/^\d{4}-/);
    // The mail of the build goes out from host a's own outbox meanwhile.
    await smtp.waitFor(mailsBefore + 1);
    await pgServer.start();
    await cluster.waitStatus(
      'a',
      (s) => s.cluster!.unreachableSince === null,
      'database back',
      60_000,
    );
    // What host a owed the database is there now.
    await db.end().catch(() => undefined);
    db = new pg.Client({ connectionString: pgServer.url });
    db.on('error', () => undefined);
    await db.connect();
    const id = finishedBefore + 1;
    const newest = async () =>
      (
        await db.query<{ state: { builds: Array<{ id: number }> } }>(
          'SELECT state FROM stagepost.branches WHERE name = $1',
          ['s1'],
        )
      ).rows[0]?.state.builds[0]?.id ?? 0;
    await until(async () => (await newest()) >= id, "s1's build written to the database", 20_000);
    expect(a.count(isBuildStarted('s1'))).toBe(startedBefore + 1);
    await new Promise((r) => setTimeout(r, 1500));
    expect(smtp.mails.length).toBe(mailsBefore + 1);
    expect(mailSubjects().length).toBeGreaterThan(0);
  });
});
