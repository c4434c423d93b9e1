import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createGitPlugin } from '../../plugins/git/index.js';
import type { StagepostError } from '../../src/plugin-api.js';
import { git, makeGitRemote } from '../helpers/git.js';
import { tempDir } from '../helpers/tmp.js';
import { pluginContext } from './vcs-helpers.js';
import { gitHttpServer } from '../helpers/git-http-server.js';

const PASSWORD = 'tok%en:s3cret';

test('a password in an https-style URL reaches git only through the credential helper', async () => {
  const tmp = tempDir('stagepost-git-http-');
  const server = await gitHttpServer(tmp.dir, 'deploy', PASSWORD);
  try {
    const remote = makeGitRemote(tmp.dir);
    const main = remote.commit('main');
    // An operator's `store` helper must not get to save the password.
    const home = path.join(tmp.dir, 'home');
    mkdirSync(home);
    writeFileSync(path.join(home, '.gitconfig'), '[credential]\n\thelper = store\n');
    const argvs: string[][] = [];
    const plugin = createGitPlugin(pluginContext(path.join(tmp.dir, 'state')), {
      env: { HOME: home },
      onRun: (a) => argvs.push([...a]),
    });
    const base = `http://deploy:${encodeURIComponent(PASSWORD)}@127.0.0.1:${server.port}/repo.git`;
    const src = { name: 'app', url: base, ref: 'main' };

    expect(await plugin.remoteRevisions([src], { timeoutMs: 20_000 })).toEqual([
      { revision: main },
    ]);
    const dir = path.join(tmp.dir, 'co');
    await plugin.checkout(src, main, { dir, timeoutMs: 20_000 });
    expect(git(dir, ['rev-parse', 'HEAD'])).toBe(main);
    expect(git(dir, ['remote', 'get-url', 'origin'])).toBe(
      `http://deploy@127.0.0.1:${server.port}/repo.git`,
    );

    const wrong = await plugin
      .remoteRevisions(
        [{ ...src, url: base.replace(encodeURIComponent(PASSWORD), 'wrong-pass') }],
        { timeoutMs: 20_000 },
      )
      .catch((e: unknown) => e);
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
