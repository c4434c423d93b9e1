/**
 * The daemon as the unit runs it (Type=notify, LoadCredential=), against a
 * real unix datagram socket as $NOTIFY_SOCKET and a real credentials
 * directory: READY=1 only once the HTTP port answers, none for a bad ci.yaml,
 * STOPPING=1 on stop; a credential's value works, is masked in logs and
 * status, and is in no environment.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DaemonProcess, isBuildFinished, isPolled, runCli } from '../helpers/cli.js';
import { gitBranchYaml, makeGitRemote } from '../helpers/git.js';
import { NotifySocket } from '../helpers/notify-socket.js';
import { tempDir } from '../helpers/tmp.js';
import { describeIf, hasTool } from '../helpers/tools.js';
import { freePort } from '../plugins/vcs-helpers.js';
import { SMTPServer } from 'smtp-server';

const TOKEN = 'cred-http-token-7e1f';
const REPO_SECRET = 'cred-repo-secret-93ab';
// URL-special characters on purpose: the value is data, not part of the URL.
const SMTP_PASSWORD = 'cred-smtp/pass@word:41c2+=';

let t: ReturnType<typeof tempDir>;
let daemon: DaemonProcess | null = null;
let notify: NotifySocket | null = null;
beforeEach(() => {
  t = tempDir();
});
afterEach(async () => {
  await daemon?.kill9();
  daemon = null;
  notify?.close();
  t.cleanup();
});

describeIf(hasTool('systemd-notify'))('Type=notify', () => {
  test('READY=1 once the HTTP port answers, STOPPING=1 on stop, no NOTIFY_SOCKET for steps', async () => {
    const remote = makeGitRemote(t.dir);
    remote.commit('main');
    const port = await freePort();
    const envFile = path.join(t.dir, 'step-env.txt');
    const file = path.join(t.dir, 'ci.yaml');
    writeFileSync(
      file,
      `version: 1
state_dir: ./state
poll: { interval: 1h, timeout: 5s }
http: { listen: ${port} }
steps: [{ name: env, run: 'env > ${envFile}' }]
branches:
${gitBranchYaml('staging', remote.url, 'main')}`,
    );
    notify = await NotifySocket.open(t.dir);
    daemon = new DaemonProcess(file, { NOTIFY_SOCKET: notify.path });
    await notify.waitFor((m) => m.split('\n').includes('READY=1'), 'READY=1');
    // Told ready means ready: the port answers at once.
    expect((await fetch(`http://127.0.0.1:${port}/api/status`)).status).toBe(200);
    expect(notify.having('READY=1')[0]).toContain('STATUS=');
    expect(daemon.count((e) => e.msg === 'stagepost started')).toBe(1);

    await daemon.waitFor(isBuildFinished('staging'), { what: 'the first build' });
    // An sd_notify-aware app server started by a step must not talk for the daemon.
    expect(readFileSync(envFile, 'utf8')).not.toContain('NOTIFY_SOCKET');

    expect(notify.having('STOPPING=1')).toEqual([]);
    expect(await daemon.stop()).toBe(0);
    await notify.waitFor((m) => m.split('\n').includes('STOPPING=1'), 'STOPPING=1');
    expect(notify.having('READY=1')).toHaveLength(1);
  });

  test('a bad ci.yaml: exit 2 and never READY=1, so `systemctl start` fails', async () => {
    const file = path.join(t.dir, 'ci.yaml');
    writeFileSync(file, 'version: 1\nstate_dir: ./state\nbranches: { staging: { dir: 3 } }\n');
    notify = await NotifySocket.open(t.dir);
    daemon = new DaemonProcess(file, { NOTIFY_SOCKET: notify.path });
    expect(await daemon.exited).toBe(2);
    expect(daemon.stderr).toContain('ci.yaml:3');
    await notify.flush();
    expect(notify.messages).toEqual([]);
  });
});

test('${credential:NAME}: the token works, secrets are masked in logs and status, in no environment', async () => {
  const creds = path.join(t.dir, 'credentials');
  mkdirSync(creds, { mode: 0o700 });
  writeFileSync(path.join(creds, 'http_token'), `${TOKEN}\n`, { mode: 0o400 });
  writeFileSync(path.join(creds, 'repo_secret'), `${REPO_SECRET}\n`, { mode: 0o400 });
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const port = await freePort();
  const envFile = path.join(t.dir, 'step-env.txt');
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
poll: { interval: 1h, timeout: 5s }
http: { listen: ${port}, token: "\${credential:http_token}" }
steps: [{ name: env, run: 'env > ${envFile}' }]
branches:
${gitBranchYaml('staging', remote.url, 'main')}${gitBranchYaml('broken', `file://${t.dir}/gone-\${credential:repo_secret}.git`, 'main')}`,
  );
  const env = { CREDENTIALS_DIRECTORY: creds };
  daemon = new DaemonProcess(file, env);
  await daemon.waitFor(isBuildFinished('staging'), { what: 'the first build' });
  await daemon.waitFor((e) => isPolled('broken')(e) && !!e.error, { what: "broken's poll" });

  // The value is used: the credential's token is the one the HTTP API takes.
  const base = `http://127.0.0.1:${port}`;
  const post = (token: string) =>
    fetch(`${base}/api/poll`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  expect((await post('wrong-token')).status).toBe(401);
  expect((await post(TOKEN)).status).toBe(200);

  // The failed poll names the repository path, secret and all: masked everywhere.
  const logs = daemon.stderr;
  expect(logs).toContain(`gone-[secure].git`);
  const apiStatus = await (await fetch(`${base}/api/status`)).text();
  expect(apiStatus).toContain('gone-[secure]');
  const cli = await runCli(['status', '--json', '--config', file], { env });
  expect(cli.code).toBe(0);
  expect(cli.stdout).toContain('gone-[secure]');
  for (const text of [logs, apiStatus, cli.stdout, cli.stderr]) {
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(REPO_SECRET);
  }

  // In no environment: not the daemon's (as started), not a step's.
  const environ = readFileSync(`/proc/${daemon.child.pid}/environ`, 'utf8');
  const stepEnv = readFileSync(envFile, 'utf8');
  expect(environ).toContain(`CREDENTIALS_DIRECTORY=${creds}`);
  for (const text of [environ, stepEnv]) {
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(REPO_SECRET);
  }
});

test('${credential:NAME} as the SMTP password: a real SMTP server that checks it takes the failure mail', async () => {
  const creds = path.join(t.dir, 'credentials');
  mkdirSync(creds, { mode: 0o700 });
  writeFileSync(path.join(creds, 'smtp_password'), `${SMTP_PASSWORD}\n`, { mode: 0o400 });
  const logins: Array<{ user: string; ok: boolean }> = [];
  const mails: string[] = [];
  let received: () => void = () => undefined;
  const arrived = new Promise<void>((resolve) => (received = resolve));
  const server = new SMTPServer({
    authOptional: false,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, callback) {
      const ok = auth.username === 'staging' && auth.password === SMTP_PASSWORD;
      logins.push({ user: auth.username ?? '', ok });
      callback(ok ? null : new Error('wrong password'), ok ? { user: auth.username } : undefined);
    },
    onData(stream, _session, callback) {
      let raw = '';
      stream.on('data', (c: Buffer) => (raw += c.toString()));
      stream.on('end', () => {
        mails.push(raw);
        callback();
        received();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.server.address();
  const smtpPort = typeof address === 'object' && address ? address.port : 0;
  try {
    const remote = makeGitRemote(t.dir);
    remote.commit('main');
    const file = path.join(t.dir, 'ci.yaml');
    writeFileSync(
      file,
      `version: 1
state_dir: ./state
poll: { interval: 1h, timeout: 5s }
steps: [{ name: compile, run: 'exit 1' }]
notify:
  - use: email
    transport: "smtp://staging:\${credential:smtp_password}@127.0.0.1:${smtpPort}"
    from: "Staging <staging@example.test>"
    to: [ops@example.test]
    on: [failure]
branches:
${gitBranchYaml('staging', remote.url, 'main')}`,
    );
    daemon = new DaemonProcess(file, { CREDENTIALS_DIRECTORY: creds });
    await Promise.race([
      arrived,
      daemon.exited.then((code) => {
        throw new Error(`daemon exited (${code}) before the mail came\n${daemon?.stderr}`);
      }),
    ]);
    expect(logins).toEqual([{ user: 'staging', ok: true }]);
    expect(mails[0]).toMatch(/^Subject: .*staging/m);
    expect(mails[0]).not.toContain(SMTP_PASSWORD);
    expect(daemon.stderr).not.toContain(SMTP_PASSWORD);
  } finally {
    // The daemon first: the server's close waits for its clients to leave.
    await daemon?.kill9();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
