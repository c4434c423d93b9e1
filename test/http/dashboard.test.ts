import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/chromium.js';
import { memoryLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { describeIf, hasTool } from '../helpers/tools.js';
import { tempDir } from '../helpers/tmp.js';
import { clusterStatus, realisticFake, type FakeDaemon } from './fake-daemon.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const XSS = '<img src=x onerror="window.__xss=1">Fix login';

describeIf(hasTool('chromium'))('dashboard in headless chromium', () => {
  let tmp: ReturnType<typeof tempDir>;
  let browser: Browser;
  let fake: FakeDaemon;
  let server: HttpServer;
  let page: Page;

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  beforeEach(async () => {
    tmp = tempDir();
    fake = realisticFake(path.join(tmp.dir, 'logs'));
    server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      token: 'dashboard-token-123',
      api: fake,
      metrics: createMetrics(),
      log: memoryLogger(),
      redact: (t) => t,
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(10_000);
  });
  afterEach(async () => {
    await page?.close();
    await server?.close();
    tmp?.cleanup();
  });

  const card = (branch: string) => page.locator(`section.card[data-branch="${branch}"]`);
  const open = async () => {
    await page.goto(server.url + '/');
    await page.locator('#conn.live').waitFor();
    await card('branch3').waitFor();
  };

  test('shows every branch with its state, revisions, sites and poll error', async () => {
    await open();
    expect(await page.locator('section.card h2').allTextContents()).toEqual([
      'staging',
      'branch1',
      'branch2',
      'branch3',
    ]);
    expect(await card('branch1').locator('.card-head .badge').textContent()).toBe('building');
    expect(await card('branch1').locator('.progress .step').textContent()).toBe('buildout');
    expect(await card('branch2').locator('.card-head .badge').textContent()).toBe('failing');
    expect(await card('branch1').locator('.pending .rev').textContent()).toBe('e47b9a02');
    expect(await card('staging').locator('.pending').count()).toBe(0);
    expect(await card('staging').locator('a.customer').first().getAttribute('href')).toBe(
      'https://karltest.example.com/staging/acme/',
    );
    expect(await card('staging').locator('.mailin').count()).toBe(1);
    expect(await card('branch3').locator('.poll-error').textContent()).toContain('E170013');
    expect(await page.locator('#queue').textContent()).toBe('queue: branch3');
    expect(await page.locator('#outbox').textContent()).toBe('outbox: 1');
  });

  test('a build that cannot start says why it waits and when it is tried again', async () => {
    fake.branch('branch2').waiting = {
      reason:
        'cannot create lock /var/lib/stagepost/locks/branch2.lock: ENOSPC: no space left on device',
      since: new Date(Date.now() - 60_000).toISOString(),
      retryAt: new Date(Date.now() + 30_000).toISOString(),
      attempts: 4,
    };
    await open();
    const text = await card('branch2').locator('.build-waiting').textContent();
    expect(text).toContain('build cannot start: cannot create lock');
    expect(text).toContain('ENOSPC');
    expect(text).toContain('next try');
    expect(await card('staging').locator('.build-waiting').count()).toBe(0);
  });

  test('a finished build shows up without a reload', async () => {
    await open();
    await page.evaluate(() => {
      (window as unknown as { marker: number }).marker = 1;
    });
    const b = fake.branch('branch1');
    b.state = 'idle';
    b.current = null;
    b.sources[0].revision = b.sources[0].remoteRevision;
    b.lastBuild = {
      id: 24,
      result: 'success',
      startedAt: new Date().toISOString(),
      durationMs: 75_000,
    };
    fake.emit({ type: 'build', branch: 'branch1' });
    await card('branch1')
      .locator('.card-head .badge', { hasText: /^idle$/ })
      .waitFor();
    await card('branch1').locator('.row a', { hasText: '#24' }).waitFor();
    expect(await card('branch1').locator('.progress').count()).toBe(0);
    expect(await card('branch1').locator('.pending').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(1);
  });

  test('a rejected ci.yaml edit shows as a banner, and goes when fixed', async () => {
    await open();
    expect(await page.locator('#config-error').isHidden()).toBe(true);
    fake.doc.configError = {
      message: '/etc/stagepost/ci.yaml:14: stepz: unknown key <b>x</b>',
      file: '/etc/stagepost/ci.yaml',
      line: 14,
      since: new Date(Date.now() - 120_000).toISOString(),
    };
    fake.emit({ type: 'config-error' });
    const banner = page.locator('#config-error');
    await banner.waitFor({ state: 'visible' });
    const text = await banner.textContent();
    expect(text).toContain('ci.yaml edit rejected (/etc/stagepost/ci.yaml:14, 2 min');
    expect(text).toContain('runs on the last good config');
    expect(await banner.locator('pre').textContent()).toBe(fake.doc.configError.message);
    fake.doc.configError = null;
    fake.emit({ type: 'config' });
    await banner.waitFor({ state: 'hidden' });
  });

  test('a cluster: every host, a host down, a ci.yaml that differs, the database unreachable', async () => {
    await open();
    expect(await page.locator('#cluster').isHidden()).toBe(true);
    expect(await card('staging').locator('.host-tag').isHidden()).toBe(true);
    const now = Date.now();
    const at = (msAgo: number) => new Date(now - msAgo).toISOString();
    fake.doc.cluster = clusterStatus(
      'a',
      [
        { name: 'a', running: 1, queued: 2, slots: 2 },
        { name: 'b', heartbeatAt: at(2000), slots: 4, configDiffers: true },
        { name: 'c', alive: false, heartbeatAt: at(61_000), running: 1, queued: 3 },
      ],
      { unreachableSince: at(90_000) },
    );
    fake.branch('staging').host = 'a';
    fake.branch('branch1').host = 'b';
    fake.branch('branch2').host = 'c';
    fake.branch('branch3').host = 'c';
    fake.emit({ type: 'cluster' });
    const host = (name: string) => page.locator(`#hosts tr[data-host="${name}"]`);
    await host('c').waitFor();
    expect(await host('a').textContent()).toBe('a (this host)alivenow122same');
    expect(await host('b').locator('.config').textContent()).toBe('⚠ differs');
    expect(await host('c').locator('.state').textContent()).toBe('down');
    expect(await host('c').locator('.heartbeat').textContent()).toMatch(
      /^1m 0\ds ago · its queue waits$/,
    );
    expect(await page.locator('#config-differs').textContent()).toContain(
      "host b runs a ci.yaml that differs from this host's",
    );
    expect(await page.locator('#database-error').textContent()).toMatch(
      /^Database unreachable since .+ \(2 min ago\): host a goes on alone/,
    );
    expect(await page.locator('#hosts-summary').textContent()).toBe('2/3 hosts alive');
    expect(await page.locator('#cluster-meta').textContent()).toContain(
      'database postgres://stagepost@db.example.com/stagepost',
    );
    expect(await card('branch1').locator('.host-tag').textContent()).toBe('host b');
    expect(await card('branch2').locator('.host-tag').textContent()).toBe('host c down');
    expect(await card('branch2').getAttribute('class')).toContain('host-down');
    expect(await card('branch3').locator('.host-down-note').textContent()).toMatch(
      /^host c is down \(last heartbeat 1m 0\ds ago\): builds of this site wait for it/,
    );
    expect(await card('branch1').locator('.host-down-note').count()).toBe(0);

    // The database back and host c alive again.
    fake.doc.cluster = clusterStatus('a', [{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
    fake.emit({ type: 'cluster' });
    await page.locator('#database-error').waitFor({ state: 'hidden' });
    expect(await page.locator('#config-differs').isHidden()).toBe(true);
    expect(await card('branch2').locator('.host-tag').textContent()).toBe('host c');
    expect(await card('branch2').getAttribute('class')).not.toContain('host-down');

    // No cluster any more: nothing of it is left.
    delete fake.doc.cluster;
    for (const b of fake.doc.branches) delete b.host;
    fake.emit({ type: 'config' });
    await page.locator('#cluster').waitFor({ state: 'hidden' });
    expect(await card('branch2').locator('.host-tag').isHidden()).toBe(true);
    expect(await page.locator('#hosts-summary').count()).toBe(0);
  });

  test('"Caught mail" shows only on a branch with a mail catcher', async () => {
    fake.branch('staging').smtpPort = 2526;
    await open();
    expect(await card('staging').locator('details.mail').isVisible()).toBe(true);
    expect(await card('branch1').locator('details.mail').isHidden()).toBe(true);
  });

  test('markup in a commit subject is shown as text', async () => {
    fake.branch('staging').sources[0].subject = XSS;
    await open();
    expect(await card('staging').locator('.subject').first().textContent()).toBe(XSS);
    expect(await card('staging').locator('img').count()).toBe(0);
    expect(
      await page.evaluate(() => (window as unknown as { __xss?: number }).__xss),
    ).toBeUndefined();
  });

  test("the running build's log is followed live", async () => {
    await open();
    const log = card('branch1').locator('details.live pre');
    await log.filter({ hasText: 'Updating instance.' }).waitFor();
    fake.writeLog('branch1', 24, 'Generated script bin/instance.\n', true);
    await log.filter({ hasText: 'Generated script bin/instance.' }).waitFor();
    // Appended once, not re-read from the start.
    expect((await log.textContent())!.match(/Installing eggs\./g)).toHaveLength(1);
  });

  test('build history expands with links to the logs', async () => {
    await open();
    await card('branch2').locator('details.history summary').click();
    const link = card('branch2').locator('details.history a', { hasText: '#12' });
    await link.waitFor();
    expect(await link.getAttribute('href')).toBe('/api/branches/branch2/builds/12/log');
    expect(await card('branch2').locator('details.history tbody tr').count()).toBe(3);
    const res = await page.request.get(server.url + (await link.getAttribute('href'))!);
    expect(await res.text()).toContain('test_refund');
  });

  test('a duration chart per site and per job: one mark per run, the median, a live mark, the step bar', async () => {
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    fake.writeLog('staging', 10, 'sync: 120000 rows\n', false, 'nightly-sync');
    await open();
    const chart = (branch: string, name: string) =>
      card(branch).locator(`.chart-block[data-chart="${name}"]`);
    await chart('staging', 'job:nightly-sync').locator('.mark').first().waitFor();
    // Builds and the job apart, one mark per run, colored by result.
    expect(await chart('staging', 'build').locator('.mark').count()).toBe(16);
    expect(await chart('staging', 'build').locator('.mark.failure').count()).toBe(1);
    expect(await chart('staging', 'job:nightly-sync').locator('.mark').count()).toBe(10);
    expect(await chart('staging', 'job:nightly-sync').locator('.mark.timeout').count()).toBe(1);
    expect(await chart('staging', 'build').locator('line.median').count()).toBe(1);
    expect(await chart('staging', 'build').locator('.median-text').textContent()).toBe(
      'median 1m 26s',
    );
    expect(await chart('staging', 'job:nightly-sync').locator('.median-text').textContent()).toBe(
      'median 4h 00m',
    );
    expect(await chart('branch2', 'build').locator('.mark').count()).toBe(3);
    expect(await card('branch3').locator('.chart-block').count()).toBe(1);

    // The last build's steps as a stacked bar, widths in proportion.
    const segments = chart('staging', 'steps').locator('rect.seg');
    expect(await segments.count()).toBe(4);
    const widths = await segments.evaluateAll((rects) =>
      rects.map((r) => Number(r.getAttribute('width'))),
    );
    expect(widths[1]).toBeGreaterThan(widths[0] + widths[2] + widths[3]);
    expect(await chart('staging', 'steps').locator('.steps-legend').textContent()).toContain(
      'buildout 1m 12s',
    );

    // Pointing at a run shows it; its mark links to its log.
    const newest = chart('staging', 'build')
      .locator('a')
      .filter({ has: page.locator('.mark') });
    await newest.last().hover();
    expect(await chart('staging', 'build').locator('.chart-detail').textContent()).toMatch(
      /^#57 · success · 1m 26s · app@39a91c7e theme@1842 · started /,
    );
    expect(await newest.last().getAttribute('href')).toBe('/api/branches/staging/builds/57/log');
    const jobMark = chart('staging', 'job:nightly-sync').locator('a').last();
    const jobLog = await page.request.get(server.url + (await jobMark.getAttribute('href'))!);
    expect(await jobLog.text()).toBe('sync: 120000 rows\n');

    // The running build's mark grows with its elapsed time.
    const live = chart('branch1', 'build').locator('rect.live');
    expect(await chart('branch1', 'build').locator('.mark').count()).toBe(2);
    const before = Number(await live.getAttribute('height'));
    await page.waitForFunction(
      (h) =>
        Number(
          document
            .querySelector('section.card[data-branch="branch1"] rect.live')
            ?.getAttribute('height'),
        ) > h,
      before,
    );
    expect(errors).toEqual([]);
  });

  test('fits a phone screen without horizontal scrolling', async () => {
    await page.setViewportSize({ width: 375, height: 812 });
    await open();
    await card('branch2').locator('details.history summary').click();
    await card('branch2').locator('details.history tbody tr').first().waitFor();
    const { scroll, client } = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
    }));
    expect(scroll).toBeLessThanOrEqual(client);
  });

  test('screenshot', async () => {
    await open();
    await card('branch1').locator('details.live pre', { hasText: 'Updating instance.' }).waitFor();
    // docs/dashboard.png shows a real daemon (test/e2e/dashboard-daemon.test.ts); `fake` puts this one there.
    const target =
      process.env.UPDATE_SCREENSHOT === 'fake'
        ? path.join(ROOT, 'docs', 'dashboard.png')
        : path.join(tmp.dir, 'dashboard.png');
    await page.screenshot({ path: target });
  });
});
