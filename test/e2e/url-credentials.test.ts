/**
 * Issue 16.5: a password substituted into a remote URL
 * (`http://deploy:${GIT_PW}@host/app.git`) whatever characters it holds
 * (`/ + = @ : %`) never reaches a command line, and the poll and checkout
 * work: the real CLI polls and builds a real git smart-HTTP server behind
 * basic auth, and a real svnserve with a password database, while every
 * /proc/<pid>/cmdline on the machine is scanned.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { gitHttpServer } from '../helpers/git-http-server.js';
import { git, makeGitRemote } from '../helpers/git.js';
import { makeSvnRemote } from '../helpers/svn.js';
import { describeIf, hasTool } from '../helpers/tools.js';
import { freePort } from '../plugins/vcs-helpers.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const PASSWORD = 'Ab/cD+eF=gH9@x:y%z';

/** Scans every process's argv until stopped: what held the password, and how many git processes it saw. */
function scanCommandLines(needles: string[]) {
  const leaks = new Set<string>();
  let gits = 0;
  let running = true;
  const seen = new Set<string>();
  const loop = async () => {
    while (running) {
      for (const pid of readdirSync('/proc')) {
        if (!/^\d+$/.test(pid)) continue;
        let argv: string;
        try {
          argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
        } catch {
          continue;
        }
        if (needles.some((n) => argv.includes(n))) leaks.add(argv);
        if (/^git /.test(argv) && !seen.has(pid + argv)) {
          seen.add(pid + argv);
          gits += 1;
        }
      }
      await new Promise((r) => setImmediate(r));
    }
  };
  const done = loop();
  return {
    stop: async () => {
      running = false;
      await done;
      return { leaks: [...leaks], gits };
    },
  };
}

test('a password with URL-special characters reaches git only through its helper', async () => {
  const t = tempDir();
  const server = await gitHttpServer(t.dir, 'deploy', PASSWORD);
  try {
    const remote = makeGitRemote(t.dir);
    const main = remote.commit('main');
    const file = path.join(t.dir, 'ci.yaml');
    writeFileSync(
      file,
      `version: 1
state_dir: ./state
steps: [{ name: noop, run: "true" }]
branches:
  staging:
    dir: ./sites/staging
    sources:
      - { name: app, vcs: git, url: "http://deploy:\${GIT_PW}@127.0.0.1:${server.port}/repo.git", ref: main, path: src/app }
`,
    );
    const scan = scanCommandLines([
      PASSWORD,
      'Ab/cD',
      'gH9@x',
      encodeURIComponent(PASSWORD),
      'Ab%2FcD',
    ]);
    const env = { GIT_PW: PASSWORD, HOME: t.dir };
    const poll = await runCli(['poll', '--config', file], { env });
    const update = await runCli(['update', 'staging', '--config', file], { env });
    const { leaks, gits } = await scan.stop();

    expect([poll.code, poll.stderr]).toEqual([0, expect.anything()]);
    expect(poll.stdout).toContain(main.slice(0, 7));
    expect([update.code, update.stderr]).toEqual([0, expect.anything()]);
    expect(git(path.join(t.dir, 'sites/staging/src/app'), ['rev-parse', 'HEAD'])).toBe(main);
    expect(gits).toBeGreaterThan(0);
    expect(leaks).toEqual([]);
    for (const out of [poll.stdout, poll.stderr, update.stdout, update.stderr])
      expect(out).not.toContain('Ab/cD');
    const config = readFileSync(path.join(t.dir, 'sites/staging/src/app/.git/config'), 'utf8');
    expect(config).not.toContain('Ab');
  } finally {
    await server.close();
    t.cleanup();
  }
}, 120_000);

describeIf(hasTool('svnserve'))('svn', () => {
  test('a password with URL-special characters reaches svn only on stdin', async () => {
    const t = tempDir();
    const remote = makeSvnRemote(t.dir);
    const rev = remote.commit('trunk');
    const conf = path.join(remote.repo, 'conf');
    writeFileSync(
      path.join(conf, 'svnserve.conf'),
      '[general]\nanon-access = none\nauth-access = read\npassword-db = passwd\n',
    );
    writeFileSync(path.join(conf, 'passwd'), `[users]\ndeploy = ${PASSWORD}\n`);
    const port = await freePort();
    const server = spawn(
      'svnserve',
      [
        '-d',
        '--foreground',
        '-r',
        t.dir,
        '--listen-host',
        '127.0.0.1',
        '--listen-port',
        String(port),
      ],
      { stdio: 'ignore' },
    );
    try {
      await waitForPort(port);
      const file = path.join(t.dir, 'ci.yaml');
      writeFileSync(
        file,
        `version: 1
state_dir: ./state
steps: [{ name: noop, run: "true" }]
branches:
  staging:
    dir: ./sites/staging
    sources:
      - { name: app, vcs: svn, url: "svn://deploy:\${SVN_PW}@127.0.0.1:${port}/svnrepo/trunk", path: src/app }
`,
      );
      const scan = scanCommandLines([PASSWORD, 'Ab/cD', 'gH9@x', 'Ab%2FcD']);
      const env = { SVN_PW: PASSWORD, HOME: t.dir };
      const poll = await runCli(['poll', '--config', file], { env });
      const update = await runCli(['update', 'staging', '--config', file], { env });
      const { leaks } = await scan.stop();

      expect([poll.code, poll.stderr]).toEqual([0, expect.anything()]);
      expect(poll.stdout).toContain(rev);
      expect([update.code, update.stderr]).toEqual([0, expect.anything()]);
      expect(leaks).toEqual([]);
      for (const out of [poll.stdout, poll.stderr, update.stdout, update.stderr])
        expect(out).not.toContain('Ab/cD');
    } finally {
      server.kill('SIGKILL');
      t.cleanup();
    }
  }, 120_000);
});

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const open = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`svnserve did not listen on ${port}`);
}
