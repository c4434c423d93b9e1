/**
 * `switch` edits only the value it switches, keeps ci.yaml's mode, owner and
 * symlink, and leaves no temp file. Real git remote, the real CLI.
 */
import {
  chmodSync,
  chownSync,
  lstatSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { makeGitRemote, type GitRemote } from '../helpers/git.js';
import { runCli } from '../helpers/cli.js';
import { makeSvnRemote } from '../helpers/svn.js';
import { describeIf, hasTool } from '../helpers/tools.js';
import { replaceScalar } from '../../src/config/edit.js';

let t: ReturnType<typeof tempDir>;
let remote: GitRemote;
beforeEach(() => {
  t = tempDir();
  remote = makeGitRemote(t.dir);
  remote.commit('main');
  remote.commit('feature-x');
  remote.commit('release/2.0');
});
afterEach(() => t.cleanup());

/** A config that stresses a re-stringify: flow maps, long lines, end-of-line comments. */
function config(url: string): string {
  return `# stagepost test config
version: 1
state_dir: ./state
poll: { interval: 1h, timeout: 5s }   # a comment after a flow map
steps: [{ name: noop, run: "true" }, { name: also, run: 'echo this is a rather long command line that a re-stringify would fold somewhere' }]
branches:
  flowplain:   # flow map, plain ref
    dir: ./sites/flowplain
    sources:
      - { name: app, vcs: git, url: "${url}", ref: main, path: src/app }
  flowquoted:
    dir: ./sites/flowquoted
    sources:
      - { name: app, vcs: git, url: "${url}", ref: "main", path: src/app }   # eol
  blockplain:
    dir: ./sites/blockplain
    sources:
      - name: app
        vcs: git
        url: ${url}
        ref: main       # the ref
        path: src/app
  blocksingle:
    dir: ./sites/blocksingle
    sources:
      - name: app
        vcs:   git
        url: '${url}'
        ref: 'main'
        path: src/app
`;
}

/** Lines that differ between two texts of the same line count. */
function changedLines(before: string, after: string): Array<[string, string]> {
  const a = before.split('\n');
  const b = after.split('\n');
  expect(b).toHaveLength(a.length);
  return a.flatMap((line, i) => (line === b[i] ? [] : [[line, b[i]] as [string, string]]));
}

test.each([
  [
    'flowplain',
    'feature-x',
    `      - { name: app, vcs: git, url: "URL", ref: feature-x, path: src/app }`,
  ],
  [
    'flowquoted',
    'feature-x',
    `      - { name: app, vcs: git, url: "URL", ref: "feature-x", path: src/app }   # eol`,
  ],
  ['blockplain', 'release/2.0', `        ref: release/2.0       # the ref`],
  ['blocksingle', 'feature-x', `        ref: 'feature-x'`],
])('switch %s to %s changes that one line alone', async (branch, ref, expected) => {
  const file = path.join(t.dir, 'ci.yaml');
  const before = config(remote.url);
  writeFileSync(file, before);
  const r = await runCli(['switch', branch, ref, '--config', file]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const changed = changedLines(before, readFileSync(file, 'utf8'));
  expect(changed).toHaveLength(1);
  expect(changed[0][1]).toBe(expected.replace('URL', remote.url));
});

test('a value that plain YAML would misread is quoted; a block scalar becomes one line', () => {
  const text = 'a: { ref: main, b: 1 }\nc:\n  ref: main   # x\nd:\n  ref: |\n    main\ne: 2\n';
  expect(replaceScalar(text, ['a', 'ref'], 'x, y')).toBe(
    'a: { ref: "x, y", b: 1 }\nc:\n  ref: main   # x\nd:\n  ref: |\n    main\ne: 2\n',
  );
  expect(replaceScalar(text, ['c', 'ref'], '123')).toBe(
    'a: { ref: main, b: 1 }\nc:\n  ref: "123"   # x\nd:\n  ref: |\n    main\ne: 2\n',
  );
  expect(replaceScalar(text, ['d', 'ref'], 'feature')).toBe(
    'a: { ref: main, b: 1 }\nc:\n  ref: main   # x\nd:\n  ref: "feature"\ne: 2\n',
  );
});

test('switch keeps the symlink, mode and owner of ci.yaml and leaves no temp file', async () => {
  const real = path.join(t.dir, 'etc', 'ci.yaml');
  const link = path.join(t.dir, 'ci.yaml');
  const before = config(remote.url);
  const { mkdirSync } = await import('node:fs');
  mkdirSync(path.dirname(real));
  writeFileSync(real, before);
  symlinkSync(real, link);
  chmodSync(real, 0o640);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownSync(real, 4321, 4322);
  // A temp left by a switch that was killed -9 (pid that cannot exist).
  const stale = path.join(t.dir, 'etc', '.ci.yaml.stagepost-4194999.tmp');
  writeFileSync(stale, 'half');

  const r = await runCli(['switch', 'flowplain', 'feature-x', '--config', link]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(lstatSync(link).isSymbolicLink()).toBe(true);
  expect(changedLines(before, readFileSync(real, 'utf8'))).toHaveLength(1);
  const st = statSync(real);
  expect(st.mode & 0o7777).toBe(0o640);
  if (asRoot) expect([st.uid, st.gid]).toEqual([4321, 4322]);
  expect(readdirSync(path.join(t.dir, 'etc'))).toEqual(['ci.yaml']);
});

describeIf(hasTool('svn') && hasTool('svnadmin'))('svn sources', () => {
  test('switch to another svn URL changes that url line alone', async () => {
    const svn = makeSvnRemote(t.dir);
    svn.commit('trunk');
    svn.copy('trunk', 'branches/b1');
    const file = path.join(t.dir, 'ci.yaml');
    const before = `version: 1
state_dir: ./state
steps: [{ name: noop, run: "true" }]   # keep me here
branches:
  staging:
    dir: ./sites/staging
    sources:
      - name: karl
        vcs: svn
        url: ${svn.url}/trunk    # trunk for now
        path: src/karl
`;
    writeFileSync(file, before);
    const r = await runCli(['switch', 'staging', `${svn.url}/branches/b1`, '--config', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(changedLines(before, readFileSync(file, 'utf8'))).toEqual([
      [
        `        url: ${svn.url}/trunk    # trunk for now`,
        `        url: ${svn.url}/branches/b1    # trunk for now`,
      ],
    ]);
  });
});

test('a switch killed while it writes leaves no temp file and the old ci.yaml', async () => {
  const file = path.join(t.dir, 'ci.yaml');
  writeFileSync(file, 'version: 1\n');
  const module = path.join(import.meta.dirname, '../../src/util/replace-file.ts');
  // A large write keeps the temp file open long enough to be caught at it.
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `const { replaceFileInPlace } = await import(${JSON.stringify(module)}); await replaceFileInPlace(${JSON.stringify(file)}, 'x'.repeat(400e6));`,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, sig) => r(sig)));
  await new Promise<void>((resolve) => {
    const watcher = watch(t.dir, (_e, name) => {
      if (name?.startsWith('.ci.yaml.stagepost-')) resolve(watcher.close());
    });
  });
  child.kill('SIGTERM');
  expect(await exited).toBe('SIGTERM');
  expect(readdirSync(t.dir).filter((f) => f.includes('stagepost-'))).toEqual([]);
  expect(readFileSync(file, 'utf8')).toBe('version: 1\n');
});
