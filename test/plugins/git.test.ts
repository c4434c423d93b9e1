import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createGitPlugin } from '../../plugins/git/index.js';
import { gitEnvironment } from '../../plugins/git/env.js';
import { sharedSshWords } from '../../src/util/ssh.js';
import gitPlugin from '../../plugins/git/index.js';
import { StagepostError, type VcsPlugin } from '../../src/plugin-api.js';
import { git, isGitQuery, makeGitRemote, type GitRemote } from '../helpers/git.js';
import { tempDir } from '../helpers/tmp.js';
import { alive, freePort, pluginContext, startServer } from './vcs-helpers.js';
import { until } from '../helpers/wait.js';

const Q = { timeoutMs: 20_000 };
const co = (dir: string) => ({ dir, timeoutMs: 20_000 });

let tmp: ReturnType<typeof tempDir>;
let remote: GitRemote;
let calls: string[][];
let plugin: VcsPlugin;

beforeEach(() => {
  tmp = tempDir('stagepost-git-');
  remote = makeGitRemote(tmp.dir);
  calls = [];
  plugin = createGitPlugin(pluginContext(path.join(tmp.dir, 'state')), {
    onRun: (argv) => calls.push([...argv]),
  });
});
afterEach(() => tmp.cleanup());

const queryCalls = () => calls.filter(isGitQuery);
/** The same repository as remote.url, spelt so that only git itself can read it (git percent-decodes file URLs). */
const encoded = (url: string) => url.replace(/\.git$/, '%2egit');
const src = (ref: string, url = remote.url) => ({ name: 'app', url, ref });

test('the default export is a factory of the git VCS plugin', () => {
  const p = gitPlugin(pluginContext(path.join(tmp.dir, 'state')));
  expect(p.kind).toBe('vcs');
  expect(p.name).toBe('git');
  expect(p.shortRevision('3f2a9c1d0e')).toBe('3f2a9c1');
  expect(p.repositoryKey(src('main'))).toBe(remote.url);
});

