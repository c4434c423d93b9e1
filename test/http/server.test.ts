import { request } from 'node:http';
import { memoryLogger } from '../../src/log.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { Redactor } from '../../src/util/redact.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';
import { parseExposition } from '../helpers/metrics.js';
import { FakeDaemon, branchStatus, buildSummary, clusterStatus } from './fake-daemon.js';

const TOKEN = 'test-token-0123456789';
const auth = { Authorization: `Bearer ${TOKEN}` };

describe('http server', () => {
  let tmp: ReturnType<typeof tempDir>;
  let fake: FakeDaemon;
  let metrics: Metrics;
  let server: HttpServer;
  let log: ReturnType<typeof memoryLogger>;

  beforeEach(async () => {
    tmp = tempDir();
    fake = new FakeDaemon(tmp.dir);
    fake.doc.branches = [branchStatus('staging'), branchStatus('branch1', { state: 'failing' })];
    fake.doc.queue = ['branch1'];
    fake.doc.outbox = 3;
    metrics = createMetrics();
    log = memoryLogger();
    const redactor = new Redactor();
    redactor.add('hunter2-secret');
    server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      token: TOKEN,
      api: fake,
      metrics,
      log,
      redact: (t) => redactor.redact(t),
    });
  });

  afterEach(async () => {
    await server.close();
    tmp.cleanup();
  });

  const url = (p: string) => server.url + p;

  test('GET /api/status is the status document, redacted', async () => {
    fake.branch('staging').lastPoll = {
      at: new Date().toISOString(),
      error: 'auth failed for https://bob:hunter2-secret@git.example.com/x.git',
    };
    const res = await fetch(url('/api/status'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const body = await res.json();
    expect(body.branches.map((b: { name: string }) => b.name)).toEqual(['staging', 'branch1']);
    expect(body.queue).toEqual(['branch1']);
    expect(JSON.stringify(body)).not.toContain('hunter2-secret');
    expect(body.branches[0].lastPoll.error).toContain('[secure]');
  });

  test('GET history and mail of a branch; 404 for an unknown one', async () => {
    fake.builds.set('staging', [
      buildSummary(2),
      buildSummary(1, { result: 'failure', failedStep: 'test' }),
    ]);
    fake.mail.set('staging', [
      {
        id: 'm1',
        receivedAt: new Date().toISOString(),
        from: 'app@x',
        to: ['bob@x'],
        subject: 'Welcome',
        size: 120,
        relayed: null,
      },
    ]);
    const builds = await (await fetch(url('/api/branches/staging/builds'))).json();
    expect(builds.map((b: { id: number }) => b.id)).toEqual([2, 1]);
    const mail = await (await fetch(url('/api/branches/staging/mail'))).json();
    expect(mail[0].subject).toBe('Welcome');
    const missing = await fetch(url('/api/branches/nope/builds'));
    expect(missing.status).toBe(404);
    expect((await missing.json()).error).toMatch(/unknown branch "nope"/);
    expect((await fetch(url('/api/branches/nope/mail'))).status).toBe(404);
  });

  test('GET / serves the dashboard with a strict CSP', async () => {
    const res = await fetch(url('/'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('content-security-policy')).toMatch(
      /script-src 'sha256-[A-Za-z0-9+/=]+'/,
    );
    const html = await res.text();
    expect(html).toContain('<title>stagepost</title>');
    expect(html).not.toContain(TOKEN);
  });

  describe('POST authentication', () => {
    test('401 without a token and with a wrong one; nothing happens', async () => {
      const none = await fetch(url('/api/poll'), { method: 'POST' });
      expect(none.status).toBe(401);
      const wrong = await fetch(url('/api/branches/staging/build'), {
        method: 'POST',
        headers: { Authorization: 'Bearer not-the-token' },
      });
      expect(wrong.status).toBe(401);
      const prefix = await fetch(url('/api/poll'), {
        method: 'POST',
        headers: { Authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      });
      expect(prefix.status).toBe(401);
      const basic = await fetch(url('/api/poll'), {
        method: 'POST',
        headers: { Authorization: `Basic ${TOKEN}` },
      });
      expect(basic.status).toBe(401);
      expect(fake.polls).toEqual([]);
      expect(fake.forced).toEqual([]);
    });

    test('the token never reaches the log', async () => {
      await fetch(url('/api/poll'), { method: 'POST', headers: auth });
      await fetch(url('/api/poll'), {
        method: 'POST',
        headers: { Authorization: 'Bearer wrong-one-xyz' },
      });
      expect(log.lines.length).toBeGreaterThan(0);
      expect(JSON.stringify(log.lines)).not.toContain(TOKEN);
      expect(JSON.stringify(log.lines)).not.toContain('wrong-one-xyz');
    });

    test('without a configured token every POST is refused with 403', async () => {
      const open = await startHttpServer({
        host: '127.0.0.1',
        port: 0,
        api: fake,
        metrics: createMetrics(),
        log,
        redact: (t) => t,
      });
      try {
        const res = await fetch(open.url + '/api/poll', { method: 'POST', headers: auth });
        expect(res.status).toBe(403);
        expect((await res.json()).error).toMatch(/http\.token/);
        expect(fake.polls).toEqual([]);
      } finally {
        await open.close();
      }
    });
  });

  test('POST /api/poll polls (one branch or all) and never forces a build', async () => {
    const one = await fetch(url('/api/poll?branch=staging'), { method: 'POST', headers: auth });
    expect(one.status).toBe(200);
    expect(await one.json()).toEqual({ polled: ['staging'] });
    // A commit hook may post a JSON or form body; it is ignored.
    const all = await fetch(url('/api/poll'), {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'payload=%7B%7D',
    });
    expect(all.status).toBe(200);
    expect(await all.json()).toEqual({ polled: ['staging', 'branch1'] });
    expect(fake.polls).toEqual(['staging', undefined]);
    expect(fake.forced).toEqual([]);
  });

  test('POST /api/poll waits for the poll to finish', async () => {
    let release!: () => void;
    fake.pollNow = () =>
      new Promise<void>((resolve) => {
        release = resolve;
      });
    let answered = false;
    const pending = fetch(url('/api/poll'), { method: 'POST', headers: auth }).then((r) => {
      answered = true;
      return r;
    });
    await until(() => release !== undefined, 'the request to reach the fake daemon');
    expect(answered).toBe(false);
    release();
    expect((await pending).status).toBe(200);
  });

  test('404 for poll and build of an unknown branch', async () => {
    expect(
      (await fetch(url('/api/poll?branch=nope'), { method: 'POST', headers: auth })).status,
    ).toBe(404);
    expect(
      (await fetch(url('/api/branches/nope/build'), { method: 'POST', headers: auth })).status,
    ).toBe(404);
    expect(fake.polls).toEqual([]);
    expect(fake.forced).toEqual([]);
  });

  test('POST build queues a forced build: 202', async () => {
    const res = await fetch(url('/api/branches/branch1/build'), { method: 'POST', headers: auth });
    expect(res.status).toBe(202);
    expect(fake.forced).toEqual(['branch1']);
    expect(fake.polls).toEqual([]);
  });

  describe('build logs', () => {
    beforeEach(() => {
      fake.builds.set('staging', [buildSummary(7), buildSummary(6)]);
      fake.writeLog('staging', 6, 'old build\n');
      fake.writeLog('staging', 7, 'line one\nline two\n');
    });

    test('the whole log as text, by id and as "last"', async () => {
      const res = await fetch(url('/api/branches/staging/builds/6/log'));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await res.text()).toBe('old build\n');
      const last = await fetch(url('/api/branches/staging/builds/last/log'));
      expect(last.headers.get('x-build-id')).toBe('7');
      expect(await last.text()).toBe('line one\nline two\n');
    });

    test('"last" is the running build while one runs', async () => {
      fake.branch('staging').current = {
        id: 8,
        kind: 'build',
        step: 'build',
        startedAt: new Date().toISOString(),
        elapsedMs: 1000,
      };
      fake.writeLog('staging', 8, 'running\n');
      expect(await (await fetch(url('/api/branches/staging/builds/last/log'))).text()).toBe(
        'running\n',
      );
    });

    test('"last" is the last build while a job runs; a job run has its own log route', async () => {
      fake.branch('staging').current = {
        id: 40,
        kind: 'job:sync',
        step: 'sync',
        startedAt: new Date().toISOString(),
        elapsedMs: 1000,
      };
      fake.jobRuns.set('staging', { sync: [buildSummary(39, { kind: 'job:sync' })] });
      fake.writeLog('staging', 39, 'synced\n', false, 'sync');
      const last = await fetch(url('/api/branches/staging/builds/last/log'));
      expect(last.headers.get('x-build-id')).toBe('7');
      const run = await fetch(url('/api/branches/staging/jobs/sync/runs/last/log'));
      expect(run.headers.get('x-build-id')).toBe('39');
      expect(await run.text()).toBe('synced\n');
      expect((await fetch(url('/api/branches/staging/jobs/sync/runs/7/log'))).status).toBe(404);
      expect((await fetch(url('/api/branches/staging/jobs/nope/runs/39/log'))).status).toBe(404);
      const history = (await (await fetch(url('/api/branches/staging/history'))).json()) as {
        builds: Array<{ id: number }>;
        jobs: Record<string, Array<{ id: number }>>;
      };
      expect(history.builds.map((b) => b.id)).toEqual([7, 6]);
      expect(history.jobs.sync.map((r) => r.id)).toEqual([39]);
    });

    test('?offset returns only what follows, with the size in a header', async () => {
      const first = await fetch(url('/api/branches/staging/builds/7/log?offset=9'));
      expect(await first.text()).toBe('line two\n');
      expect(first.headers.get('x-log-size')).toBe('18');
      expect(first.headers.get('x-log-next-offset')).toBe('18');
      fake.writeLog('staging', 7, 'line three ✓\n', true);
      const next = await fetch(url('/api/branches/staging/builds/7/log?offset=18'));
      expect(await next.text()).toBe('line three ✓\n');
      const end = await fetch(
        url(`/api/branches/staging/builds/7/log?offset=${next.headers.get('x-log-next-offset')}`),
      );
      expect(await end.text()).toBe('');
      expect((await fetch(url('/api/branches/staging/builds/7/log?offset=-1'))).status).toBe(400);
    });

    test('a multi-byte character cut by the end of the file is held back', async () => {
      fake.writeLog(
        'staging',
        7,
        Buffer.concat([Buffer.from('ok '), Buffer.from('✓').subarray(0, 2)]),
      );
      const res = await fetch(url('/api/branches/staging/builds/7/log'));
      expect(await res.text()).toBe('ok ');
      expect(res.headers.get('x-log-next-offset')).toBe('3');
      expect(res.headers.get('x-log-size')).toBe('5');
    });

    test('404 for an unknown branch, build or id', async () => {
      expect((await fetch(url('/api/branches/nope/builds/7/log'))).status).toBe(404);
      expect((await fetch(url('/api/branches/staging/builds/99/log'))).status).toBe(404);
      expect((await fetch(url('/api/branches/staging/builds/abc/log'))).status).toBe(404);
      expect((await fetch(url('/api/branches/branch1/builds/last/log'))).status).toBe(404);
    });
  });

  test('GET /metrics is Prometheus text with stagepost_ series and branch labels', async () => {
    metrics.countPolls(['staging'], false);
    metrics.buildsTotal.inc({ branch: 'branch1', result: 'failure' });
    metrics.buildDurationSeconds.observe({ branch: 'branch1' }, 61);
    metrics.buildRunning.set({ branch: 'staging' }, 1);
    const res = await fetch(url('/metrics'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const samples = parseExposition(await res.text());
    expect(samples.get('stagepost_polls_total{branch="staging"}')).toBe(1);
    expect(samples.get('stagepost_builds_total{branch="branch1",result="failure"}')).toBe(1);
    expect(samples.get('stagepost_build_duration_seconds_count{branch="branch1"}')).toBe(1);
    expect(samples.get('stagepost_build_running{branch="staging"}')).toBe(1);
    // Gauges mirrored from the status at scrape time.
    expect(samples.get('stagepost_queue_length')).toBe(1);
    expect(samples.get('stagepost_outbox_size')).toBe(3);
    for (const name of samples.keys()) expect(name).toMatch(/^stagepost_/);

    // Poll counts are kept apart and published per scrape: totals, never added twice.
    const repository = ['staging', 'branch1'];
    metrics.countPolls(repository, true);
    for (let scrape = 0; scrape < 2; scrape++) {
      const again = parseExposition(await (await fetch(url('/metrics'))).text());
      expect(again.get('stagepost_polls_total{branch="staging"}')).toBe(2);
      expect(again.get('stagepost_polls_total{branch="branch1"}')).toBe(1);
      expect(again.get('stagepost_poll_errors_total{branch="staging"}')).toBe(1);
    }
    // The same list counted again between scrapes, and a list a reload replaced it with.
    metrics.countPolls(repository, false);
    metrics.countPolls(repository, true);
    metrics.countPolls(['staging', 'branch1', 'branch2'], false);
    const later = parseExposition(await (await fetch(url('/metrics'))).text());
    expect(later.get('stagepost_polls_total{branch="staging"}')).toBe(5);
    expect(later.get('stagepost_polls_total{branch="branch1"}')).toBe(4);
    expect(later.get('stagepost_polls_total{branch="branch2"}')).toBe(1);
    expect(later.get('stagepost_poll_errors_total{branch="branch1"}')).toBe(2);
    expect(later.get('stagepost_poll_errors_total{branch="branch2"}')).toBeUndefined();
  });

  test('GET /metrics of a host of a cluster: every host, and every site with its host', async () => {
    const single = parseExposition(await (await fetch(url('/metrics'))).text());
    expect([...single.keys()].filter((k) => /cluster|branch_info/.test(k))).toEqual([]);
    fake.doc.cluster = clusterStatus('a', [
      { name: 'a', running: 1, queued: 2, slots: 2 },
      { name: 'b', configDiffers: true },
      { name: 'c', alive: false, running: 1, queued: 3, slots: 4 },
    ]);
    fake.branch('staging').host = 'a';
    fake.branch('branch1').host = 'c';
    fake.branch('branch1').lastBuild = {
      id: 7,
      result: 'failure',
      startedAt: new Date().toISOString(),
      durationMs: 1000,
    };
    const samples = parseExposition(await (await fetch(url('/metrics'))).text());
    const expected: Record<string, number> = {
      stagepost_cluster_database_up: 1,
      'stagepost_cluster_host_up{host="a"}': 1,
      'stagepost_cluster_host_up{host="c"}': 0,
      'stagepost_cluster_host_running{host="a"}': 1,
      'stagepost_cluster_host_queued{host="c"}': 3,
      'stagepost_cluster_host_slots{host="c"}': 4,
      'stagepost_cluster_host_config_differs{host="b"}': 1,
      'stagepost_branch_info{branch="branch1",host="c"}': 1,
      'stagepost_cluster_branch_failing{branch="branch1",host="c"}': 1,
      'stagepost_cluster_branch_last_build{branch="branch1",host="c"}': 7,
      // Names and labels of a single host's series are unchanged.
      stagepost_queue_length: 1,
    };
    for (const [series, value] of Object.entries(expected))
      expect([series, samples.get(series)]).toEqual([series, value]);

    // The database gone; a host gone from ci.yaml goes from /metrics.
    fake.doc.cluster = clusterStatus('a', [{ name: 'a' }, { name: 'b', alive: false }], {
      unreachableSince: new Date().toISOString(),
    });
    const later = parseExposition(await (await fetch(url('/metrics'))).text());
    expect(later.get('stagepost_cluster_database_up')).toBe(0);
    expect(later.get('stagepost_cluster_host_up{host="b"}')).toBe(0);
    expect(later.get('stagepost_cluster_host_up{host="c"}')).toBeUndefined();
  });

  test('GET /api/events streams change events and unsubscribes on close', async () => {
    const controller = new AbortController();
    const res = await fetch(url('/api/events'), { signal: controller.signal });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before "${needle}"; got ${text}`);
        text += decoder.decode(value, { stream: true });
      }
    };
    await readUntil(': connected');
    expect(fake.listenerCount()).toBe(1);
    fake.emit({ type: 'build', branch: 'staging' });
    await readUntil('data: {"type":"build","branch":"staging"}\n\n');
    controller.abort();
    await until(() => fake.listenerCount() === 0, 'the event stream to unsubscribe');
  });

  test('SSE sends heartbeats and close() ends open streams', async () => {
    const hb = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      token: TOKEN,
      api: fake,
      metrics: createMetrics(),
      log,
      redact: (t) => t,
      heartbeatMs: 20,
    });
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(hb.url + '/api/events', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          if (text.includes(': heartbeat')) void hb.close();
        });
        res.on('end', () => resolve(text));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    expect(body).toContain(': heartbeat\n\n');
    expect(fake.listenerCount()).toBe(0);
  });

  test('a port in use is a clear error', async () => {
    const port = Number(new URL(server.url).port);
    await expect(
      startHttpServer({
        host: '127.0.0.1',
        port,
        token: TOKEN,
        api: fake,
        metrics: createMetrics(),
        log,
        redact: (t) => t,
      }),
    ).rejects.toMatchObject({
      code: 'ECONFIG',
      message: expect.stringMatching(/in use.*http\.listen/),
    });
  });
});
