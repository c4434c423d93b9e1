/**
 * Every rule of SPEC's ci.yaml, each rejected with the line of ci.yaml that
 * has to change.
 */
import { parseConfig } from '../../src/config/load.js';
import { BASE, FILE, lineWith, problemsOf } from './helpers.js';

/** The one problem of `text`, asserted to be at the line containing `marker`. */
function oneProblem(text: string, marker: string, env: NodeJS.ProcessEnv = {}) {
  const problems = problemsOf(text, env);
  expect(problems).toHaveLength(1);
  expect(problems[0].file).toBe(FILE);
  expect(problems[0].line).toBe(lineWith(text, marker));
  return problems[0];
}

test('the base config is valid (so each test below fails for its own reason)', () => {
  expect(() => problemsOf(BASE)).toThrow('expected the config to be rejected');
});

test('an unknown key at the top level, with a suggestion', () => {
  const text = BASE.replace('steps:', 'pol: { interval: 5s }   # typo\nsteps:');
  const p = oneProblem(text, 'typo');
  expect(p.path).toBe('pol');
  expect(p.message).toMatch(/unknown key "pol" — did you mean "poll"\?/);
});

test('an unknown key in a branch', () => {
  const text = BASE.replace('    port: 6544', '    port: 6544\n    colour: red   # here');
  const p = oneProblem(text, 'here');
  expect(p.path).toBe('branches.branch1.colour');
  expect(p.message).toMatch(/unknown key "colour" — the keys here are: dir, port, sources/);
});

test('an unknown key in a git source; a plugin VCS keeps its extra keys as options', () => {
  const text = BASE.replace(
    'ref: feature, path: src/app }',
    'ref: feature, path: src/app,\n          depth: 1 }   # here',
  );
  const p = oneProblem(text, 'here');
  expect(p.path).toBe('branches.branch1.sources[0].depth');
  expect(p.message).toMatch(/unknown key for a git or svn source: "depth"/);
});

test('unknown keys in nested maps: poll of a branch, a step, http, a job', () => {
  const text =
    `${BASE.replace('    customers: [osf]\n', '    customers: [osf]\n    poll: { intervall: 5s }   # poll\n')}
http:
  listen: 8750
  tokn: x            # http
jobs:
  sync:
    schedule: "0 2 * * *"
    branches: all
    run: sync
    every: day       # job
`.replace('    run: make', '    run: make\n    timout: 5m   # step');
  const problems = problemsOf(text);
  expect(problems.map((p) => [p.line, p.path])).toEqual([
    [lineWith(text, '# step'), 'steps[0].timout'],
    [lineWith(text, '# poll'), 'branches.branch1.poll.intervall'],
    [lineWith(text, '# http'), 'http.tokn'],
    [lineWith(text, '# job'), 'jobs.sync.every'],
  ]);
});

test.each([
  ['a branch', 'branch1:', 'Branch1:', 'branches.Branch1', /branch names are lower-case/],
  ['a branch that climbs out', 'branch1:', '../evil:', 'branches.../evil', /branch names are/],
  [
    'a source',
    '{ name: app, vcs: git, url: "https://git.example.com/app.git", ref: feature',
    '{ name: "../app", vcs: git, url: "https://git.example.com/app.git", ref: feature',
    'branches.branch1.sources[0].name',
    /source names are/,
  ],
  [
    'a customer',
    'customers: [osf]\n',
    'customers: [osf, "Big Customer"]\n',
    'branches.branch1.customers[1]',
    /customer names are/,
  ],
])('a bad name of %s', (_what, from, to, path, message) => {
  const text = BASE.replace(from, to);
  const p = oneProblem(text, to.split('\n')[0]);
  expect(p.path).toBe(path);
  expect(p.message).toMatch(message);
});

test('a bad job name', () => {
  const text = `${BASE}jobs:\n  Nightly Sync:\n    schedule: "0 2 * * *"\n    branches: all\n    run: sync\n`;
  expect(oneProblem(text, 'Nightly').message).toMatch(/job names are/);
});

test('a customer in mailin of two branches: both branches named', () => {
  const text = BASE.replace(
    'customers: [osf, anothercustomer]',
    'customers: [osf, anothercustomer]\n    mailin: [osf]',
  ).replace('customers: [osf]\n', 'customers: [osf]\n    mailin: [osf]   # second\n');
  const p = oneProblem(text, '# second');
  expect(p.path).toBe('branches.branch1.mailin[0]');
  expect(p.message).toMatch(/customer osf is in mailin of both staging and branch1/);
});

