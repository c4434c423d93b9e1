/**
 * Issue 15.13, the small things a user notices: a FIXED mail says FIXED in
 * its body, svn revisions are written r1, `mail` on a branch without a
 * catcher says so, `status` does not call a killed daemon running, the
 * demo's busy port names the command to use. Real SMTP, git, svn, daemon.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { NotifyDispatcher } from '../../src/notify/dispatcher.js';
import { memoryLogger } from '../../src/log.js';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote, gitBranchYaml } from '../helpers/git.js';
import { makeSvnRemote } from '../helpers/svn.js';
import { BIN, runCli } from '../helpers/cli.js';
import { describeIf, hasTool, processAlive } from '../helpers/tools.js';
import { buildDraft, notifierConfig, parseMail, startSmtp } from '../notify/helpers.js';
import type { StatusDocument } from '../../src/api.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir();
});
afterEach(() => t.cleanup());

test('a FIXED mail says FIXED in its body too, and an svn commit is r-numbered', async () => {
  const smtp = await startSmtp();
  const d = new NotifyDispatcher({
    stateDir: path.join(t.dir, 'state'),
    log: memoryLogger(),
    redact: (x) => x,
  });
  try {
    await d.setNotifiers(
      [
        notifierConfig('email', ['fixed'], {
          transport: `smtp://127.0.0.1:${smtp.port}`,
          from: 'staging@example.com',
          to: ['ops@example.com'],
        }),
      ],
      new Map(),
      { configDir: t.dir },
    );
    const draft = buildDraft({ build: { result: 'success', failedStep: undefined } });
    draft.commits[1].id = '4812';
    await d.dispatch(draft, ['success', 'fixed']);
    const [mail] = await smtp.waitFor(1);
    const { headers, text } = parseMail(mail.raw);
    expect(headers.subject).toMatch(/branch1 FIXED/);
    expect(text).toMatch(/^branch1: build #12 FIXED after/m);
    expect(text).not.toMatch(/SUCCESS/);
    expect(text).toMatch(/^\s*r4812\s+chris/m);
  } finally {
    await d.close();
    await smtp.close();
  }
});

describeIf(hasTool('svn') && hasTool('svnadmin'))('svn revisions', () => {
  test('status and poll write an svn revision r1, as the mail and the log do', async () => {
    const svn = makeSvnRemote(t.dir);
    const rev = svn.commit('trunk');
    const file = path.join(t.dir, 'ci.yaml');
    writeFileSync(
      file,
      `version: 1
state_dir: ./state
steps: [{ name: noop, run: "true" }]
branches:
  staging:
    dir: ./sites/staging
    sources: [{ name: karl, vcs: svn, url: "${svn.url}/trunk", path: src/karl }]
`,
    );
    const update = await runCli(['update', 'staging', '--config', file]);
    expect(update.code).toBe(0);
    expect(update.stdout).toContain(`==> checkout karl → r${rev} in src/karl`);
    expect((await runCli(['status', '--config', file])).stdout).toMatch(
      new RegExp(`staging\\s+\\S+\\s+karl@r${rev}\\s`),
    );
    expect((await runCli(['poll', '--config', file])).stdout).toMatch(
      new RegExp(`staging\\s+karl\\s+r${rev}\\s+r${rev}\\s+no`),
    );
  });
});

test('a health check that answers at once logs "1 attempt"', async () => {
  const app = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  const { port } = app.address() as net.AddressInfo;
  try {
    const remote = makeGitRemote(t.dir);
    remote.commit('main');
    const file = path.join(t.dir, 'ci.yaml');
    writeFileSync(
      file,
      `version: 1
state_dir: ./state
steps: [{ name: noop, run: "true" }]
health: { url: "http://127.0.0.1:{port}/{customer}/", timeout: 5s }
branches:
${gitBranchYaml('staging', remote.url, 'main', `    port: ${port}\n    customers: [osf]\n`)}`,
    );
    const r = await runCli(['update', 'staging', '--config', file]);
    expect(r.stdout).toContain(`http://127.0.0.1:${port}/osf/: ok 200 (1 attempt)\n`);
    expect(r.code).toBe(0);
  } finally {
    app.close();
  }
});

test('mail on a branch without a catcher says it has none', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
steps: [{ name: noop, run: "true" }]
branches:
${gitBranchYaml('staging', remote.url, 'main')}${gitBranchYaml('caught', remote.url, 'main', '    smtp_port: 2599\n')}`,
  );
  const none = await runCli(['mail', 'staging', '--config', file]);
  expect(none.code).toBe(0);
  expect(none.stdout).toMatch(
    /^staging has no mail catcher, so no mail is caught: give it "smtp_port/,
  );
  const json = await runCli(['mail', 'staging', '--json', '--config', file]);
  expect(JSON.parse(json.stdout)).toEqual({ branch: 'staging', catcher: false, mail: [] });
  expect((await runCli(['mail', 'caught', '--config', file])).stdout).toBe(
    'caught: no mail caught\n',
  );
  const status = JSON.parse(
    (await runCli(['status', '--json', '--config', file])).stdout,
  ) as StatusDocument;
  expect(status.branches.map((b) => [b.name, b.smtpPort])).toEqual([
    ['staging', null],
    ['caught', 2599],
  ]);
});

test('status does not call a daemon killed -9 running, even while it is an unreaped zombie', async () => {
  const remote = makeGitRemote(t.dir);
  remote.commit('main');
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(
    file,
    `version: 1
state_dir: ./state
poll: { interval: 1h, timeout: 5s }
steps: [{ name: noop, run: "true" }]
branches:
${gitBranchYaml('staging', remote.url, 'main')}`,
  );
  // The shell starts the daemon, then becomes a `sleep` that never reaps it.
  const parent = spawn(
    'sh',
    [
      '-c',
      '"$0" "$1" run --config "$2" 2>&1 & echo "pid $!"; exec sleep 120',
      process.execPath,
      BIN,
      file,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, STAGEPOST_LOG_FORMAT: 'json' } },
  );
  try {
    let out = '';
    const pid = await new Promise<number>((resolve, reject) => {
      parent.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^pid (\d+)$/m.exec(out);
        if (m && out.includes('"build finished"')) resolve(Number(m[1]));
      });
      parent.on('exit', () => reject(new Error(`the shell ended early:\n${out}`)));
    });
    const running = JSON.parse(
      (await runCli(['status', '--json', '--config', file])).stdout,
    ) as StatusDocument;
    expect(running.daemon).toMatchObject({ running: true, pid });
    process.kill(pid, 'SIGKILL');
    // Dead, not reaped: kill(pid, 0) still succeeds on a zombie.
    while (processAlive(pid)) await new Promise((r) => setImmediate(r));
    expect(() => process.kill(pid, 0)).not.toThrow();
    const after = await runCli(['status', '--config', file]);
    expect(after.stdout).toMatch(/^daemon: not running$/m);
    const doc = JSON.parse(
      (await runCli(['status', '--json', '--config', file])).stdout,
    ) as StatusDocument;
    expect(doc.daemon.running).toBe(false);
  } finally {
    parent.kill('SIGKILL');
  }
});

test("the demo's busy port names the command that runs it on another", async () => {
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
  const { port } = busy.address() as net.AddressInfo;
  try {
    const r = await runCli(['demo', '--port', String(port)], {
      cwd: t.dir,
      env: { STAGEPOST_DEMO_DIR: path.join(t.dir, 'sandbox') },
    });
    expect(r.stderr).toContain(
      `port ${port} (the demo's dashboard) is in use by another process — run the demo on another port: npm run demo -- --port ${port + 10}`,
    );
    expect(r.code).toBe(2);
  } finally {
    busy.close();
  }
  const readme = readFileSync(path.join(import.meta.dirname, '../../README.md'), 'utf8');
  expect(readme).toContain('npm run demo -- --port 8760');
});
