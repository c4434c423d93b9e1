/**
 * Branch sites through the real CLI: the step environment, health checks
 * that fail a build and pass again, and mail sent by a step to the branch's
 * catcher — listed by `stagepost mail`, relayed only with `mailout: true`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { freePort } from '../plugins/vcs-helpers.js';
import { makeGitRemote } from '../helpers/git.js';
import { runCli, ROOT } from '../helpers/cli.js';
import { startSmtp, type TestSmtp } from '../notify/helpers.js';

let t: ReturnType<typeof tempDir>;
let smtp: TestSmtp | null = null;
let app: http.Server | null = null;
beforeEach(() => {
  t = tempDir();
});
afterEach(async () => {
  await smtp?.close();
  smtp = null;
  if (app) await new Promise((r) => app!.close(r));
  app = null;
  t.cleanup();
});

test('steps see exactly the environment of SPEC', async () => {
  const remote = makeGitRemote(t.dir);
  const rev = remote.commit('main');
  const smtpPort = await freePort();
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
site: { base_url: "https://staging.example.test" }
steps:
  - { name: env, run: 'env | grep ^STAGEPOST_ | sort > env.txt' }
branches:
  branch1:
    dir: ./sites/branch1
    port: 6544
    smtp_port: ${smtpPort}
    sources: [{ name: osf-karl.x, vcs: git, url: "${remote.url}", ref: main, path: src/karl }]
    customers: [osf, another]
    mailin: [osf]
`,
  );
  const result = await runCli(['update', 'branch1', '--config', file]);
  expect(result.code).toBe(0);
  // Only SPEC's variables: the daemon's own STAGEPOST_* settings are not passed on.
  const env = Object.fromEntries(
    readFileSync(path.join(t.dir, 'sites/branch1/env.txt'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  expect(env).toEqual({
    STAGEPOST_BRANCH: 'branch1',
    STAGEPOST_BUILD: '1',
    STAGEPOST_DIR: path.join(t.dir, 'sites/branch1'),
    STAGEPOST_CUSTOMERS: 'osf another',
    STAGEPOST_MAILIN: 'osf',
    STAGEPOST_URLS:
      'https://staging.example.test/branch1/osf/ https://staging.example.test/branch1/another/',
    STAGEPOST_REV_OSF_KARL_X: rev,
    STAGEPOST_PREV_REV_OSF_KARL_X: '',
    STAGEPOST_SMTP: `127.0.0.1:${smtpPort}`,
    STAGEPOST_PORT: '6544',
  });
});

test('a build whose customer site is down fails on health, and succeeds when the site is back', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const port = await freePort();
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
steps: [{ name: noop, run: 'true' }]
health:
  url: http://127.0.0.1:{port}/{customer}/
  expect: 200-399
  timeout: 700ms
branches:
  b1:
    dir: ./sites/b1
    port: ${port}
    sources: [{ name: app, vcs: git, url: "${remote.url}", ref: main, path: src/app }]
    customers: [osf, another]
`,
  );
  const down = await runCli(['update', 'b1', '--config', file]);
  expect(down.code).toBe(1);
  expect(down.stdout).toMatch(/b1\s+failure\s+#1\s+\S+\s+health/);
  expect(down.stdout).toContain(`http://127.0.0.1:${port}/osf/`);
  const seen: string[] = [];
  app = http.createServer((req, res) => {
    seen.push(req.url!);
    res.writeHead(req.url === '/another/' ? 302 : 200, { Location: '/x' });
    res.end('ok');
  });
  await new Promise<void>((r) => app!.listen(port, '127.0.0.1', r));
  const up = await runCli(['update', 'b1', '--force', '--config', file]);
  expect(up.code).toBe(0);
  expect(seen.sort()).toEqual(['/another/', '/osf/']);
  const status = JSON.parse((await runCli(['status', '--json', '--config', file])).stdout);
  expect(status.branches[0]).toMatchObject({
    state: 'idle',
    lastBuild: { id: 2, result: 'success' },
  });
});

test.each([false, true])(
  'mail sent by a step to STAGEPOST_SMTP is caught and listed; relayed only with mailout: %s',
  async (mailout) => {
    smtp = await startSmtp();
    const remote = makeGitRemote(t.dir);
    remote.commit('main');
    const catcherPort = await freePort();
    const file = path.join(t.dir, 'ci.yaml');
    const sendMail = path.join(t.dir, 'send-mail.mjs');
    writeFileSync(
      sendMail,
      `import { createRequire } from 'node:module';
const nodemailer = createRequire(${JSON.stringify(path.join(ROOT, 'package.json'))})('nodemailer');
const [host, port] = process.env.STAGEPOST_SMTP.split(':');
await nodemailer.createTransport({ host, port: Number(port), secure: false, ignoreTLS: true }).sendMail({
  from: 'app@staging.example.test', to: 'real.person@example.org', subject: 'Your weekly digest', text: 'hello' });
`,
    );
    writeFileSync(
      file,
      `version: 1
state_dir: ./state
site: { smtp_relay: "smtp://127.0.0.1:${smtp.port}" }
env: { pass: [SEND_MAIL] }
steps: [{ name: mail, run: 'node "$SEND_MAIL"' }]
branches:
  branch1:
    dir: ./sites/branch1
    smtp_port: ${catcherPort}
    mailout: ${mailout}
    sources: [{ name: app, vcs: git, url: "${remote.url}", ref: main, path: src/app }]
`,
    );
    const result = await runCli(['update', 'branch1', '--config', file], {
      env: { SEND_MAIL: sendMail },
    });
    expect(result.code).toBe(0);
    const listed = await runCli(['mail', 'branch1', '--json', '--config', file]);
    const { mail } = JSON.parse(listed.stdout) as {
      mail: Array<{ id: string; subject: string; to: string[] }>;
    };
    expect(mail).toHaveLength(1);
    expect(mail[0]).toMatchObject({
      subject: 'Your weekly digest',
      to: ['real.person@example.org'],
    });
    const raw = await runCli(['mail', 'branch1', mail[0].id, '--config', file]);
    expect(raw.stdout).toContain('hello');
    if (mailout) {
      const [relayed] = await smtp.waitFor(1);
      expect(relayed.rcpt).toEqual(['real.person@example.org']);
    } else {
      expect(smtp.mails).toHaveLength(0);
    }
  },
);