test('a mail-in customer the branch does not serve', () => {
  const text = BASE.replace(
    'customers: [osf]\n',
    'customers: [osf]\n    mailin: [anothercustomer]   # here\n',
  );
  expect(oneProblem(text, '# here').message).toMatch(
    /anothercustomer is not a customer of branch1/,
  );
});

test('two branches with the same dir, written differently', () => {
  const text = BASE.replace('dir: ./sites/branch1', 'dir: sites/x/../staging   # here');
  const p = oneProblem(text, '# here');
  expect(p.path).toBe('branches.branch1.dir');
  expect(p.message).toMatch(
    /branches staging and branch1 share the directory \/srv\/stagepost\/sites\/staging/,
  );
});

test('two sources of a branch with the same path', () => {
  const text = BASE.replace(
    'ref: feature, path: src/app }',
    'ref: feature, path: src/app }\n      - { name: lib, vcs: svn, url: "file:///r/lib", path: ./src/app/ }   # here',
  );
  const p = oneProblem(text, '# here');
  expect(p.path).toBe('branches.branch1.sources[1].path');
  expect(p.message).toMatch(/sources app and lib of branch1 share the path/);
});

test.each([['../outside'], ['src/../../outside'], ['/etc']])(
  'a source path that leaves the branch dir: %s',
  (where) => {
    const text = BASE.replace(
      'ref: feature, path: src/app }',
      `ref: feature, path: "${where}" }   # here`,
    );
    const p = oneProblem(text, '# here');
    expect(p.path).toBe('branches.branch1.sources[0].path');
    expect(p.message).toMatch(/leaves the branch dir|is absolute/);
  },
);

test('a git source without a ref', () => {
  const text = BASE.replace('ref: feature, path: src/app }', 'path: src/app }   # here');
  const p = oneProblem(text, '# here');
  expect(p.path).toBe('branches.branch1.sources[0].ref');
  expect(p.message).toBe('git sources need a ref (the branch or tag to build) — add "ref: main"');
});

test('a source without url or vcs, and a vcs that is no plugin name', () => {
  const text = BASE.replace(
    '{ name: app, vcs: git, url: "https://git.example.com/app.git", ref: feature, path: src/app }',
    '{ name: app, vcs: git, ref: feature }   # no url\n      - { name: b, url: "x", path: b }   # no vcs\n      - { name: c, vcs: "Git", url: "x", path: c }   # bad vcs',
  );
  const problems = problemsOf(text);
  expect(problems.map((p) => [p.line, p.path, p.message])).toEqual([
    [
      lineWith(text, '# no url'),
      'branches.branch1.sources[0].url',
      'url is required — add "url: git@git.example.com:karl.git"',
    ],
    [
      lineWith(text, '# no vcs'),
      'branches.branch1.sources[1].vcs',
      'vcs is required — add "vcs: git"',
    ],
    [
      lineWith(text, '# bad vcs'),
      'branches.branch1.sources[2].vcs',
      expect.stringMatching(/vcs "Git" is not git, svn.*did you mean "git"\?/),
    ],
  ]);
});

test.each([['5 minutes'], ['-1s'], ['1y']])('a bad duration: %s', (value) => {
  const text = BASE.replace('    run: make', `    run: make\n    timeout: ${value}   # here`);
  const p = oneProblem(text, '# here');
  expect(p.path).toBe('steps[0].timeout');
  expect(p.message).toMatch(/not a duration: write a duration with a unit — 500ms, 30s/);
});

test('an unset ${VAR}: file, line and variable named', () => {
  const text = BASE.replace(
    'url: "https://git.example.com/app.git", ref: feature',
    'url: "https://${GIT_TOKEN}@git.example.com/app.git", ref: feature',
  );
  const p = oneProblem(text, 'GIT_TOKEN');
  expect(p.path).toBe('branches.branch1.sources[0].url');
  expect(p.message).toMatch(/\$\{GIT_TOKEN\} is not set in the environment — set GIT_TOKEN/);
});

