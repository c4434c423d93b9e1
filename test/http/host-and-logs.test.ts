/**
 * Issue 16.11 (DNS rebinding) and 16.4 (`http.public_logs`) against the real
 * HTTP server: a foreign Host is refused with 421; the listen address,
 * localhost, IP literals and public_url's host are served. With
 * public_logs: false a build log needs the token; by default it does not.
 */
import { request } from 'node:http';
import { memoryLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { tempDir } from '../helpers/tmp.js';
import { FakeDaemon, branchStatus, buildSummary } from './fake-daemon.js';

const TOKEN = 'test-token-0123456789';
let tmp: ReturnType<typeof tempDir>;
let server: HttpServer | null = null;

beforeEach(() => {
  tmp = tempDir();
});
afterEach(async () => {
  await server?.close();
  server = null;
  tmp.cleanup();
});

async function start(options: { publicLogs?: boolean; publicHosts?: string[] } = {}) {
  const fake = new FakeDaemon(tmp.dir);
  fake.doc.branches = [branchStatus('staging')];
  fake.builds.set('staging', [buildSummary(3)]);
  fake.writeLog('staging', 3, 'the log\n');
  server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    api: fake,
    metrics: createMetrics(),
    log: memoryLogger(),
    redact: (t) => t,
    ...options,
  });
  return server;
}

/** GET with a chosen Host header (fetch does not let a caller set one). */
function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('a foreign Host is refused with 421 on every route; known names are served', async () => {
  const s = await start({ publicHosts: ['ci.example.com'] });
  const port = new URL(s.url).port;
  for (const route of ['/', '/api/status', '/metrics', '/api/branches/staging/builds/3/log']) {
    const foreign = await get(s.url + route, { Host: `rebind.attacker.example:${port}` });
    expect([route, foreign.status]).toEqual([route, 421]);
    expect(foreign.body).toMatch(/set http.public_url/);
  }
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'CI.example.com', '[::1]:80']) {
    const ok = await get(`${s.url}/api/status`, { Host: host });
    expect([host, ok.status]).toEqual([host, 200]);
  }
});

test('build logs are public by default', async () => {
  const s = await start();
  const res = await get(`${s.url}/api/branches/staging/builds/3/log`);
  expect(res).toEqual({ status: 200, body: 'the log\n' });
});

test('with public_logs: false a build log needs the token; the dashboard does not', async () => {
  const s = await start({ publicLogs: false });
  const log = `${s.url}/api/branches/staging/builds/3/log`;
  const without = await get(log);
  expect(without.status).toBe(401);
  expect(without.body).toMatch(/http.public_logs: false/);
  expect((await get(`${s.url}/api/branches/staging/builds/last/log?offset=0`)).status).toBe(401);
  expect((await get(log, { Authorization: 'Bearer wrong' })).status).toBe(401);
  expect(await get(log, { Authorization: `Bearer ${TOKEN}` })).toEqual({
    status: 200,
    body: 'the log\n',
  });
  expect((await get(`${s.url}/api/status`)).status).toBe(200);
});
