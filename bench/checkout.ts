/**
 * The cost of a new review site (issue 17): a repository of realistic size
 * (~20,000 commits, ~5,000 files, made with git fast-import), then the time
 * and disk of the first site's checkout, of a second site of the same
 * repository, and of an update by one commit, through the real git plugin.
 * Beside them, what bounds the second site: writing its files without git
 * (the floor of any way of making the tree), and the way not built, copying
 * the first site's tracked files and letting git rewrite only the difference.
 * `node --import tsx bench/checkout.ts`; BENCH_COMMITS / BENCH_FILES to scale.
 */
import { spawnSync } from 'node:child_process';
import {
  constants,
  copyFileSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createGitPlugin } from '../plugins/git/index.js';
import { createPluginContext } from '../src/plugin-loader/context.js';
import { createLogger } from '../src/log.js';
import { tempDir } from '../test/helpers/tmp.js';

const COMMITS = Number(process.env.BENCH_COMMITS ?? 20_000);
const FILES = Number(process.env.BENCH_FILES ?? 5_000);

function sh(cwd: string, args: string[], input?: string): string {
  const r = spawnSync('git', args, { cwd, input, encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Deterministic text that compresses like source code, not like zeros. */
function content(file: number, version: number): string {
  let x = (file * 7919 + version * 104729) >>> 0;
  const lines: string[] = [];
  for (let i = 0; i < 40; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    lines.push(`line ${i} of file ${file} v${version}: value = ${x.toString(36)};`);
  }
  return `${lines.join('\n')}\n`;
}

function makeRepository(bare: string): void {
  mkdirSync(bare, { recursive: true });
  sh(bare, ['init', '-q', '--bare', '-b', 'main']);
  const parts: string[] = [];
  const data = (text: string) => `data ${Buffer.byteLength(text)}\n${text}`;
  let when = 1_700_000_000;
  for (let c = 1; c <= COMMITS; c++) {
    when += 60;
    parts.push(
      'commit refs/heads/main',
      `committer Bench <bench@example.test> ${when} +0000`,
      data(`commit ${c}`),
    );
    if (c === 1)
      for (let f = 0; f < FILES; f++)
        parts.push(`M 100644 inline src/d${f % 50}/f${f}.txt`, data(content(f, 0)));
    else {
      const f = (c * 37) % FILES;
      parts.push(`M 100644 inline src/d${f % 50}/f${f}.txt`, data(content(f, c)));
    }
  }
  parts.push('done', '');
  sh(bare, ['fast-import', '--quiet', '--done'], parts.join('\n'));
  sh(bare, ['branch', 'feature/b', 'main']);
}

function bytes(p: string): number {
  const st = lstatSync(p);
  if (!st.isDirectory()) return st.blocks * 512;
  return readdirSync(p).reduce((n, e) => n + bytes(path.join(p, e)), st.blocks * 512);
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/**
 * The file system the sites are written to. An ext4 without a journal skips,
 * for each new file, every inode freed in the last minutes (the kernel's
 * recently_deleted()): after mass deletions, creating files costs ~0.5 ms each.
 */
function fileSystem(dir: string): string {
  const r = spawnSync('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '--target', dir], {
    encoding: 'utf8',
  });
  const [type, source] = (r.stdout ?? '').trim().split(/\s+/);
  if (!type) return 'unknown';
  if (type !== 'ext4' || !source) return type;
  try {
    const task = readFileSync(`/sys/fs/ext4/${path.basename(source)}/journal_task`, 'utf8');
    return `ext4 on ${source}, ${task.trim() === '<none>' ? 'no journal' : 'journal'}`;
  } catch {
    return `ext4 on ${source}`;
  }
}

/** Every tracked file of a checkout (no gitlinks), as paths relative to it. */
function trackedFiles(dir: string): string[] {
  return sh(dir, ['ls-files', '-s', '-z'])
    .split('\0')
    .filter((l) => l !== '' && !l.startsWith('160000'))
    .map((l) => l.slice(l.indexOf('\t') + 1));
}

/** Writes the files with plain fs calls into a fresh directory; only the writing is timed. */
function writeWithoutGit(from: string, to: string): number {
  const files = trackedFiles(from).map((f) => [f, readFileSync(path.join(from, f))] as const);
  const begin = Date.now();
  for (const [f, data] of files) {
    mkdirSync(path.dirname(path.join(to, f)), { recursive: true });
    writeFileSync(path.join(to, f), data);
  }
  return Date.now() - begin;
}

/**
 * The way not built: a new checkout copies a sibling site's index and tracked
 * files (copy-on-write where the file system has it), re-checks them against
 * the index (the copies' stat data never match it, so every file is hashed
 * again: a file the sibling's build edited is found), then checks out the
 * wanted commit, which rewrites only the files that differ.
 */
function copyFromSibling(sibling: string, dir: string, alternates: string, revision: string) {
  const begin = Date.now();
  mkdirSync(dir, { recursive: true });
  sh(dir, ['init', '-q']);
  writeFileSync(path.join(dir, '.git', 'objects', 'info', 'alternates'), alternates);
  copyFileSync(path.join(sibling, '.git', 'index'), path.join(dir, '.git', 'index'));
  for (const f of trackedFiles(sibling)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    copyFileSync(path.join(sibling, f), path.join(dir, f), constants.COPYFILE_FICLONE);
  }
  const copied = Date.now();
  sh(dir, ['update-index', '-q', '--refresh']);
  const refreshed = Date.now();
  sh(dir, ['-c', 'advice.detachedHead=false', 'checkout', '-q', '--force', '--detach', revision]);
  const done = Date.now();
  return {
    ms: done - begin,
    copyMs: copied - begin,
    refreshMs: refreshed - copied,
    checkoutMs: done - refreshed,
    clean: sh(dir, ['status', '--porcelain']) === '',
  };
}

const t = tempDir('stagepost-bench-checkout-');
try {
  const bare = path.join(t.dir, 'repo.git');
  const started = Date.now();
  makeRepository(bare);
  console.log(
    `repository: ${COMMITS} commits, ${FILES} files, ${mb(bytes(bare))} (made in ${s(Date.now() - started)})`,
  );
  console.log(`sites on: ${fileSystem(t.dir)}; load average ${os.loadavg()[0].toFixed(2)}`);
  // A one-commit feature branch, like a review branch.
  const work = path.join(t.dir, 'work');
  sh(t.dir, ['clone', '-q', '--branch', 'feature/b', bare, work]);
  spawnSync(
    'sh',
    [
      '-c',
      'echo change >> src/d0/f0.txt && git -c user.name=B -c user.email=b@example.test commit -qam feature && git push -q origin feature/b',
    ],
    { cwd: work },
  );
  const url = `file://${bare}`;
  const stateDir = path.join(t.dir, 'state');
  // When each git child starts: what the second site's time goes to.
  const starts: Array<[number, string]> = [];
  const plugin = createGitPlugin(createPluginContext(stateDir, createLogger({ level: 'warn' })), {
    onRun: (argv) =>
      starts.push([Date.now(), argv.find((a) => /^[a-z][a-z-]*$/.test(a) && a !== 'git') ?? '?']),
  });
  const rev = (ref: string) => sh(bare, ['rev-parse', `refs/heads/${ref}`]);
  const site = (name: string) => path.join(t.dir, 'sites', name, 'src', 'app');
  const checkout = async (name: string, ref: string) => {
    const begin = Date.now();
    await plugin.checkout({ name: 'app', url, ref }, rev(ref), {
      dir: site(name),
      timeoutMs: 600_000,
    });
    return Date.now() - begin;
  };

  const gitTimes = (from: number, total: number) =>
    starts
      .map(([at, what], i) => `${what} ${(starts[i + 1]?.[0] ?? from + total) - at} ms`)
      .join(', ');
  const firstStart = Date.now();
  const firstMs = await checkout('main', 'main');
  console.log(`first site, per git command: ${gitTimes(firstStart, firstMs)}`);
  const sharedBytes = bytes(path.join(stateDir, 'plugins', 'git-objects'));
  const firstGit = bytes(path.join(site('main'), '.git'));
  const firstAll = bytes(site('main'));
  starts.length = 0;
  const secondStart = Date.now();
  const secondMs = await checkout('feature-b', 'feature/b');
  console.log(`second site, per git command: ${gitTimes(secondStart, secondMs)}`);
  // The last git of a new checkout is `git checkout`, which writes the files.
  const secondFilesMs = secondStart + secondMs - starts.at(-1)![0];
  const secondGit = bytes(path.join(site('feature-b'), '.git'));
  const secondAll = bytes(site('feature-b'));
  // After the second site, so that they cannot slow it. Whatever creates files
  // first after many deletions pays most on some file systems (docs/checkout.md).
  const floorMs = writeWithoutGit(site('feature-b'), path.join(t.dir, 'floor'));
  const alternates = readFileSync(
    path.join(site('feature-b'), '.git', 'objects', 'info', 'alternates'),
    'utf8',
  );
  const copied = copyFromSibling(site('main'), site('copy'), alternates, rev('feature/b'));
  spawnSync(
    'sh',
    [
      '-c',
      'git checkout -q main && echo more >> src/d1/f1.txt && git -c user.name=B -c user.email=b@example.test commit -qam one && git push -q origin main',
    ],
    { cwd: work },
  );
  const updateMs = await checkout('main', 'main');

  const firstExtra = sharedBytes + firstGit;
  const rows: Array<[string, string, string, string]> = [
    ['first site: checkout', s(firstMs), '', ''],
    ['first site: disk (shared copy + .git + files)', mb(sharedBytes + firstAll), '', ''],
    ['first site: repository data (shared copy + .git)', mb(firstExtra), '', ''],
    [
      'second site: checkout',
      s(secondMs),
      `< 20 % of first (${s(firstMs * 0.2)})`,
      secondMs < firstMs * 0.2 ? 'PASS' : 'FAIL',
    ],
    [
      'second site: its .git',
      mb(secondGit),
      `< 10 % of first's (${mb(firstExtra * 0.1)})`,
      secondGit < firstExtra * 0.1 ? 'PASS' : 'FAIL',
    ],
    ['second site: its `git checkout` (writing the files)', s(secondFilesMs), '', ''],
    ['second site: everything else (object work)', s(secondMs - secondFilesMs), '', ''],
    ['second site: disk with its files', mb(secondAll), '', ''],
    ['writing its files without git (floor)', s(floorMs), '', ''],
    [
      'not built: copy from the first site + refresh + checkout',
      `${s(copied.ms)} (${s(copied.copyMs)} + ${s(copied.refreshMs)} + ${s(copied.checkoutMs)})`,
      copied.clean ? 'status clean' : 'status NOT clean',
      '',
    ],
    ['update by one commit', s(updateMs), '< 1 s', updateMs < 1000 ? 'PASS' : 'FAIL'],
  ];
  console.log('\n| figure | value | target | |\n| --- | --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
} finally {
  t.cleanup();
}
