import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createGitPlugin } from '../../plugins/git/index.js';
import type { StagepostError } from '../../src/plugin-api.js';
import { git, makeGitRemote } from '../helpers/git.js';
import { tempDir } from '../helpers/tmp.js';
import { pluginContext } from './vcs-helpers.js';

const PASSWORD = 'tok%en:s3cret';

/** git's smart HTTP (`git http-backend` as CGI) behind basic auth, in process. */
function gitHttpServer(projectRoot: string): Promise<{ port: number; close: () => Promise<void> }> {
  const expected = `Basic ${Buffer.from(`deploy:${PASSWORD}`).toString('base64')}`;
  const server = http.createServer((req, res) => {
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end();
      return;
    }
    const u = new URL(req.url ?? '/', 'http://localhost');
    const cgi = spawn('git', ['http-backend'], {
      env: {
        ...process.env, GIT_PROJECT_ROOT: projectRoot, GIT_HTTP_EXPORT_ALL: '1', PATH_INFO: u.pathname, QUERY_STRING: u.search.slice(1),
        REQUEST_METHOD: req.method, CONTENT_TYPE: req.headers['content-type'] ?? '', HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''), REMOTE_USER: 'deploy', REMOTE_ADDR: '127.0.0.1',
      },
    });
    req.pipe(cgi.stdin);
    const chunks: Buffer[] = [];
    cgi.stdout.on('data', (d: Buffer) => chunks.push(d));
    cgi.on('close', () => {
      const out = Buffer.concat(chunks);
      const end = out.indexOf('\r\n\r\n');
      const headers: Record<string, string> = {};
      for (const line of out.subarray(0, end).toString().split('\r\n')) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const status = Number((headers.status ?? '200').split(' ')[0]);
      delete headers.status;
      res.writeHead(status, headers).end(out.subarray(end + 4));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((r) => server.close(() => r())),
  })));
}

test('a password in an https-style URL reaches git only through the credential helper', async () => {
  const tmp = tempDir('stagepost-git-http-');
  const server = await gitHttpServer(tmp.dir);
  try {
    const remote = makeGitRemote(tmp.dir);
    const main = remote.commit('main');
    // An operator's `store` helper must not get to save the password.
    const home = path.join(tmp.dir, 'home');
    mkdirSync(home);
    writeFileSync(path.join(home, '.gitconfig'), '[credential]\n\thelper = store\n');
    const argvs: string[][] = [];
    const plugin = createGitPlugin(pluginContext(path.join(tmp.dir, 'state')), { env: { HOME: home }, onRun: (a) => argvs.push([...a]) });
    const base = `http://deploy:${encodeURIComponent(PASSWORD)}@127.0.0.1:${server.port}/repo.git`;
    const src = { name: 'app', url: base, ref: 'main' };

    expect(await plugin.remoteRevisions([src], { timeoutMs: 20_000 })).toEqual([{ revision: main }]);
    const dir = path.join(tmp.dir, 'co');
    await plugin.checkout(src, main, { dir, timeoutMs: 20_000 });
    expect(git(dir, ['rev-parse', 'HEAD'])).toBe(main);
    expect(git(dir, ['remote', 'get-url', 'origin'])).toBe(`http://deploy@127.0.0.1:${server.port}/repo.git`);

    const wrong = await plugin.remoteRevisions([{ ...src, url: base.replace(encodeURIComponent(PASSWORD), 'wrong-pass') }], { timeoutMs: 20_000 }).catch((e: unknown) => e);
    expect((wrong as StagepostError).code).toBe('EREMOTE');
    expect((wrong as Error).message).not.toContain('wrong-pass');

    const leaked = (text: string) => text.includes('s3cret') || text.includes('wrong-pass');
    expect(argvs.length).toBeGreaterThan(3);
    expect(argvs.some((a) => a.some(leaked))).toBe(false);
    expect(leaked(readFileSync(path.join(dir, '.git', 'config'), 'utf8'))).toBe(false);
    expect(existsSync(path.join(home, '.git-credentials'))).toBe(false);
  } finally {
    await server.close();
    tmp.cleanup();
  }
});