describe('remoteRevisions', () => {
  test.each([
    ['a repository on this machine, with upload-pack', (url: string) => url, 'upload-pack'],
    ['a URL only git reads, with ls-remote', encoded, 'ls-remote'],
  ])(
    '%s: matches refs exactly, peels annotated tags, and asks the remote once',
    async (_what, spell, command) => {
      const main = remote.commit('main');
      const nested = remote.commit('x/main');
      const dev = remote.commit('dev');
      git(remote.work, ['tag', 'light', main]);
      git(remote.work, ['tag', '-a', 'v2', '-m', 'release', dev]);
      // A tag and a branch of the same name: the branch wins.
      git(remote.work, ['tag', 'dev', main]);
      git(remote.work, ['push', '-q', 'origin', 'refs/tags/*:refs/tags/*']);
      const annotatedObject = git(remote.bare, ['rev-parse', 'refs/tags/v2']);
      expect(annotatedObject).not.toBe(dev);

      const url = spell(remote.url);
      const answers = await plugin.remoteRevisions(
        [
          'main',
          'x/main',
          'refs/heads/x/main',
          'dev',
          'light',
          'v2',
          'refs/tags/dev',
          'nope',
          'main',
        ].map((ref) => src(ref, url)),
        Q,
      );
      expect(answers).toEqual([
        { revision: main },
        { revision: nested },
        { revision: nested },
        { revision: dev },
        { revision: main },
        { revision: dev },
        { revision: main },
        { missing: true, reason: expect.stringContaining('"nope"') },
        { revision: main },
      ]);
      expect(main).not.toBe(nested);
      expect(queryCalls().map((a) => a[1])).toEqual([command]);
    },
  );

  test('many refs are still one call (then without patterns)', async () => {
    const main = remote.commit('main');
    const refs = Array.from({ length: 40 }, (_, i) => `missing-${i}`);
    const answers = await plugin.remoteRevisions([src('main'), ...refs.map((r) => src(r))], Q);
    expect(answers[0]).toEqual({ revision: main });
    expect(answers.slice(1).every((a) => 'missing' in a)).toBe(true);
    expect(queryCalls()).toEqual([['git', 'upload-pack', '--stateless-rpc', '--', remote.bare]]);
    // The same through ls-remote: no patterns on its command line.
    await plugin.remoteRevisions(
      [src('main', encoded(remote.url)), ...refs.map((r) => src(r, encoded(remote.url)))],
      Q,
    );
    const args = queryCalls()[1];
    expect(args.slice(1)).toEqual(['ls-remote', '--', encoded(remote.url)]);
  });

  test('an unchanged answer is the same object next time; a moved ref gets a new one', async () => {
    const first = remote.commit('main');
    remote.commit('dev');
    const sources = [src('main'), src('dev'), src('nope'), src('-x')];
    const a = await plugin.remoteRevisions(sources, Q);
    const b = await plugin.remoteRevisions(sources, Q);
    expect(a[0]).toEqual({ revision: first });
    // The same output: the same answers, not worked out again.
    expect(b).toBe(a);
    const second = remote.commit('main');
    const c = await plugin.remoteRevisions(sources, Q);
    expect(c[0]).toEqual({ revision: second });
    expect(c.slice(1)).toEqual(a.slice(1));
    expect(c[1]).toBe(a[1]);
    expect(Object.isFrozen(c[0])).toBe(true);
  });

  test('a local repository upload-pack cannot read (a bundle file) is asked with ls-remote, from then on only so', async () => {
    const main = remote.commit('main');
    const bundle = path.join(tmp.dir, 'app.bundle');
    git(remote.bare, ['bundle', 'create', bundle, 'refs/heads/main']);
    const sources = [src('main', bundle)];
    expect(await plugin.remoteRevisions(sources, Q)).toEqual([{ revision: main }]);
    expect(queryCalls().map((a) => a[1])).toEqual(['upload-pack', 'ls-remote']);
    expect(await plugin.remoteRevisions(sources, Q)).toEqual([{ revision: main }]);
    expect(queryCalls().map((a) => a[1])).toEqual(['upload-pack', 'ls-remote', 'ls-remote']);
  });

  test("a missing local repository is EREMOTE in ls-remote's words, and upload-pack is tried again next poll", async () => {
    const sources = [src('main', `file://${path.join(tmp.dir, 'gone.git')}`)];
    for (let poll = 1; poll <= 2; poll++) {
      const err = await plugin.remoteRevisions(sources, Q).catch((e: unknown) => e);
      expect((err as StagepostError).code).toBe('EREMOTE');
      expect((err as Error).message).toMatch(
        /git ls-remote file:\/\/.*gone\.git failed: exit code 128: fatal: .*(not appear to be a git repository|Could not read from remote)/,
      );
    }
    expect(queryCalls().map((a) => a[1])).toEqual([
      'upload-pack',
      'ls-remote',
      'upload-pack',
      'ls-remote',
    ]);
  });

  test('a ref that looks like an option is refused, not passed to git', async () => {
    remote.commit('main');
    const answers = await plugin.remoteRevisions([src('--upload-pack=touch x'), src('main')], Q);
    expect(answers[0]).toEqual({
      missing: true,
      reason: expect.stringContaining('starts with "-"'),
    });
    expect(calls.flat().some((a) => a.includes('--upload-pack') || a.includes('touch x'))).toBe(
      false,
    );
  });

  test('an unreachable remote is EREMOTE, with the password masked', async () => {
    const port = await freePort();
    const url = `http://deploy:hunter2secret@127.0.0.1:${port}/repo.git`;
    const err = await plugin.remoteRevisions([src('main', url)], Q).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StagepostError);
    expect((err as StagepostError).code).toBe('EREMOTE');
    expect((err as Error).message).toContain(`127.0.0.1:${port}/repo.git`);
    expect((err as Error).message).toMatch(/exit code 128: .*(connect|Connection refused)/i);
    expect((err as Error).message).not.toContain('hunter2secret');
  });

  test('a hung remote is killed with its process group at the timeout', async () => {
    const pidFile = path.join(tmp.dir, 'ssh.pid');
    const fakeSsh = path.join(tmp.dir, 'fake-ssh');
    writeFileSync(fakeSsh, `#!/bin/sh\necho $$ > "${pidFile}"\nexec sleep 30\n`);
    chmodSync(fakeSsh, 0o755);
    const hung = createGitPlugin(pluginContext(path.join(tmp.dir, 'state')), {
      env: { GIT_SSH_COMMAND: fakeSsh },
    });
    const err = await hung
      .remoteRevisions([src('main', 'ssh://127.0.0.1:1/x.git')], { timeoutMs: 1000 })
      .catch((e: unknown) => e);
    expect((err as StagepostError).code).toBe('EREMOTE');
    expect((err as Error).message).toMatch(/timed out after \d+ms/);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(pid).toBeGreaterThan(0);
    await until(() => !alive(pid), `git (pid ${pid}) to end`, 5000);
  });
});

