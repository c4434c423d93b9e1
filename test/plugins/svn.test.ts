import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import svnPlugin, { createSvnPlugin } from '../../plugins/svn/index.js';
import { StagepostError, type VcsPlugin } from '../../src/plugin-api.js';
import { makeSvnRemote, svn, type SvnRemote } from '../helpers/svn.js';
import { tempDir } from '../helpers/tmp.js';
import { describeIf, hasTool } from '../helpers/tools.js';
import { freePort, pluginContext, startServer } from './vcs-helpers.js';

const Q = { timeoutMs: 20_000 };
const co = (dir: string) => ({ dir, timeoutMs: 20_000 });
const d = describeIf(hasTool('svn') && hasTool('svnadmin') && hasTool('svnserve'));

d('svn plugin', () => {
  let tmp: ReturnType<typeof tempDir>;
  let remote: SvnRemote;
  let calls: string[][];
  let plugin: VcsPlugin;

  beforeEach(() => {
    tmp = tempDir('stagepost-svn-');
    remote = makeSvnRemote(tmp.dir);
    calls = [];
    plugin = createSvnPlugin(pluginContext(path.join(tmp.dir, 'state')), {
      onRun: (argv) => calls.push([...argv]),
    });
  });
  afterEach(() => tmp.cleanup());

  const src = (sub: string, url = remote.url) => ({ name: 'karl', url: `${url}/${sub}` });
  const infoCalls = () => calls.filter((a) => a.includes('info')).length;
  const wc = (dir: string, item: string) => svn(['info', '--show-item', item, dir]);

  test('the default export is a factory of the svn VCS plugin; keys are repository roots', async () => {
    const p = svnPlugin(pluginContext(path.join(tmp.dir, 'state')));
    expect([p.kind, p.name, p.shortRevision('4812')]).toEqual(['vcs', 'svn', 'r4812']);
    expect(p.repositoryKey(src('trunk'))).toBe(remote.url);
    expect(p.repositoryKey(src('branches/b1/'))).toBe(remote.url);
    // Not the standard layout at the root: guessed first, learned from svn info.
    remote.commit('projects/web/trunk');
    const nested = src('projects/web/trunk');
    expect(p.repositoryKey(nested)).toBe(`${remote.url}/projects/web`);
    await p.remoteRevisions([nested], Q);
    expect(p.repositoryKey(nested)).toBe(remote.url);
    expect(
      p.repositoryKey({
        name: 'x',
        url: `${remote.url.replace('file://', 'file://')}/projects/web/trunk`,
      }),
    ).toBe(remote.url);
  });

  test('each URL answers its last-changed revision, all in one svn info; missing URLs among them', async () => {
    const trunk = remote.commit('trunk');
    remote.copy('trunk', 'branches/b1');
    const b1 = remote.commit('branches/b1');
    const answers = await plugin.remoteRevisions(
      [src('trunk'), src('branches/b1'), src('branches/nope'), src('trunk/')],
      Q,
    );
    expect(answers).toEqual([
      { revision: trunk },
      { revision: b1 },
      { missing: true, reason: expect.stringContaining('branches/nope does not exist') as string },
      { revision: trunk },
    ]);
    expect(Number(b1)).toBeGreaterThan(Number(trunk) + 1);
    expect(infoCalls()).toBe(1);

    // A commit elsewhere in the repository is not a change of trunk.
    const b1again = remote.commit('branches/b1');
    expect(await plugin.remoteRevisions([src('trunk'), src('branches/b1')], Q)).toEqual([
      { revision: trunk },
      { revision: b1again },
    ]);
    expect(infoCalls()).toBe(2);
  });

  test('an unreachable repository is EREMOTE without the password', async () => {
    const port = await freePort();
    const err = await plugin
      .remoteRevisions([src('trunk', `svn://alice:hunter2secret@127.0.0.1:${port}/repo`)], Q)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StagepostError);
    expect((err as StagepostError).code).toBe('EREMOTE');
    expect((err as Error).message).toMatch(
      new RegExp(`svn info svn://127.0.0.1:${port}/repo/trunk failed: exit code 1: svn: E\\d+`),
    );
    expect((err as Error).message).not.toContain('hunter2secret');
    const missingRepo = await plugin
      .remoteRevisions([src('trunk', `file://${tmp.dir}/no-such-repo`)], Q)
      .catch((e: unknown) => e);
    expect((missingRepo as StagepostError).code).toBe('EREMOTE');
  });

  test('the build log shows each svn command and its human output, never svn info --xml', async () => {
    const r1 = remote.commit('trunk', 'one', { content: 'one\n' });
    const r2 = remote.commit('trunk', 'two', { content: 'two\n' });
    const dir = path.join(tmp.dir, 'site', 'src', 'karl');
    const log: string[] = [];
    const onOutput = (c: string) => log.push(c);
    await plugin.checkout(src('trunk'), r1, { ...co(dir), onOutput });
    await plugin.checkout(src('trunk'), r2, { ...co(dir), onOutput });
    const text = log.join('');
    expect(text).not.toMatch(/<\?xml|<info>|<entry/);
    expect(text).toContain(`$ svn checkout -r ${r1} -- ${remote.url}/trunk ${dir}\n`);
    expect(text).toContain(`Checked out revision ${r1}.`);
    expect(text).toContain(`$ svn update --accept theirs-full -r ${r2} -- ${dir}\n`);
    expect(text).toContain(`Updated to revision ${r2}.`);
    expect(calls.some((a) => a.includes('--xml'))).toBe(true);
  });

  test('checkout, update and switch reach exact revisions', async () => {
    const r1 = remote.commit('trunk', 'one', { content: 'one\n' });
    const r2 = remote.commit('trunk', 'two', { content: 'two\n' });
    remote.copy('trunk', 'branches/b1');
    const rb = remote.commit('branches/b1', 'branch', { content: 'branch\n' });
    const dir = path.join(tmp.dir, 'site', 'src', 'karl');
    const output: string[] = [];
    const pgids: number[] = [];

    await plugin.checkout(src('trunk'), r1, {
      ...co(dir),
      onOutput: (c) => output.push(c),
      onSpawn: (p) => pgids.push(p),
    });
    expect([wc(dir, 'revision'), readFileSync(path.join(dir, 'file.txt'), 'utf8')]).toEqual([
      r1,
      'one\n',
    ]);
    expect(output.join('')).toContain(`Checked out revision ${r1}`);
    expect(pgids.length).toBe(1);

    writeFileSync(path.join(dir, 'file.txt'), 'local edit\n');
    await plugin.checkout(src('trunk'), r2, co(dir));
    expect([wc(dir, 'revision'), readFileSync(path.join(dir, 'file.txt'), 'utf8')]).toEqual([
      r2,
      'two\n',
    ]);
    expect(calls.at(-1)).toContain('update');

    await plugin.checkout(src('branches/b1'), rb, co(dir));
    expect([
      wc(dir, 'url'),
      wc(dir, 'revision'),
      readFileSync(path.join(dir, 'file.txt'), 'utf8'),
    ]).toEqual([`${remote.url}/branches/b1`, rb, 'branch\n']);
    expect(calls.at(-1)).toContain('switch');

    const err = await plugin.checkout(src('trunk'), '999', co(dir)).catch((e: unknown) => e);
    expect((err as StagepostError).code).toBe('ECHECKOUT');
  });

  test("commitsBetween lists the URL's commits with authors, newest first", async () => {
    const r1 = remote.commit('trunk', 'first', { author: 'alice' });
    const r2 = remote.commit('trunk', 'second\nmore text', { author: 'bob' });
    remote.commit('branches', 'elsewhere', { author: 'carol' });
    const marker = path.join(tmp.dir, 'pwned');
    const hostile = `third $(touch ${marker}) \`touch ${marker}\` <b>&amp;</b>`;
    const r4 = remote.commit('trunk', hostile, { author: 'alice' });
    const dir = path.join(tmp.dir, 'co');
    await plugin.checkout(src('trunk'), r4, co(dir));
    const commits = await plugin.commitsBetween(src('trunk'), r1, r4, { ...co(dir), limit: 50 });
    expect(commits).toEqual([
      {
        id: r4,
        author: 'alice',
        date: expect.stringMatching(/^\d{4}-/) as string,
        subject: hostile,
      },
      { id: r2, author: 'bob', date: expect.any(String) as string, subject: 'second' },
    ]);
    expect(existsSync(marker)).toBe(false);
    expect(await plugin.commitsBetween(src('trunk'), r4, r4, { ...co(dir), limit: 50 })).toEqual(
      [],
    );
    const first = await plugin.commitsBetween(src('trunk'), null, r4, { ...co(dir), limit: 2 });
    expect(first.map((c) => c.id)).toEqual([r4, r2]);
    const all = await plugin.commitsBetween(src('trunk'), null, r4, { ...co(dir), limit: 50 });
    expect(all.map((c) => c.id)).toEqual([r4, r2, r1, '1']);
  });

  test('over svnserve with a password that never reaches argv', async () => {
    const password = 's3cr@t:pw';
    writeFileSync(
      path.join(remote.repo, 'conf', 'svnserve.conf'),
      '[general]\nanon-access = none\nauth-access = write\npassword-db = passwd\nrealm = test\n',
    );
    writeFileSync(path.join(remote.repo, 'conf', 'passwd'), `[users]\nalice = ${password}\n`);
    const trunk = remote.commit('trunk', 'over the wire', { author: 'alice' });

    // A wrapper in front of the real svn records argv exactly as the OS passes it.
    const realSvn = execFileSync('sh', ['-c', 'command -v svn'], { encoding: 'utf8' }).trim();
    const bin = path.join(tmp.dir, 'bin');
    const argvLog = path.join(tmp.dir, 'argv.log');
    execFileSync('mkdir', ['-p', bin]);
    writeFileSync(
      path.join(bin, 'svn'),
      `#!/bin/sh\nprintf '%s\\n' "$*" >> '${argvLog}'\nexec '${realSvn}' "$@"\n`,
    );
    chmodSync(path.join(bin, 'svn'), 0o755);
    const wrapped = createSvnPlugin(pluginContext(path.join(tmp.dir, 'state')), {
      env: { PATH: `${bin}:${process.env.PATH}`, HOME: tmp.dir },
    });

    const port = await freePort();
    const server = await startServer(
      'svnserve',
      [
        '-d',
        '--foreground',
        '-r',
        tmp.dir,
        '--listen-host',
        '127.0.0.1',
        '--listen-port',
        String(port),
      ],
      port,
    );
    try {
      const base = `svn://alice:${encodeURIComponent(password)}@127.0.0.1:${port}/svnrepo`;
      expect(await wrapped.remoteRevisions([src('trunk', base), src('gone', base)], Q)).toEqual([
        { revision: trunk },
        { missing: true, reason: expect.any(String) as string },
      ]);
      const dir = path.join(tmp.dir, 'net-co');
      await wrapped.checkout(src('trunk', base), trunk, co(dir));
      expect(wc(dir, 'revision')).toBe(trunk);
      const commits = await wrapped.commitsBetween(src('trunk', base), null, trunk, {
        ...co(dir),
        limit: 5,
      });
      expect(commits[0]).toMatchObject({ id: trunk, author: 'alice', subject: 'over the wire' });

      const wrong = `svn://alice:wrong-password@127.0.0.1:${port}/svnrepo`;
      const err = await wrapped.remoteRevisions([src('trunk', wrong)], Q).catch((e: unknown) => e);
      expect((err as StagepostError).code).toBe('EREMOTE');
    } finally {
      await server.stop();
    }
    const argv = readFileSync(argvLog, 'utf8');
    expect(argv.split('\n').filter(Boolean).length).toBe(4);
    expect(argv).toContain('--password-from-stdin');
    expect(argv).not.toContain('s3cr');
    expect(argv).not.toContain(encodeURIComponent(password));
    expect(argv).not.toContain('wrong-password');
    // Nor in svn's auth cache (HOME is the temp dir, so ~/.subversion is too).
    const cache = path.join(tmp.dir, '.subversion');
    expect(existsSync(cache)).toBe(true);
    const cached = readdirSync(cache, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => readFileSync(path.join(e.parentPath, e.name), 'utf8'));
    expect(cached.length).toBeGreaterThan(0);
    expect(cached.some((text) => text.includes('s3cr'))).toBe(false);
  });
});