test('a duplicate smtp_port, and an smtp_port that is a branch port', () => {
  const text = BASE.replace(
    'customers: [osf, anothercustomer]',
    'customers: [osf, anothercustomer]\n    smtp_port: 2526',
  ).replace('customers: [osf]\n', 'customers: [osf]\n    smtp_port: 2526   # dup\n');
  expect(oneProblem(text, '# dup').message).toMatch(
    /smtp_port 2526 is already the mail catcher of branch staging/,
  );
  const clash = BASE.replace(
    'customers: [osf]\n',
    'customers: [osf]\n    smtp_port: 6543   # clash\n',
  );
  expect(oneProblem(clash, '# clash').message).toMatch(
    /smtp_port 6543 is the app port of branch staging/,
  );
});

test('mailout: true needs site.smtp_relay (and smtp_port)', () => {
  const text = BASE.replace(
    'customers: [osf]\n',
    'customers: [osf]\n    smtp_port: 2526\n    mailout: true   # here\n',
  );
  expect(oneProblem(text, '# here').message).toMatch(/mailout: true needs site\.smtp_relay/);
  expect(() => problemsOf(`site: { smtp_relay: "smtp://localhost:25" }\n${text}`)).toThrow(
    'expected the config to be rejected',
  );
});

test.each([['0 2 * *'], ['61 * * * *'], ['every night']])('a bad cron schedule: %s', (schedule) => {
  const text = `${BASE}jobs:\n  sync:\n    schedule: "${schedule}"   # here\n    branches: [staging]\n    run: sync\n`;
  const p = oneProblem(text, '# here');
  expect(p.path).toBe('jobs.sync.schedule');
  expect(p.message).toMatch(/not a cron expression/);
});

test('a job for a branch that does not exist; a bad time zone', () => {
  const text = `${BASE}jobs:\n  sync:\n    schedule: "0 0 2 * * *"\n    timezone: Mars/Olympus   # tz\n    branches: [staging, branch9]   # here\n    run: sync\n`;
  const problems = problemsOf(text);
  expect(problems.map((p) => [p.line, p.path])).toEqual([
    [lineWith(text, '# tz'), 'jobs.sync.timezone'],
    [lineWith(text, '# here'), 'jobs.sync.branches[1]'],
  ]);
  expect(problems[1].message).toMatch(
    /names branch branch9, which is not in branches: — known: staging, branch1/,
  );
});

test('version must be 1; branches must be a map (but may be empty)', () => {
  expect(oneProblem(BASE.replace('version: 1', 'version: 2   # here'), '# here').message).toMatch(
    /version must be 1/,
  );
  expect(oneProblem('version: 1\nbranches:\n  - staging   # here\n', 'branches:').message).toMatch(
    /branches is a map/,
  );
  expect(() => problemsOf('version: 1\nbranches:\n')).toThrow('expected the config to be rejected');
  expect(() => problemsOf('version: 1\nbranches: {}\n')).toThrow(
    'expected the config to be rejected',
  );
});

test('several problems are reported at once, in line order, in one message', () => {
  const text = BASE.replace('version: 1', 'version: 1\nbuilds: { concurrency: 0 }   # a')
    .replace(
      'customers: [osf, anothercustomer]',
      'customers: [osf, anothercustomer]\n    mailin: [osf]',
    )
    .replace('    port: 6544', '    port: 6544\n    colour: red   # b')
    .replace('customers: [osf]\n', 'customers: [osf]\n    mailin: [osf]   # c\n')
    .replace('ref: main, path: src/app }', 'path: src/app }   # d');
  let message = '';
  const problems = problemsOf(text);
  expect(problems.map((p) => p.line)).toEqual(
    ['# a', '# d', '# b', '# c'].map((m) => lineWith(text, m)).sort((x, y) => x - y),
  );
  try {
    parseConfig(text, FILE, {});
  } catch (err) {
    message = (err as Error).message;
  }
  expect(message.split('\n')).toHaveLength(5);
  expect(message).toContain(
    `${FILE}:${lineWith(text, '# a')}: builds.concurrency: concurrency is a whole number, 1 or more`,
  );
});

test('broken YAML is reported with its line', () => {
  const text = 'version: 1\nbranches:\n  staging:\n    dir: [unclosed\n    port: 1\n';
  const problems = problemsOf(text);
  expect(problems[0].message).toMatch(/^not valid YAML: /);
  expect(problems[0].line).toBeGreaterThanOrEqual(4);
  const dup = problemsOf('version: 1\nbranches:\n  a: 1\nbranches:\n  b: 1\n');
  expect(dup[0].line).toBe(4);
  expect(dup[0].message).toMatch(/not valid YAML: Map keys must be unique/);
});