describe('checkout', () => {
  test('brings a new checkout to an exact (older) revision, then to a newer one', async () => {
    const first = remote.commit('main', 'first', { content: 'one\n' });
    const second = remote.commit('main', 'second', { content: 'two\n' });
    const dir = path.join(tmp.dir, 'site', 'src', 'app');
    const output: string[] = [];
    const pgids: number[] = [];
    await plugin.checkout(src('main'), first, {
      ...co(dir),
      onOutput: (c) => output.push(c),
      onSpawn: (p) => pgids.push(p),
    });
    expect(git(dir, ['rev-parse', 'HEAD'])).toBe(first);
    expect(readFileSync(path.join(dir, 'file.txt'), 'utf8')).toBe('one\n');
    expect(pgids.length).toBeGreaterThan(0);
    expect(output.join('')).toMatch(/HEAD is now at|->/);

    writeFileSync(path.join(dir, 'file.txt'), 'local edit\n');
    await plugin.checkout(src('main'), second, co(dir));
    expect(git(dir, ['rev-parse', 'HEAD'])).toBe(second);
    expect(readFileSync(path.join(dir, 'file.txt'), 'utf8')).toBe('two\n');
  });

  test('follows a force-push, a ref change and a switch to another repository', async () => {
    const a = remote.commit('main');
    const b = remote.commit('main');
    const dir = path.join(tmp.dir, 'co');
    await plugin.checkout(src('main'), b, co(dir));

    git(remote.work, ['reset', '-q', '--hard', a]);
    const c = remote.commit('main', 'rewritten');
    await plugin.checkout(src('main'), c, co(dir));
    expect(git(dir, ['rev-parse', 'HEAD'])).toBe(c);

    const feature = remote.commit('feature');
    await plugin.checkout(src('feature'), feature, co(dir));
    expect(git(dir, ['rev-parse', 'HEAD'])).toBe(feature);

    const other = makeGitRemote(tmp.dir, 'other');
    const elsewhere = other.commit('main');
    await plugin.checkout(src('main', other.url), elsewhere, co(dir));
    expect(git(dir, ['rev-parse', 'HEAD'])).toBe(elsewhere);
    expect(git(dir, ['remote', 'get-url', 'origin'])).toBe(other.url);
  });

  test('a revision the remote no longer has is ECHECKOUT', async () => {
    remote.commit('main');
    const err = await plugin
      .checkout(src('main'), 'deadbeef'.repeat(5), co(path.join(tmp.dir, 'co')))
      .catch((e: unknown) => e);
    expect((err as StagepostError).code).toBe('ECHECKOUT');
    expect((err as Error).message).toContain('deadbeef');
  });
});

