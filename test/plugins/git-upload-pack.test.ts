/**
 * The ls-refs request and answer of protocol v2, checked against a real
 * `git upload-pack` and against answers it must refuse (then ls-remote asks).
 */
import { spawnSync } from 'node:child_process';
import { localRepositoryPath, lsRefsRequest, parseLsRefs } from '../../plugins/git/upload-pack.js';
import { parseLsRemote } from '../../plugins/git/refs.js';
import { git, makeGitRemote } from '../helpers/git.js';
import { tempDir } from '../helpers/tmp.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

function uploadPack(dir: string, request: string): string {
  const r = spawnSync('git', ['upload-pack', '--stateless-rpc', '--', dir], {
    input: request,
    env: { ...process.env, GIT_PROTOCOL: 'version=2' },
    encoding: 'utf8',
    timeout: 10_000,
  });
  expect(r.status).toBe(0);
  return r.stdout;
}

test('only file:/// URLs and absolute paths are local; percent-encoded ones are left to git', () => {
  expect(localRepositoryPath('file:///srv/git/app.git')).toBe('/srv/git/app.git');
  expect(localRepositoryPath('/srv/git/app.git')).toBe('/srv/git/app.git');
  expect(localRepositoryPath('file:///srv/git/a%20b.git')).toBeNull();
  expect(localRepositoryPath('file://host/srv/app.git')).toBeNull();
  expect(localRepositoryPath('relative/app.git')).toBeNull();
  for (const url of ['ssh://h/x.git', 'git@h:x.git', 'https://h/x.git', 'git://h/x.git'])
    expect(localRepositoryPath(url)).toBeNull();
});

test('the request is pkt-lines with byte lengths; ^{} patterns become peel', () => {
  expect(lsRefsRequest(['refs/heads/ü', 'refs/tags/v1', 'refs/tags/v1^{}'])).toBe(
    '0014command=ls-refs\n0001' +
      '0009peel\n' +
      '001dref-prefix refs/heads/ü\n' +
      '001cref-prefix refs/tags/v1\n' +
      '0000',
  );
  expect(lsRefsRequest([])).toBe('0014command=ls-refs\n00010009peel\n0000');
});

test('a real upload-pack answers with the table ls-remote gives, prefixes and peeled tags included', () => {
  const t = tempDir();
  try {
    const remote = makeGitRemote(t.dir);
    const main = remote.commit('main');
    remote.commit('main2');
    const ü = remote.commit('ünï');
    git(remote.work, ['tag', '-a', 'v1', '-m', 'release', main]);
    git(remote.work, ['push', '-q', 'origin', 'refs/tags/*:refs/tags/*']);
    const tagObject = git(remote.bare, ['rev-parse', 'refs/tags/v1']);

    const table = parseLsRefs(
      uploadPack(
        remote.bare,
        lsRefsRequest(['refs/heads/main', 'refs/tags/v1', 'refs/tags/v1^{}', 'refs/heads/ünï']),
      ),
    );
    expect(table).toEqual(
      new Map([
        ['refs/heads/main', main],
        ['refs/heads/main2', remote.head('main2')],
        ['refs/heads/ünï', ü],
        ['refs/tags/v1', tagObject],
        ['refs/tags/v1^{}', main],
      ]),
    );
    // Every ref: the same as ls-remote's whole list.
    const all = parseLsRefs(uploadPack(remote.bare, lsRefsRequest([])));
    const lsRemote = parseLsRemote(
      git(t.dir, ['-c', 'core.quotePath=false', 'ls-remote', remote.url]),
    );
    expect(all).toEqual(lsRemote);
    expect(all!.get('HEAD')).toBe(main);
    expect(parseLsRefs(uploadPack(remote.bare, lsRefsRequest(['refs/heads/none'])))).toEqual(
      new Map(),
    );
  } finally {
    t.cleanup();
  }
});

test('anything but a whole ls-refs answer is refused', () => {
  const line = (s: string) => (Buffer.byteLength(s) + 4).toString(16).padStart(4, '0') + s;
  const good = line(`${A} refs/heads/main\n`) + line(`${A} refs/tags/v1 peeled:${B}\n`) + '0000';
  expect(parseLsRefs(good)).toEqual(
    new Map([
      ['refs/heads/main', A],
      ['refs/tags/v1', A],
      ['refs/tags/v1^{}', B],
    ]),
  );
  expect(parseLsRefs('0000')).toEqual(new Map());
  expect(parseLsRefs(good.slice(0, -4))).toBeNull(); // cut off before the flush
  expect(parseLsRefs(good.slice(0, 30))).toBeNull();
  expect(parseLsRefs('')).toBeNull();
  expect(parseLsRefs(line('ERR upload-pack: not our ref\n') + '0000')).toBeNull();
  expect(parseLsRefs(line(`${A} refs/heads/main\n`).replace(/^..../, '0040') + '0000')).toBeNull(); // wrong length
  expect(parseLsRefs(line(`${A} refs/tags/v1 peeled:xyz\n`) + '0000')).toBeNull();
  // A protocol v0 advertisement (a git that ignored GIT_PROTOCOL): refused, not misread.
  expect(
    parseLsRefs(
      line(`${A} HEAD\0multi_ack side-band-64k\n`) + line(`${A} refs/heads/main\n`) + '0000',
    ),
  ).toBeNull();
});
