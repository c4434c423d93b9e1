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
import { DaemonProcess, isBuildFinished, isBuildStarted } from '../helpers/cli.js';

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
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
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
