import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote } from '../helpers/git.js';
import { ROOT, isBuildFinished, runCli, writeFile } from '../helpers/cli.js';
import { hasPostgres, startPostgres, type PgServer } from '../helpers/postgres.js';
import { clusterYamlHead, startCluster, type TestCluster } from '../helpers/cluster.js';
import { launchChromium } from '../helpers/chromium.js';
import { parseExposition } from '../helpers/metrics.js';
import { hasTool } from '../helpers/tools.js';

jest.setTimeout(180_000);

/**
 * Issue point 5, "one view": `status`, /api/status, the dashboard and
 * /metrics of any host show every host and every site with its host. Three
 * daemons on one PostgreSQL (started by the test); host a's dashboard in
 * headless chromium.
 */
(hasPostgres() && hasTool('chromium') ? describe : describe.skip)(
  'one view of a cluster of three hosts',
  () => {
    const tmp = tempDir('stagepost-cluster-view-');
    let pgServer: PgServer;
    let cluster: TestCluster;
    let config: string;
    let browser: Browser;
    let page: Page;

    beforeAll(async () => {
      pgServer = (await startPostgres({ name: 'cluster-view' }))!;
      const remote = makeGitRemote(tmp.dir, 'app');
      const site = (name: string, host: string, ref: string) => {
        remote.commit(ref, `first commit of ${ref}`);
        return `  ${name}:\n    host: ${host}\n    dir: ./sites/${name}\n    sources: [{ name: app, vcs: git, url: "${remote.url}", ref: ${ref} }]\n`;
      };
      config = writeFile(
        path.join(tmp.dir, 'ci.yaml'),
        `${clusterYamlHead()}http: { listen: 127.0.0.1:1 }
steps:
  - { name: build, run: 'echo "built $STAGEPOST_BRANCH"' }
branches:
${site('s1', 'a', 'main')}${site('s2', 'b', 'b2')}${site('s3', 'c', 'b3')}`,
      );
      cluster = await startCluster(config, ['a', 'b', 'c'], pgServer.url);
      browser = await launchChromium();
      page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      page.setDefaultTimeout(20_000);
    });

    afterAll(async () => {
      await browser?.close();
      await cluster?.stopAll();
      await pgServer?.destroy();
      tmp.cleanup();
    });

    const metricsOf = async (host: string) =>
      parseExposition(
        await (await fetch(`http://127.0.0.1:${cluster.ports[host]}/metrics`)).text(),
      );
    const status = (host: string, json = false) =>
      runCli(['status', '--config', config, ...(json ? ['--json'] : [])], {
        env: { STAGEPOST_HOST: host, STAGEPOST_DATABASE_URL: pgServer.url },
      });
    const line = (text: string, start: RegExp) =>
      text.split('\n').find((l) => start.test(l)) ?? `(no line ${start} in:\n${text})`;
    const card = (b: string) => page.locator(`section.card[data-branch="${b}"]`);
    const hostRow = (h: string) => page.locator(`#hosts tr[data-host="${h}"]`);

    test("host a shows every host and host c's build: dashboard, /metrics, status", async () => {
      await Promise.all(
        (['a', 'b', 'c'] as const).map((h, i) =>
          cluster.hosts[h].waitFor(isBuildFinished(`s${i + 1}`), { what: `s${i + 1} on ${h}` }),
        ),
      );
      await cluster.waitStatus(
        'a',
        (s) =>
          s.cluster!.hosts.filter((h) => h.alive).length === 3 &&
          s.branches.find((b) => b.name === 's3')?.lastBuild?.result === 'success',
        "three hosts alive and s3's build",
      );

      // The dashboard of host a, in chromium.
      await page.goto(`http://127.0.0.1:${cluster.ports.a}/`);
      await card('s3').locator('.host-tag', { hasText: 'host c' }).waitFor();
      expect(await page.locator('section.card h2').allTextContents()).toEqual(['s1', 's2', 's3']);
      const lastBuild = card('s3').locator('.row', { hasText: 'Last build' });
      expect(await lastBuild.locator('.badge').textContent()).toBe('success');
      expect(await lastBuild.locator('a').textContent()).toBe('#1');
      expect(await card('s1').locator('.host-tag').textContent()).toBe('host a');
      expect(await page.locator('#hosts tr[data-host]').count()).toBe(3);
      for (const h of ['a', 'b', 'c'])
        expect(await hostRow(h).locator('.state').textContent()).toBe('alive');
      expect(await hostRow('a').textContent()).toContain('(this host)');
      expect(await hostRow('c').locator('.slots').textContent()).toBe('1');
      expect(await hostRow('c').locator('.config').textContent()).toBe('same');
      expect(await page.locator('#hosts-summary').textContent()).toBe('3/3 hosts alive');
      expect(await page.locator('#database-error').isHidden()).toBe(true);
      // The log of host c's build, through host a's API.
      const href = await lastBuild.locator('a').getAttribute('href');
      expect(href).toBe('/api/branches/s3/builds/1/log');
      const log = await fetch(`http://127.0.0.1:${cluster.ports.a}${href}`);
      expect(log.headers.get('x-stagepost-host')).toBe('c');
      expect(await log.text()).toContain('built s3');
      if (process.env.UPDATE_SCREENSHOT === '1')
        await page.screenshot({
          path: path.join(ROOT, 'docs', 'cluster-dashboard.png'),
          fullPage: true,
        });

      const metrics = await metricsOf('a');
      for (const h of ['a', 'b', 'c']) {
        expect(metrics.get(`stagepost_cluster_host_up{host="${h}"}`)).toBe(1);
        expect(metrics.get(`stagepost_cluster_host_slots{host="${h}"}`)).toBe(1);
        expect(metrics.get(`stagepost_cluster_host_running{host="${h}"}`)).toBe(0);
        expect(metrics.get(`stagepost_cluster_host_queued{host="${h}"}`)).toBe(0);
      }
      expect(metrics.get('stagepost_cluster_database_up')).toBe(1);
      expect(metrics.get('stagepost_branch_info{branch="s3",host="c"}')).toBe(1);
      expect(metrics.get('stagepost_cluster_branch_last_build{branch="s3",host="c"}')).toBe(1);

      // `stagepost status` on host a asks its daemon (at the port `run --http-port` gave it).
      const shown = await status('a');
      expect(shown.code).toBe(0);
      expect(line(shown.stdout, /^BRANCH/)).toMatch(/^BRANCH\s+HOST\s+STATE/);
      expect(line(shown.stdout, /^s3 /)).toMatch(/^s3\s+c\s+idle\s+app@\w+\s+#1\s+success/);
      expect(line(shown.stdout, /^s1 /)).toMatch(/^s1\s+a\s+idle/);
      expect(line(shown.stdout, /^a \(this host\)/)).toMatch(/alive\s+now\s+0\s+0\s+1\s+same$/);
      expect(line(shown.stdout, /^c /)).toMatch(/^c\s+alive\s+\S+ ago\s+0\s+0\s+1\s+same$/);
      expect(shown.stdout).toMatch(/^database: \S+$/m);
      // The sites in ci.yaml's order, whichever host holds them.
      expect(shown.stdout.match(/^s\d/gm)).toEqual(['s1', 's2', 's3']);
      expect(shown.stdout).toMatch(/daemon: running \(pid \d+\), host a/);
      const json = JSON.parse((await status('a', true)).stdout) as {
        cluster: { hosts: Array<{ name: string; alive: boolean }> };
      };
      expect(json.cluster.hosts.map((h) => [h.name, h.alive])).toEqual([
        ['a', true],
        ['b', true],
        ['c', true],
      ]);
    });

    test('host c stopped: shown as down, its site with its last build', async () => {
      await cluster.hosts.c.stop();
      await hostRow('c').locator('.state', { hasText: 'down' }).waitFor();
      expect(await hostRow('c').locator('.heartbeat').textContent()).toMatch(
        /ago · its queue waits$/,
      );
      expect(await card('s3').locator('.host-tag').textContent()).toBe('host c down');
      expect(await card('s3').locator('.host-down-note').textContent()).toMatch(
        /^host c is down \(last heartbeat .* ago\): builds of this site wait for it/,
      );
      expect(await card('s3').locator('.row', { hasText: 'Last build' }).textContent()).toContain(
        '#1',
      );
      expect(await hostRow('b').locator('.state').textContent()).toBe('alive');
      expect(await page.locator('#hosts-summary').textContent()).toBe('2/3 hosts alive');

      const metrics = await metricsOf('a');
      expect(metrics.get('stagepost_cluster_host_up{host="c"}')).toBe(0);
      expect(metrics.get('stagepost_cluster_host_up{host="b"}')).toBe(1);
      expect(metrics.get('stagepost_branch_info{branch="s3",host="c"}')).toBe(1);

      const shown = await status('a');
      expect(line(shown.stdout, /^c /)).toMatch(/^c\s+DOWN\s+\S+ ago, its queue waits/);
      expect(line(shown.stdout, /^s3 /)).toMatch(/^s3\s+c \(down\)\s+idle/);

      // On host c itself, without its daemon: its own sites from its state_dir, and why.
      const alone = await status('c');
      expect(alone.code).toBe(0);
      expect(alone.stderr).toContain('the daemon of host c is not running');
      expect(line(alone.stdout, /^s3 /)).toMatch(/^s3\s+c\s+idle\s+app@\w+\s+#1\s+success/);
      expect(alone.stdout).not.toMatch(/^s1 /m);
      expect(alone.stdout).toContain('daemon: not running');
    });
  },
);
