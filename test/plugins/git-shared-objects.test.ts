/**
 * Sites of one repository share its objects: the first checkout makes a bare
 * copy under state_dir, later checkouts borrow its objects (alternates) and
 * fetch only what it lacks. Real git repositories.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { createGitPlugin } from '../../plugins/git/index.js';
import { git, makeGitRemote } from '../helpers/git.js';
import { tempDir } from '../helpers/tmp.js';
import { pluginContext } from './vcs-helpers.js';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir('stagepost-git-shared-');
});
afterEach(() => tmp.cleanup());

function bytesUnder(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? bytesUnder(full) : statSync(full).size;
  }
  return total;
}

test('a second site borrows the objects of the first and stores next to nothing itself', async () => {
  const remote = makeGitRemote(tmp.dir);
  // Some history worth sharing: 40 commits of a 200 kB file that changes each time.
  let head = '';
  for (let i = 0; i < 40; i++)
    head = remote.commit('main', `c${i}`, {
      file: 'big.txt',
      content: `${i}\n${'x'.repeat(200_000)}${i}\n`,
    });
  const feature = remote.commit('feature/a');
  const stateDir = path.join(tmp.dir, 'state');
  const plugin = createGitPlugin(pluginContext(stateDir));
  const first = path.join(tmp.dir, 'sites', 'main', 'src', 'app');
  await plugin.checkout({ name: 'app', url: remote.url, ref: 'main' }, head, {
    dir: first,
    timeoutMs: 60_000,
  });
  const shared = readdirSync(path.join(stateDir, 'git-objects'));
  expect(shared).toHaveLength(1);
  const second = path.join(tmp.dir, 'sites', 'feature-a', 'src', 'app');
  await plugin.checkout({ name: 'app', url: remote.url, ref: 'feature/a' }, feature, {
    dir: second,
    timeoutMs: 60_000,
  });
  const alternates = path.join(second, '.git', 'objects', 'info', 'alternates');
  expect(readFileSync(alternates, 'utf8').trim()).toBe(
    path.join(stateDir, 'git-objects', shared[0], 'objects'),
  );
  expect(git(second, ['rev-parse', 'HEAD'])).toBe(feature);
  expect(git(second, ['log', '--format=%s', '-3'])).toMatch(/change \d+ on feature\/a\nc39\nc38/);
  expect(git(second, ['fsck', '--connectivity-only'])).toBe('');
  // Its own object store holds only what the shared copy lacked.
  const own = bytesUnder(path.join(second, '.git', 'objects'));
  const sharedBytes = bytesUnder(path.join(stateDir, 'git-objects', shared[0], 'objects'));
  expect(own).toBeLessThan(sharedBytes / 10);
  expect(existsSync(path.join(first, '.git', 'objects', 'info', 'alternates'))).toBe(true);
});
