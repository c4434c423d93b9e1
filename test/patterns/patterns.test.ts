/**
 * Pattern branches: safe unique site names, the sites one answer makes and
 * retires (never on an empty answer), stable ports, and the sites as
 * ordinary branches of the loaded config.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { NAME_PATTERN } from '../../src/config/schema.js';
import type { Config, PatternConfig } from '../../src/config/types.js';
import { answer } from '../../src/patterns/keeper.js';
import { siteSlug, uniqueSiteName } from '../../src/patterns/names.js';
import { emptySites, writeSites, type SitesFile } from '../../src/patterns/sites-file.js';
import { tempDir } from '../helpers/tmp.js';
import { problemsOf } from '../config/helpers.js';

const PATTERN = (stateDir = './state') => `version: 1
state_dir: ${stateDir}
steps: [{ name: build, run: "make SITE={branch}" }]
branches:
  staging:
    dir: ./sites/staging
    port: 7000
    sources:
      - { name: app, vcs: git, url: "https://git.example.com/app.git", ref: main }
  review:
    match: { source: app, refs: "feature/*" }
    dir: /srv/staging/review/{branch}
    port: 7000-7003
    customers: [osf]
    health: { url: "http://127.0.0.1:{port}/{branch}/{customer}/" }
    sources:
      - { name: app, vcs: git, url: "https://git.example.com/app.git" }
      - { name: lib, vcs: git, url: "https://git.example.com/lib.git", ref: main, path: "src/lib-{branch}" }
`;

test('branch names become safe names', () => {
  expect(siteSlug('feature/Foo_Bar')).toBe('feature-foo-bar');
  expect(siteSlug('feat$(touch x)')).toBe('feat-touch-x');
  expect(siteSlug('../x')).toBe('x');
  expect(siteSlug('fix/Überlänge-Ärger')).toBe('fix-uberlange-arger');
  expect(siteSlug('日本語')).toBe('branch');
  const long = siteSlug(`feature/${'a'.repeat(300)}`);
  expect(long.length).toBeLessThanOrEqual(63);
  for (const ref of [
    'feature/Foo_Bar',
    'feat$(touch x)',
    '../x',
    '日本語',
    `x/${'é'.repeat(300)}-`,
  ])
    expect(siteSlug(ref)).toMatch(NAME_PATTERN);
});

test('two branches with one slug are told apart, never merged', () => {
  const a = uniqueSiteName('feature/Foo', new Set());
  const b = uniqueSiteName('feature/foo', new Set([a]));
  expect(a).toBe('feature-foo');
  expect(b).toMatch(/^feature-foo-[0-9a-f]{6}$/);
  const long = `feature/${'b'.repeat(300)}`;
  const c = uniqueSiteName(long, new Set([siteSlug(long)]));
  expect(c.length).toBeLessThanOrEqual(63);
  expect(c).toMatch(NAME_PATTERN);
});

function pattern(config: Config): PatternConfig {
  return config.patterns[0];
}

describe('one answer', () => {
  const config = parseConfig(PATTERN('/nonexistent-state'), '/srv/ci.yaml', {});
  const input = (refs: Record<string, string>) => ({
    pattern: pattern(config),
    refs,
    fixedNames: new Set(['staging']),
    fixedPorts: new Set([7000]),
    pinned: new Set<string>(),
    now: new Date('2026-12-01T00:00:00Z'),
  });

  test('new branches get sites with the lowest free ports of the range', () => {
    const out = answer(emptySites(), input({ 'feature/a': 'a1', 'feature/B_c': 'b1' }));
    // In the order of the branch names, so a restart or another daemon names them alike.
    expect(out.added).toEqual(['feature-b-c', 'feature-a']);
    expect(out.sites.patterns.review['feature-b-c']).toMatchObject({
      ref: 'feature/B_c',
      port: 7001,
    });
    expect(out.sites.patterns.review['feature-a']).toMatchObject({ port: 7002 });
  });

  test('a gone branch retires after 3 successful answers', () => {
    let sites = answer(emptySites(), input({ 'feature/a': 'a', 'feature/b': 'b' })).sites;
    const gone: string[][] = [];
    for (let i = 0; i < 3; i++) {
      const out = answer(sites, input({ 'feature/a': 'a' }));
      gone.push(out.retired.map((r) => `${r.name} ${r.reason}`));
      sites = out.sites;
    }
    expect(gone).toEqual([[], [], ['feature-b gone']]);
    expect(Object.keys(sites.patterns.review)).toEqual(['feature-a']);
  });

  test('an answer without any matching branch retires nothing, even a last site, until confirmed', () => {
    let sites = answer(emptySites(), input({ 'feature/a': 'a' })).sites;
    const held: Array<string[] | null> = [];
    for (let i = 0; i < 5; i++) {
      const out = answer(sites, input({}));
      expect(out.retired).toEqual([]);
      held.push(out.held && out.held.map((r) => r.name));
      sites = out.sites;
    }
    expect(held).toEqual([null, null, ['feature-a'], null, null]);
    const out = answer(sites, { ...input({}), confirmedAt: '2026-12-01T00:00:00Z' });
    expect(out.retired.map((r) => r.name)).toEqual(['feature-a']);
  });

  test('a retired name goes to the same branch again, never to another one', () => {
    let sites = answer(emptySites(), input({ 'feature/a': 'a', 'feature/x': 'x' })).sites;
    for (let i = 0; i < 3; i++) sites = answer(sites, input({ 'feature/x': 'x' })).sites;
    expect(sites.retired?.['feature-a']).toMatchObject({ pattern: 'review', ref: 'feature/a' });
    const other = answer(sites, input({ 'feature/x': 'x', 'feature/A': 'A' }));
    expect(other.added).toEqual([expect.stringMatching(/^feature-a-[0-9a-f]{6}$/)]);
    const same = answer(sites, input({ 'feature/x': 'x', 'feature/a': 'a2' }));
    expect(same.added).toEqual(['feature-a']);
  });

  test('a branch back before the count is reached keeps its site, name and port', () => {
    let sites = answer(emptySites(), input({ 'feature/a': 'a', 'feature/b': 'b' })).sites;
    sites = answer(sites, input({ 'feature/a': 'a' })).sites;
    expect(sites.patterns.review['feature-b'].missing).toBe(1);
    const out = answer(sites, input({ 'feature/a': 'a', 'feature/b': 'b2' }));
    expect(out.added).toEqual([]);
    expect(out.sites.patterns.review['feature-b']).toMatchObject({ missing: 0, port: 7002 });
  });

  test('a retired port is given out again; a full range leaves a branch without a site', () => {
    let sites = answer(
      emptySites(),
      input({ 'feature/a': 'a', 'feature/b': 'b', 'feature/c': 'c', 'feature/d': 'd' }),
    ).sites;
    expect(Object.keys(sites.patterns.review)).toEqual(['feature-a', 'feature-b', 'feature-c']);
    for (let i = 0; i < 3; i++)
      sites = answer(sites, input({ 'feature/b': 'b', 'feature/c': 'c', 'feature/d': 'd' })).sites;
    expect(sites.patterns.review['feature-d']).toMatchObject({ port: 7001 });
  });
});

test('the sites are branches of the loaded config, {branch} filled with the site name', async () => {
  const t = tempDir();
  try {
    const file = path.join(t.dir, 'ci.yaml');
    writeFileSync(file, PATTERN());
    const before = parseConfig(PATTERN(), file, {});
    expect(before.branches.map((b) => b.name)).toEqual(['staging']);
    const sites = answer(emptySites(), {
      pattern: pattern(before),
      refs: { 'feature/x$(id)': 'c1' },
      fixedNames: new Set(['staging']),
      fixedPorts: new Set([7000]),
      pinned: new Set(),
      now: new Date(),
    }).sites;
    await writeSites(before.stateDir, sites);
    const after = parseConfig(PATTERN(), file, {});
    expect(after.branches.map((b) => b.name)).toEqual(['staging', 'feature-x-id']);
    const site = after.branches[1];
    expect(site).toMatchObject({
      dir: '/srv/staging/review/feature-x-id',
      port: 7001,
      customers: ['osf'],
      pattern: { name: 'review', ref: 'feature/x$(id)' },
      steps: [{ name: 'build', run: 'make SITE=feature-x-id' }],
      health: { url: 'http://127.0.0.1:{port}/feature-x-id/{customer}/' },
    });
    expect(site.sources.map((s) => [s.name, s.ref, s.path, s.match])).toEqual([
      ['app', 'feature/x$(id)', 'src/app', undefined],
      ['lib', 'main', 'src/lib-feature-x-id', undefined],
    ]);
  } finally {
    t.cleanup();
  }
});

test('configs without match are unchanged; bad patterns are told with their line', () => {
  const plain = parseConfig(PATTERN().split('  review:')[0], '/srv/ci.yaml', {});
  expect(plain.patterns).toEqual([]);
  const bad = PATTERN()
    .replace('port: 7000-7003', 'port: 7005')
    .replace('dir: /srv/staging/review/{branch}', 'dir: /srv/staging/review')
    .replace(
      '{ name: app, vcs: git, url: "https://git.example.com/app.git" }',
      '{ name: app, vcs: git, url: "https://git.example.com/app.git", ref: main }',
    );
  const messages = problemsOf(bad).map((p) => `${p.line} ${p.message}`);
  expect(messages).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/^12 the sites of pattern review would share the directory/),
      expect.stringMatching(/^13 every site of pattern review would get port 7005/),
      expect.stringMatching(
        /^17 source app is matched by the pattern, so its ref is each matching branch/,
      ),
    ]),
  );
  expect(
    problemsOf(PATTERN().replace('port: 7000\n', 'port: 7000-7001\n')).map((p) => p.message),
  ).toEqual([expect.stringMatching(/port 7000-7001 is a range, which only a pattern/)]);
  expect(
    problemsOf(PATTERN().replace('customers: [osf]', 'customers: [osf]\n    mailin: [osf]')).map(
      (p) => `${p.line} ${p.message}`,
    ),
  ).toEqual([
    expect.stringMatching(/^15 a customer's mail-in goes to one branch, not to every site/),
  ]);
});

describe('slots, pins, idle and the half-at-once guard', () => {
  const base = parseConfig(PATTERN('/nonexistent-state'), '/srv/ci.yaml', {});
  const withSlots = (extra: Partial<PatternConfig>): PatternConfig => ({
    ...pattern(base),
    ...extra,
  });
  const at = (minutes: number) => new Date(Date.UTC(2026, 11, 1, 0, minutes));
  const run = (
    sites: SitesFile,
    p: PatternConfig,
    refs: Record<string, string>,
    minutes: number,
    more: { pinned?: string[]; confirmedAt?: string } = {},
  ) =>
    answer(sites, {
      pattern: p,
      refs,
      fixedNames: new Set(['staging']),
      fixedPorts: new Set([7000]),
      pinned: new Set(more.pinned ?? []),
      ...(more.confirmedAt ? { confirmedAt: more.confirmedAt } : {}),
      now: at(minutes),
    });
  const names = (s: SitesFile) => Object.keys(s.patterns.review).sort();

  test('the newest branches get the slots, the others wait and come back with a new commit', () => {
    const p = withSlots({ slots: 2 });
    let s = run(emptySites(), p, { 'feature/a': 'a1', 'feature/b': 'b1' }, 0).sites;
    s = run(s, p, { 'feature/a': 'a2', 'feature/b': 'b1' }, 1).sites;
    // c is pushed: its commit is the newest seen, b's the oldest.
    let out = run(s, p, { 'feature/a': 'a2', 'feature/b': 'b1', 'feature/c': 'c1' }, 2);
    expect(out.retired.map((r) => `${r.name} ${r.reason}`)).toEqual(['feature-b bumped']);
    expect(names(out.sites)).toEqual(['feature-a', 'feature-c']);
    expect(Object.keys(out.sites.waiting!.review)).toEqual(['feature/b']);
    // Waiting and unchanged: it stays waiting.
    out = run(out.sites, p, { 'feature/a': 'a2', 'feature/b': 'b1', 'feature/c': 'c1' }, 3);
    expect(out.retired).toEqual([]);
    expect(out.added).toEqual([]);
    // A new commit on b: a is the oldest now.
    out = run(out.sites, p, { 'feature/a': 'a2', 'feature/b': 'b2', 'feature/c': 'c1' }, 4);
    expect(out.retired.map((r) => r.name)).toEqual(['feature-a']);
    expect(names(out.sites)).toEqual(['feature-b', 'feature-c']);
    expect(Object.keys(out.sites.waiting!.review)).toEqual(['feature/a']);
  });

  test('a pinned site is never bumped and counts against the slots', () => {
    const p = withSlots({ slots: 2 });
    let s = run(emptySites(), p, { 'feature/a': 'a1', 'feature/b': 'b1' }, 0).sites;
    const out = run(s, p, { 'feature/a': 'a1', 'feature/b': 'b1', 'feature/c': 'c1' }, 5, {
      pinned: ['feature-a'],
    });
    // c (newest) takes the one unpinned slot from b; a stays pinned.
    expect(out.retired.map((r) => r.name)).toEqual(['feature-b']);
    expect(names(out.sites)).toEqual(['feature-a', 'feature-c']);
    s = out.sites;
    // Pinned and gone from the remote: kept.
    for (let i = 0; i < 5; i++)
      s = run(s, p, { 'feature/c': 'c1' }, 6 + i, { pinned: ['feature-a'] }).sites;
    expect(names(s)).toEqual(['feature-a', 'feature-c']);
  });

  test('idle sites retire on the clock; a new commit resets it; pinned ones stay', () => {
    const p = withSlots({ idleMs: 60 * 60_000 });
    let s = run(
      emptySites(),
      p,
      { 'feature/a': 'a1', 'feature/b': 'b1', 'feature/c': 'c1' },
      0,
    ).sites;
    s = run(s, p, { 'feature/a': 'a1', 'feature/b': 'b2', 'feature/c': 'c1' }, 50).sites;
    const out = run(s, p, { 'feature/a': 'a1', 'feature/b': 'b2', 'feature/c': 'c1' }, 61, {
      pinned: ['feature-c'],
    });
    expect(out.retired.map((r) => `${r.name} ${r.reason}`)).toEqual(['feature-a idle']);
    expect(names(out.sites)).toEqual(['feature-b', 'feature-c']);
  });

  test('more than half at once is held until confirmed, and told once', () => {
    const p = pattern(base);
    const three = { 'feature/a': 'a', 'feature/b': 'b', 'feature/c': 'c' };
    let s = run(emptySites(), p, three, 0).sites;
    const held: Array<string[] | null> = [];
    for (let i = 1; i <= 5; i++) {
      const out = run(s, p, { 'feature/a': 'a' }, i);
      expect(out.retired).toEqual([]);
      held.push(out.held && out.held.map((r) => r.name));
      s = out.sites;
    }
    expect(held).toEqual([null, null, ['feature-b', 'feature-c'], null, null]);
    expect(names(s)).toEqual(['feature-a', 'feature-b', 'feature-c']);
    // A confirmation from before the hold does not count; one after it does.
    expect(
      run(s, p, { 'feature/a': 'a' }, 6, { confirmedAt: at(2).toISOString() }).retired,
    ).toEqual([]);
    const out = run(s, p, { 'feature/a': 'a' }, 6, { confirmedAt: at(4).toISOString() });
    expect(out.retired.map((r) => r.name)).toEqual(['feature-b', 'feature-c']);
    expect(names(out.sites)).toEqual(['feature-a']);
    expect(out.sites.held?.review).toBeUndefined();
  });
});