describe('commitsBetween', () => {
  test('lists commits after `from`, newest first, with authors', async () => {
    const a = remote.commit('main');
    const b = remote.commit('main', 'second', { author: 'Ann Example', email: 'ann@example.com' });
    const c = remote.commit('main', 'third\n\nbody text');
    const dir = path.join(tmp.dir, 'co');
    await plugin.checkout(src('main'), c, co(dir));
    const commits = await plugin.commitsBetween(src('main'), a, c, { ...co(dir), limit: 50 });
    expect(commits.map((x) => x.id)).toEqual([c, b]);
    expect(commits[0].subject).toBe('third');
    expect(commits[1]).toEqual({
      id: b,
      author: 'Ann Example',
      email: 'ann@example.com',
      date: expect.stringMatching(/^\d{4}-/),
      subject: 'second',
    });
    expect(await plugin.commitsBetween(src('main'), c, c, { ...co(dir), limit: 50 })).toEqual([]);
    expect(
      (await plugin.commitsBetween(src('main'), a, c, { ...co(dir), limit: 1 })).map((x) => x.id),
    ).toEqual([c]);
  });

  test('first build and an unknown `from` give a short list; a force-push gives the new commits', async () => {
    const ids = Array.from({ length: 12 }, () => remote.commit('main'));
    const dir = path.join(tmp.dir, 'co');
    const tip = ids[11];
    await plugin.checkout(src('main'), tip, co(dir));
    expect(
      (await plugin.commitsBetween(src('main'), null, tip, { ...co(dir), limit: 50 })).map(
        (x) => x.id,
      ),
    ).toEqual(ids.slice(2).reverse());
    expect(
      (await plugin.commitsBetween(src('main'), 'ab'.repeat(20), tip, { ...co(dir), limit: 50 }))
        .length,
    ).toBe(10);
    expect(
      (await plugin.commitsBetween(src('main'), null, tip, { ...co(dir), limit: 3 })).length,
    ).toBe(3);

    git(remote.work, ['reset', '-q', '--hard', ids[9]]);
    const rewritten = remote.commit('main', 'rewritten');
    await plugin.checkout(src('main'), rewritten, co(dir));
    expect(
      (await plugin.commitsBetween(src('main'), tip, rewritten, { ...co(dir), limit: 50 })).map(
        (x) => x.id,
      ),
    ).toEqual([rewritten]);
  });

  test('a hostile subject and author are data, not shell', async () => {
    const marker = path.join(tmp.dir, 'pwned');
    const subject = `fix $(touch ${marker}) \`touch ${marker}\` \t; rm -rf / && echo "x" \x1e|`;
    const id = remote.commit('main', `${subject}\nsecond line $(touch ${marker})`, {
      author: `Eve $(touch ${marker})`,
      email: 'eve@example.com',
    });
    const dir = path.join(tmp.dir, 'co');
    await plugin.checkout(src('main'), id, co(dir));
    const [commit] = await plugin.commitsBetween(src('main'), null, id, { ...co(dir), limit: 5 });
    expect(commit).toEqual({
      id,
      author: `Eve $(touch ${marker})`,
      email: 'eve@example.com',
      date: expect.any(String),
      subject: subject.trimEnd(),
    });
    expect(existsSync(marker)).toBe(false);
  });
});

test('works against a git daemon over the network', async () => {
  const main = remote.commit('main');
  const port = await freePort();
  const daemon = await startServer(
    'git',
    [
      'daemon',
      `--base-path=${tmp.dir}`,
      '--export-all',
      '--listen=127.0.0.1',
      `--port=${port}`,
      '--reuseaddr',
      tmp.dir,
    ],
    port,
  );
  try {
    const url = `git://127.0.0.1:${port}/repo.git`;
    expect(await plugin.remoteRevisions([src('main', url), src('gone', url)], Q)).toEqual([
      { revision: main },
      { missing: true, reason: expect.any(String) },
    ]);
    const dir = path.join(tmp.dir, 'net-co');
    await plugin.checkout(src('main', url), main, co(dir));
    expect(git(dir, ['rev-parse', 'HEAD'])).toBe(main);
  } finally {
    await daemon.stop();
  }
});

test("ssh polls share one connection per host; an operator's GIT_SSH_COMMAND wins", () => {
  const state = path.join(tmp.dir, 'st ate');
  const { env, sharedSsh } = gitEnvironment(() => sharedSshWords(state), { PATH: '/bin' });
  expect(sharedSsh).toBe(true);
  expect(env.GIT_TERMINAL_PROMPT).toBe('0');
  expect(env.GIT_SSH_COMMAND).toBe(
    `ssh -o BatchMode=yes -o ControlMaster=auto -o ControlPersist=10m -o 'ControlPath="${state}/ssh/%C"'`,
  );
  expect(statSync(path.join(state, 'ssh')).mode & 0o777).toBe(0o700);
  // A socket path too long for a unix socket: batch mode without sharing.
  const long = gitEnvironment(() => sharedSshWords(path.join(tmp.dir, 'x'.repeat(90))), {});
  expect([long.sharedSsh, long.env.GIT_SSH_COMMAND]).toEqual([false, 'ssh -o BatchMode=yes']);
  const own = gitEnvironment(() => sharedSshWords(state), { GIT_SSH_COMMAND: 'my-ssh -i key' });
  expect(own.env.GIT_SSH_COMMAND).toBe('my-ssh -i key');
});
