/**
 * Issue 16.10: `check` refuses layouts where a branch's checkouts and steps
 * would write over stagepost's own files or another branch; a port over
 * 65535; a billion-laughs file is a config error (exit 2) with the reason;
 * and a file with very many branches is checked in linear time.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { FILE, lineWith, problemsOf } from './helpers.js';

const branch = (name: string, dir: string, extra = '') => `  ${name}:
    dir: ${dir}
    sources:
      - { name: app, vcs: git, url: "https://git.example.com/app.git", ref: main${extra} }
`;
const config = (branches: string, head = '') =>
  `version: 1\n${head}steps: [{ name: build, run: make }]\nbranches:\n${branches}`;

test.each([
  ['state_dir itself', config(branch('a', './state'), 'state_dir: ./state\n'), /is state_dir/],
  ['inside state_dir', config(branch('a', './.stagepost/x')), /is state_dir/],
  ['above state_dir', config(branch('a', './var'), 'state_dir: ./var/state\n'), /is state_dir/],
  ['the directory of ci.yaml', config(branch('a', '.')), /is the directory of ci.yaml:/],
  ['a parent of ci.yaml', config(branch('a', '..')), /the directory of ci.yaml or a parent/],
  ['the root, with path "."', config(branch('a', '/', ', path: "."')), /is the root directory/],
])('a branch dir that is %s is refused with its line', (_what, text, message) => {
  const problems = problemsOf(text);
  expect(problems).toHaveLength(1);
  expect(problems[0]).toMatchObject({ path: 'branches.a.dir', line: lineWith(text, '    dir:') });
  expect(problems[0].message).toMatch(message);
  expect(problems[0].message).toMatch(/give the branch a directory of its own/);
});

test('a branch dir inside another branch dir is refused, whichever comes first', () => {
  const text = config(
    branch('inner', './sites/a/src/app/site') +
      branch('outer', './sites/a') +
      branch('c', './sites/c'),
  );
  const problems = problemsOf(text);
  expect(problems).toHaveLength(1);
  expect(problems[0]).toMatchObject({
    path: 'branches.inner.dir',
    line: lineWith(text, './sites/a/src'),
  });
  expect(problems[0].message).toMatch(/inside the dir of branch outer .*put the two side by side/);
});

test('side-by-side dirs with a common prefix are fine', () => {
  const c = parseConfig(config(branch('a', './sites/a') + branch('ab', './sites/ab')), FILE, {});
  expect(c.branches.map((b) => b.dir)).toEqual([
    '/srv/stagepost/sites/a',
    '/srv/stagepost/sites/ab',
  ]);
});

test('a listen port over 65535 is refused', () => {
  const text = config(branch('a', './sites/a'), 'http:\n  listen: 127.0.0.1:70000\n');
  const [problem] = problemsOf(text);
  expect(problem).toMatchObject({ path: 'http.listen', line: lineWith(text, 'listen') });
  expect(problem.message).toMatch(/1 to 65535/);
});

const LAUGHS = `version: 1
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
`;

test('a billion-laughs file is a config error with the reason', () => {
  const [problem] = problemsOf(LAUGHS);
  expect(problem.line).toBe(3);
  expect(problem.message).toMatch(/aliases expand too far .*resource exhaustion/);
});

test('check exits 2 for a billion-laughs file, naming file and line', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'ci.yaml');
    writeFileSync(file, LAUGHS);
    const r = await runCli(['check', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:3`);
    expect(r.stderr).toMatch(/aliases expand too far/);
  } finally {
    cleanup();
  }
});

test('a duplicated key still names both lines', () => {
  const [problem] = problemsOf(config(branch('a', './sites/a') + branch('a', './sites/b')));
  expect(problem.line).toBe(8);
  expect(problem.message).toMatch(/Map keys must be unique — a is already on line 4/);
});

test('20,000 branches are checked in linear time', () => {
  const many = (n: number) => {
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(branch(`b${i}`, `./sites/b${i}`));
    return config(parts.join(''));
  };
  const time = (text: string) => {
    const started = performance.now();
    expect(parseConfig(text, FILE, {}).branches.length).toBeGreaterThan(0);
    return performance.now() - started;
  };
  const small = many(5000);
  const big = many(20_000);
  time(small); // warm up the JIT
  const ratio = time(big) / time(small);
  // Quadratic: ~16x (it was 4.4 s for 10,000 branches in check); linear: ~4x.
  expect(ratio).toBeLessThan(9);
}, 60_000);
