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

  test('a gone branch retires after 3 successful answers; empty answers never count', () => {
    let sites: SitesFile = answer(
      emptySites(),
      input({ 'feature/a': 'a', 'feature/b': 'b' }),
    ).sites;
    for (let i = 0; i < 5; i++) {
      const out = answer(sites, input({}));
      expect(out.gone).toEqual([]);
      expect(out.changed).toBe(false);
      sites = out.sites;
    }
    const gone: string[][] = [];
    for (let i = 0; i < 3; i++) {
      const out = answer(sites, input({ 'feature/a': 'a' }));
      gone.push(out.gone);
      sites = out.sites;
    }
    expect(gone).toEqual([[], [], ['feature-b']]);
    expect(Object.keys(sites.patterns.review)).toEqual(['feature-a']);
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
});
