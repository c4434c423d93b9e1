/**
 * The dashboard against the real daemon in headless chromium: a branch shows
 * building while a step runs, and the page follows to the finished result
 * without a reload.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { tempDir } from '../helpers/tmp.js';
import { gitBranchYaml, makeGitRemote } from '../helpers/git.js';
import { describeIf, hasTool } from '../helpers/tools.js';
import { freePort } from '../plugins/vcs-helpers.js';
import { DaemonProcess, ROOT, isBuildFinished, isBuildStarted } from '../helpers/cli.js';
import { launchChromium } from '../helpers/chromium.js';
import type { RunHistory } from '../../src/api.js';

describeIf(hasTool('chromium'))('dashboard with the real daemon', () => {
  let t: ReturnType<typeof tempDir>;
  let browser: Browser | null = null;
  let daemon: DaemonProcess | null = null;
  beforeEach(() => {
    t = tempDir();
  });
  afterEach(async () => {
    await browser?.close();
    await daemon?.kill9();
    t.cleanup();
  });

  test('shows every branch and updates when a build finishes', async () => {
    const remote = makeGitRemote(t.dir);
    remote.commit('main', 'first');
    remote.commit('feature', 'feature work');
    const port = await freePort();
    const gate = path.join(t.dir, 'gate');
    const file = path.join(t.dir, 'ci.yaml');
    writeFileSync(
      file,
      `version: 1
state_dir: ./state
poll: { interval: 200ms }
http: { listen: ${port} }
env: { pass: [GATE] }
steps:
  - { name: compile, run: 'while [ ! -f "$GATE" ] && [ "$STAGEPOST_BUILD" -gt 1 ]; do sleep 0.05; done' }
branches:
${gitBranchYaml('staging', remote.url, 'main')}${gitBranchYaml('branch1', remote.url, 'feature')}`,
    );
    daemon = new DaemonProcess(file, { GATE: gate });
    await daemon.waitFor(isBuildFinished(), { count: 2 });
    browser = await launchChromium();
    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(`http://127.0.0.1:${port}/`);
    const card = (b: string) => page.locator(`section.card[data-branch="${b}"]`);
    await card('branch1').waitFor();
    expect(await page.locator('section.card h2').allTextContents()).toEqual(['staging', 'branch1']);

    remote.commit('feature', 'Second <b>feature</b> commit');
    await daemon.waitFor(isBuildStarted('branch1'), { count: 2 });
    await card('branch1').locator('.card-head .badge', { hasText: 'building' }).waitFor();
    writeFileSync(gate, '');
    await daemon.waitFor(isBuildFinished('branch1'), { count: 2 });
    await card('branch1').locator('.card-head .badge', { hasText: 'idle' }).waitFor();
    expect(await card('branch1').textContent()).toContain('#2');
    expect(await card('branch1').textContent()).toContain('Second <b>feature</b> commit');
  });
});

describeIf(hasTool('chromium'))('duration charts with the real daemon', () => {
  let t: ReturnType<typeof tempDir>;
  let browser: Browser | null = null;
  let daemon: DaemonProcess | null = null;
  beforeEach(() => {
    t = tempDir();
  });
  afterEach(async () => {
    await browser?.close();
    await daemon?.kill9();
    t.cleanup();
  });

  test('a chart per site and per job with one mark per run, a live mark and the step bar', async () => {
    const remote = makeGitRemote(t.dir);
    remote.commit('main', 'first');
    remote.commit('feature', 'feature work');
    const port = await freePort();
    const gate = path.join(t.dir, 'gate');
    const file = path.join(t.dir, 'ci.yaml');
    // Steps that take a different, known time per build; build 4 fails; the
    // 5th build of branch1 waits for the gate so that it runs on the screenshot.
    writeFileSync(
      file,
      `version: 1
state_dir: ./state
poll: { interval: 200ms }
http: { listen: ${port} }
env: { pass: [GATE] }
steps:
  - { name: buildout, run: 'sleep 0.$(( (STAGEPOST_BUILD * 7) % 6 + 3 ))' }
  - { name: test, run: 'sleep 0.1; test "$STAGEPOST_BUILD" != 4' }
  - name: restart
    run: 'sleep 0.2; while [ "$STAGEPOST_BRANCH" = branch1 ] && [ "$STAGEPOST_BUILD" = 5 ] && [ ! -f "$GATE" ]; do sleep 0.05; done'
jobs:
  sync:
    schedule: "*/2 * * * * *"
    branches: [staging]
    run: 'sleep 0.4'
branches:
${gitBranchYaml('staging', remote.url, 'main')}${gitBranchYaml('branch1', remote.url, 'feature')}`,
    );
    daemon = new DaemonProcess(file, { GATE: gate });
    await daemon.waitFor(isBuildFinished(), { count: 2 });
    for (let i = 2; i <= 6; i++) {
      remote.commit('main', `staging change ${i}`);
      await daemon.waitFor(isBuildFinished('staging'), { count: i });
    }
    for (let i = 2; i <= 4; i++) {
      remote.commit('feature', `feature change ${i}`);
      await daemon.waitFor(isBuildFinished('branch1'), { count: i });
    }
    remote.commit('feature', 'feature change 5');
    await daemon.waitFor((e) => e.msg === 'job finished', { count: 4, what: 'four job runs' });
    await daemon.waitFor(isBuildStarted('branch1'), { count: 5 });

    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    page.setDefaultTimeout(15_000);
    await page.goto(`http://127.0.0.1:${port}/`);
    const chart = (b: string, name: string) =>
      page.locator(`section.card[data-branch="${b}"] .chart-block[data-chart="${name}"]`);
    await chart('branch1', 'build').locator('rect.live').waitFor();
    const history = (await (
      await fetch(`http://127.0.0.1:${port}/api/branches/staging/history`)
    ).json()) as RunHistory;
    await page.waitForFunction(
      (n) =>
        document.querySelectorAll(
          'section.card[data-branch="staging"] [data-chart="job:sync"] .mark',
        ).length >= n,
      history.jobs.sync.length,
    );
    expect(await chart('staging', 'build').locator('.mark').count()).toBe(6);
    expect(await chart('staging', 'build').locator('.mark.failure').count()).toBe(1);
    expect(await chart('branch1', 'build').locator('.mark').count()).toBe(4);
    expect(await chart('branch1', 'build').locator('.mark.failure').count()).toBe(1);
    expect(await chart('branch1', 'job:sync').count()).toBe(0);
    expect(await chart('staging', 'steps').locator('rect.seg').count()).toBe(4);
    expect(await chart('staging', 'steps').locator('.steps-legend').textContent()).toMatch(
      /checkout \d+(ms|\.\ds).*buildout \d+(ms|\.\ds).*test \d+(ms|\.\ds).*restart \d+(ms|\.\ds)/,
    );
    if (process.env.UPDATE_SCREENSHOT === '1')
      await page.screenshot({ path: path.join(ROOT, 'docs', 'dashboard.png'), fullPage: true });
    writeFileSync(gate, '');
    await daemon.waitFor(isBuildFinished('branch1'), { count: 5 });
    await page.waitForFunction(
      () =>
        document.querySelectorAll('section.card[data-branch="branch1"] [data-chart="build"] .mark')
          .length === 5,
    );
    expect(await chart('branch1', 'build').locator('rect.live').count()).toBe(0);
  });
});
