import { chmodSync, copyFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { run } from '../../src/util/exec.js';
import { git, makeGitRemote } from '../helpers/git.js';
import { makeSvnRemote } from '../helpers/svn.js';
import { tempDir } from '../helpers/tmp.js';
import { describeIf, hasTool } from '../helpers/tools.js';

const HOOKS = path.resolve(import.meta.dirname, '../../config/hooks');
const TOKEN = 'hook-token-1234';

interface Seen {
  method: string;
  url: string;
  authorization?: string;
}

/** Stands in for the daemon's POST /api/poll. Pushes run async: the hook's curl needs this event loop. */
async function fakeDaemon(status = 200) {
  const seen: Seen[] = [];
  const waiters: Array<(s: Seen) => void> = [];
  const server = http.createServer((req, res) => {
    const s = {
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
    };
    seen.push(s);
    waiters.shift()?.(s);
    res.writeHead(status).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    next: () => new Promise<Seen>((r) => waiters.push(r)),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function install(hook: string, target: string, settings: Record<string, string>): void {
  copyFileSync(path.join(HOOKS, hook), target);
  chmodSync(target, 0o755);
  writeFileSync(
    path.join(path.dirname(target), 'stagepost.env'),
    Object.entries(settings)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  );
}

describeIf(hasTool('curl'))('commit hooks', () => {
  let tmp: ReturnType<typeof tempDir>;
  let daemon: Awaited<ReturnType<typeof fakeDaemon>>;
  beforeEach(async () => {
    tmp = tempDir('stagepost-hooks-');
    daemon = await fakeDaemon();
  });
  afterEach(async () => {
    await daemon.close();
    tmp.cleanup();
  });

  it('git post-receive: a push makes one POST /api/poll with the bearer token', async () => {
    const remote = makeGitRemote(tmp.dir);
    remote.commit('main');
    install('git-post-receive', path.join(remote.bare, 'hooks', 'post-receive'), {
      STAGEPOST_URL: `${daemon.url}/`,
      STAGEPOST_TOKEN: TOKEN,
      STAGEPOST_BRANCH: 'branch1',
    });
    git(remote.work, ['commit', '-q', '--allow-empty', '-m', 'poke']);
    const polled = daemon.next();
    const push = await run('git', ['push', '-q', 'origin', 'main'], {
      cwd: remote.work,
      timeoutMs: 30_000,
    });
    expect(push.exitCode).toBe(0);
    expect(await polled).toEqual({
      method: 'POST',
      url: '/api/poll?branch=branch1',
      authorization: `Bearer ${TOKEN}`,
    });
    expect(daemon.seen).toHaveLength(1);
  });

  describeIf(hasTool('svnadmin'))('svn', () => {
    it('svn post-commit: a commit makes a POST /api/poll, with settings from the file beside the hook (svn clears the environment)', async () => {
      const remote = makeSvnRemote(tmp.dir);
      install('svn-post-commit', path.join(remote.repo, 'hooks', 'post-commit'), {
        STAGEPOST_URL: daemon.url,
        STAGEPOST_TOKEN: TOKEN,
      });
      const polled = daemon.next();
      const commit = await run(
        'svn',
        ['--non-interactive', 'mkdir', '-m', 'poke', `${remote.url}/trunk/poke`],
        { timeoutMs: 30_000 },
      );
      expect(commit.exitCode).toBe(0);
      expect(await polled).toEqual({
        method: 'POST',
        url: '/api/poll',
        authorization: `Bearer ${TOKEN}`,
      });
    });
  });

  it.each(['git-post-receive', 'svn-post-commit'])(
    '%s never fails the push: daemon down, 401, or not configured',
    async (hook) => {
      const file = path.join(HOOKS, hook);
      const down = await run(file, [], {
        timeoutMs: 30_000,
        input: '',
        env: {
          PATH: process.env.PATH,
          STAGEPOST_URL: 'http://127.0.0.1:1',
          STAGEPOST_TOKEN: TOKEN,
        },
      });
      expect(down.exitCode).toBe(0);
      expect(down.stderr).toContain('could not reach http://127.0.0.1:1');

      const refusing = await fakeDaemon(401);
      try {
        const unauthorized = await run(file, [], {
          timeoutMs: 30_000,
          input: '',
          env: { PATH: process.env.PATH, STAGEPOST_URL: refusing.url, STAGEPOST_TOKEN: 'wrong' },
        });
        expect(unauthorized.exitCode).toBe(0);
        expect(unauthorized.stderr).toContain('401');
        expect(refusing.seen).toEqual([
          { method: 'POST', url: '/api/poll', authorization: 'Bearer wrong' },
        ]);
      } finally {
        await refusing.close();
      }

      const unset = await run(file, [], {
        timeoutMs: 30_000,
        input: '',
        env: { PATH: process.env.PATH },
      });
      expect(unset.exitCode).toBe(0);
      expect(unset.stderr).toContain('STAGEPOST_URL is not set');
    },
  );
});
