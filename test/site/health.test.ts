import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkHealth, healthUrls } from '../../src/site/health.js';
import { branchOf, siteConfig } from './config.js';

const OK_RANGE = [{ min: 200, max: 399 }];

function serve(status: number, port = 0): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    res.writeHead(status, status === 302 ? { location: '/elsewhere' } : {});
    res.end(`${status} ${req.url}`);
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}
const portOf = (s: http.Server) => (s.address() as AddressInfo).port;
const close = (s: http.Server) =>
  new Promise<void>((r) => {
    s.closeAllConnections();
    s.close(() => r());
  });

/** A loopback port nothing listens on any more. */
async function deadPort(): Promise<number> {
  const s = await serve(200);
  const port = portOf(s);
  await close(s);
  return port;
}

describe('healthUrls', () => {
  it('fills {branch} {customer} {port} for each customer', () => {
    const config = siteConfig(
      '  base_url: https://karltest.example.com',
      'health:\n  url: "http://127.0.0.1:{port}/{branch}/{customer}/ping"\n  expect: 200-399\n  timeout: 5s\n',
    );
    expect(healthUrls(config, branchOf(config, 'staging'))).toEqual([
      'http://127.0.0.1:6543/staging/osf/ping',
      'http://127.0.0.1:6543/staging/anothercustomer/ping',
    ]);
    expect(healthUrls(config, branchOf(config, 'branch1'))).toEqual([
      'http://127.0.0.1:6544/branch1/osf/ping',
    ]);
  });

  it('is empty without health settings', () => {
    const config = siteConfig('  base_url: https://karltest.example.com');
    expect(healthUrls(config, branchOf(config, 'staging'))).toEqual([]);
  });
});

describe('checkHealth', () => {
  const servers: http.Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map(close));
  });

  it('fails a site that is down, naming the URL and "connection refused", after retrying', async () => {
    const url = `http://127.0.0.1:${await deadPort()}/osf/`;
    const report = await checkHealth({
      urls: [url],
      expect: OK_RANGE,
      timeoutMs: 300,
      intervalMs: 50,
    });
    expect(report.ok).toBe(false);
    expect(report.results).toEqual([
      expect.objectContaining({ url, ok: false, error: 'connection refused' }),
    ]);
    expect(report.results[0].attempts).toBeGreaterThan(1);
  });

  it('fails a site that answers 500, with the status it got', async () => {
    const s = await serve(500);
    servers.push(s);
    const url = `http://127.0.0.1:${portOf(s)}/osf/`;
    const seen: Array<number | string> = [];
    const report = await checkHealth({
      urls: [url],
      expect: OK_RANGE,
      timeoutMs: 200,
      intervalMs: 50,
      onAttempt: (_u, r) => seen.push(r),
    });
    expect(report.ok).toBe(false);
    expect(report.results[0]).toEqual(expect.objectContaining({ url, ok: false, status: 500 }));
    expect(report.results[0].error).toBeUndefined();
    expect(seen.every((r) => r === 500)).toBe(true);
  });

  it('passes a site that comes up while it is being retried', async () => {
    const port = await deadPort();
    const url = `http://127.0.0.1:${port}/osf/`;
    const seen: Array<number | string> = [];
    let starting: Promise<void> | null = null;
    const report = await checkHealth({
      urls: [url],
      expect: OK_RANGE,
      timeoutMs: 20_000,
      intervalMs: 100,
      onAttempt: (_u, r) => {
        seen.push(r);
        // The app server comes up after the third refused attempt.
        if (seen.length === 3 && !starting)
          starting = serve(200, port).then((s) => {
            servers.push(s);
          });
      },
    });
    expect(report.ok).toBe(true);
    expect(seen.slice(0, 3)).toEqual([
      'connection refused',
      'connection refused',
      'connection refused',
    ]);
    expect(seen[seen.length - 1]).toBe(200);
    expect(report.results[0]).toEqual(
      expect.objectContaining({ url, ok: true, status: 200, attempts: seen.length }),
    );
  });

  it('accepts a 302 within 200-399 (without following it) and rejects it for 200 alone', async () => {
    const s = await serve(302);
    servers.push(s);
    const url = `http://127.0.0.1:${portOf(s)}/osf/`;
    const accepted = await checkHealth({ urls: [url], expect: OK_RANGE, timeoutMs: 1000 });
    expect(accepted).toEqual({ ok: true, results: [{ url, ok: true, status: 302, attempts: 1 }] });
    const strict = await checkHealth({
      urls: [url],
      expect: [{ min: 200, max: 200 }],
      timeoutMs: 150,
      intervalMs: 50,
    });
    expect(strict.ok).toBe(false);
    expect(strict.results[0].status).toBe(302);
  });

  it('needs every URL: one bad customer fails the check', async () => {
    const good = await serve(200);
    servers.push(good);
    const bad = await serve(503);
    servers.push(bad);
    const report = await checkHealth({
      urls: [`http://127.0.0.1:${portOf(good)}/a/`, `http://127.0.0.1:${portOf(bad)}/b/`],
      expect: OK_RANGE,
      timeoutMs: 150,
      intervalMs: 50,
    });
    expect(report.ok).toBe(false);
    expect(report.results.map((r) => [r.ok, r.status])).toEqual([
      [true, 200],
      [false, 503],
    ]);
  });

  it('stops retrying when aborted', async () => {
    const url = `http://127.0.0.1:${await deadPort()}/osf/`;
    const controller = new AbortController();
    const report = await checkHealth({
      urls: [url],
      expect: OK_RANGE,
      timeoutMs: 60_000,
      intervalMs: 100,
      signal: controller.signal,
      onAttempt: () => controller.abort(),
    });
    expect(report.ok).toBe(false);
    expect(report.results[0].attempts).toBe(1);
  });
});
