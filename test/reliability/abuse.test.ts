/**
 * Hostile input and secrets against the real daemon: shell in ref names,
 * authors, messages and file names is never run and is escaped wherever it is
 * shown; passwords and `${…}` secrets appear nowhere a user or another local
 * user can look (logs, status, API, dashboard, build logs, state, mail, argv).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { tempDir } from '../helpers/tmp.js';
import { git, makeGitRemote } from '../helpers/git.js';
import { makeSvnRemote } from '../helpers/svn.js';
import { hasTool } from '../helpers/tools.js';
import { runCli, isBuildFinished } from '../helpers/cli.js';
import { freePort, startServer } from '../plugins/vcs-helpers.js';
import { parseMail, startSmtp } from '../notify/helpers.js';
import {
  Daemons,
  filesUnder,
  gitBranchYaml,
  gitHttpServer,
  morePolls,
  startAuthSmtp,
  writeCi,
} from './helpers.js';

const haveSvnserve = hasTool('svnserve') && hasTool('svnadmin');
const haveChromium = hasTool('chromium');

let t: ReturnType<typeof tempDir>;
const daemons = new Daemons();
beforeEach(() => {
  t = tempDir('stagepost-abuse-');
});
afterEach(async () => {
  await daemons.killAll();
  t.cleanup();
});

test('shell, HTML and huge lines in refs, authors, messages and file names: never run, escaped in API, dashboard and mail, bounded in mail', async () => {
  const mark = (what: string) => path.join(t.dir, `pwned-${what}`);
  const marks = ['ref', 'author', 'email', 'msg', 'tick'].map(mark);
  const smtp = await startSmtp();
  const port = await freePort();
  try {
    const remote = makeGitRemote(t.dir);
    remote.commit('main');
    const ref = `x;$(touch$IFS${mark('ref')});\`touch$IFS${mark('tick')}\``;
    git(remote.work, ['checkout', '-q', '-b', ref]);
    const subject = `$(touch ${mark('msg')}) \`touch ${mark('tick')}\`; <script>window.__xss=1</script><img src=x onerror="window.__xss=2"> ${'A'.repeat(100_000)}`;
    const rev = remote.commit(ref, `${subject}\n\nbody line with $(touch ${mark('msg')})`, {
      author: `Eve $(touch ${mark('author')}) \`touch ${mark('tick')}\`; "quoted" & amp`,
      email: `eve$(touch$IFS${mark('email')})@example.com`,
      // Relative (a file name has no slash): run in the site directory it would make pwned-file there.
      file: '$(touch pwned-file);`touch pwned-tick`.txt',
    });
    const file = writeCi(
      t.dir,
      `steps:
  - { name: record, run: 'echo "$STAGEPOST_REV_APP" > rev.txt; ls src/app > files.txt' }
http:
  listen: ${port}
  token: a-token-for-the-test
notify:
  - { use: email, transport: "smtp://127.0.0.1:${smtp.port}", from: "s@example.com", to: [ops@example.com], committers: true, on: [success] }
branches:
${gitBranchYaml('evil', remote.url, ref)}`,
    );
    const d = daemons.start(file);
    // Before the redactor's URL pattern was bounded, the 100 kB line froze the daemon here.
    const [done] = await d.waitFor(isBuildFinished('evil'), { timeoutMs: 15_000 });
    expect(done.result).toBe('success');
    expect(readFileSync(path.join(t.dir, 'sites/evil/rev.txt'), 'utf8').trim()).toBe(rev);
    expect(readFileSync(path.join(t.dir, 'sites/evil/files.txt'), 'utf8')).toContain(
      '$(touch pwned-file);`touch pwned-tick`.txt',
    );

    // Data stays data in JSON.
    const api = (await (await fetch(`http://127.0.0.1:${port}/api/status`)).json()) as {
      branches: Array<{ sources: Array<{ ref: string; subject: string }> }>;
    };
    expect(api.branches[0].sources[0].ref).toBe(ref);
    expect(api.branches[0].sources[0].subject.startsWith(subject.slice(0, 200))).toBe(true);

    // The mail: escaped HTML, the huge subject line bounded, sent to no address made of shell.
    await smtp.waitFor(1);
    const raw = smtp.mails[0].raw;
    expect(raw.length).toBeLessThan(30_000);
    const mail = parseMail(raw);
    expect(mail.headers.subject.length).toBeLessThan(400);
    expect(mail.text).toContain('<script>window.__xss=1</script>');
    expect(mail.html).not.toContain('<script>window');
    expect(mail.html).not.toContain('<img src=x');
    expect(mail.html).toContain('&lt;script&gt;window.__xss=1&lt;/script&gt;');
    expect(Math.max(...mail.text.split('\n').map((l) => l.length))).toBeLessThan(1000);

    // The dashboard, rendered by a real browser, shows the text and runs nothing.
    if (haveChromium) {
      const browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        args: ['--headless', '--no-sandbox', '--disable-gpu'],
      });
      try {
        const page = await browser.newPage();
        await page.goto(`http://127.0.0.1:${port}/`);
        const shown = page.locator('section.card[data-branch="evil"] .subject');
        await shown.waitFor({ timeout: 10_000 });
        expect(await shown.textContent()).toContain('<script>window.__xss=1</script>');
        expect(
          await page.evaluate(() => (window as unknown as { __xss?: number }).__xss),
        ).toBeUndefined();
        expect(await page.locator('script:not([src])').count()).toBe(1);
      } finally {
        await browser.close();
      }
    }
    const log = await runCli(['log', 'evil', '--config', file]);
    expect(log.code).toBe(0);
    expect(await d.stop()).toBe(0);
    expect(marks.filter((m) => existsSync(m))).toEqual([]);
    expect(filesUnder(t.dir).filter((f) => /^pwned-[a-z]+$/.test(path.basename(f)))).toEqual([]);
  } finally {
    await smtp.close();
  }
});

(haveSvnserve ? test : test.skip)(
  'passwords in source URLs, ${SMTP_PASSWORD} and ${STAGEPOST_TOKEN} appear in no log, status, API, dashboard, build log, state file, mail or argv',
  async () => {
    const secrets = {
      git: 'gitPW-s3cr3t-81',
      svn: 'svnPW-s3cr3t-27',
      smtp: 'smtpPW-s3cr3t-63',
      token: 'tokPW-s3cr3t-45',
    };
    const remote = makeGitRemote(t.dir);
    remote.commit('main');
    const svnRepo = makeSvnRemote(t.dir, 'svnrepo');
    writeFileSync(
      path.join(svnRepo.repo, 'conf', 'svnserve.conf'),
      '[general]\nanon-access = none\nauth-access = write\npassword-db = passwd\nrealm = test\n',
    );
    writeFileSync(path.join(svnRepo.repo, 'conf', 'passwd'), `[users]\nalice = ${secrets.svn}\n`);
    svnRepo.commit('trunk', 'first', { author: 'alice' });
    const svnPort = await freePort();
    const svnserve = await startServer(
      'svnserve',
      [
        '-d',
        '--foreground',
        '-r',
        t.dir,
        '--listen-host',
        '127.0.0.1',
        '--listen-port',
        String(svnPort),
      ],
      svnPort,
    );
    const gitHttp = await gitHttpServer(t.dir, 'deploy', secrets.git);
    const smtp = await startAuthSmtp('mailer', secrets.smtp);
    const port = await freePort();
    try {
      const file = writeCi(
        t.dir,
        `steps:
  - { name: show, run: 'git -C src/app remote -v 2>/dev/null; svn info src/app 2>/dev/null; cat src/app/.git/config 2>/dev/null; env | grep -i -e pass -e token -e url || true' }
http:
  listen: ${port}
  token: \${STAGEPOST_TOKEN}
notify:
  - { use: email, transport: "smtp://mailer:\${SMTP_PASSWORD}@127.0.0.1:${smtp.port}", from: "s@example.com", to: [ops@example.com], on: [success, failure] }
branches:
${gitBranchYaml('gitb', `http://deploy:${secrets.git}@127.0.0.1:${gitHttp.port}/repo.git`, 'main')}  svnb:
    dir: ./sites/svnb
    steps:
      - { name: show, run: 'svn info src/app; exit 3' }
    sources:
      - { name: app, vcs: svn, url: "svn://alice:${secrets.svn}@127.0.0.1:${svnPort}/svnrepo/trunk", path: src/app }
`,
      );
      const env = { STAGEPOST_TOKEN: secrets.token, SMTP_PASSWORD: secrets.smtp };
      const d = daemons.start(file, env);

      // While it polls svn, look at every process's argv, as any local user can.
      let svnSeen = 0;
      const leakedArgv: string[] = [];
      let scanning = true;
      const scan = (async () => {
        while (scanning) {
          for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
            let argv = '';
            try {
              argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
            } catch {
              continue;
            }
            if (/\bsvn\b.*--password-from-stdin/.test(argv)) svnSeen += 1;
            if (Object.values(secrets).some((s) => argv.includes(s))) leakedArgv.push(argv);
          }
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await d.waitFor(isBuildFinished('gitb'), { what: 'the git-over-http build' });
      await d.waitFor(isBuildFinished('svnb'), { what: 'the svnserve build' });
      await morePolls(d, 12);
      scanning = false;
      await scan;
      expect(svnSeen).toBeGreaterThan(0);
      expect(leakedArgv).toEqual([]);
      expect(
        d.events
          .filter(isBuildFinished())
          .map((e) => `${String(e.branch)} ${String(e.result)}`)
          .sort(),
      ).toEqual(['gitb success', 'svnb failure']);

      // The secrets were really used: mail went through AUTH with the right password.
      await new Promise<void>((resolve) => {
        const i = setInterval(() => {
          if (smtp.mails.length >= 2) {
            clearInterval(i);
            resolve();
          }
        }, 50);
      });
      expect(smtp.authAttempts).toContain(`mailer:${secrets.smtp}`);

      const base = `http://127.0.0.1:${port}`;
      const auth = { Authorization: `Bearer ${secrets.token}` };
      expect((await fetch(`${base}/api/poll`, { method: 'POST', headers: auth })).status).toBe(200);
      const seen: Record<string, string> = {
        'daemon log': d.stderr,
        '/api/status': await (await fetch(`${base}/api/status`)).text(),
        dashboard: await (await fetch(`${base}/`)).text(),
        '/metrics': await (await fetch(`${base}/metrics`)).text(),
        'gitb log (http)': await (await fetch(`${base}/api/branches/gitb/builds/1/log`)).text(),
        'svnb log (http)': await (await fetch(`${base}/api/branches/svnb/builds/1/log`)).text(),
        'status --json': (await runCli(['status', '--json', '--config', file], { env })).stdout,
        status: (await runCli(['status', '--config', file], { env })).stdout,
        'poll --json': (await runCli(['poll', '--json', '--config', file], { env })).stdout,
      };
      expect(seen['svnb log (http)']).toMatch(/URL: svn:\/\/127\.0\.0\.1/);
      for (const [i, m] of smtp.mails.entries()) {
        const parsed = parseMail(m.raw);
        seen[`mail ${i} raw`] = m.raw;
        seen[`mail ${i} text`] = parsed.text;
        seen[`mail ${i} html`] = parsed.html;
      }
      expect(await d.stop()).toBe(0);
      seen['daemon log after stop'] = d.stderr;
      for (const f of filesUnder(path.join(t.dir, 'state')))
        seen[path.relative(t.dir, f)] = readFileSync(f, 'latin1');
      for (const f of filesUnder(path.join(t.dir, 'sites')).filter(
        (f) => f.includes('/.git/config') || f.includes('/.svn/wc.db'),
      ))
        seen[path.relative(t.dir, f)] = readFileSync(f, 'latin1');
      expect(Object.keys(seen).some((k) => k.startsWith('state/logs/svnb/'))).toBe(true);
      const leaks = Object.entries(seen).flatMap(([where, text]) =>
        Object.entries(secrets)
          .filter(([, s]) => text.includes(s) || text.includes(Buffer.from(s).toString('base64')))
          .map(([which]) => `${which} in ${where}`),
      );
      expect(leaks).toEqual([]);
    } finally {
      await smtp.close();
      await gitHttp.close();
      await svnserve.stop();
    }
  },
);
