/**
 * ci.yaml `env` (issue 16.4): what steps get beyond the allow-list, and
 * `http.public_logs`; the loader reports which variables `${…}` read, so the
 * daemon can drop them from its environment.
 */
import { parseConfig } from '../../src/config/load.js';
import { BASE, FILE, lineWith, problemsOf } from './helpers.js';

test('env pass is looked up in the loader environment, set overrides, branch after top', () => {
  const text = `${BASE}env:
  pass: [PROXY, MISSING]
  set: { A: top, B: top }
`.replace(
    '    customers: [osf]\n',
    '    customers: [osf]\n    env: { pass: [EXTRA], set: { B: branch } }\n',
  );
  const c = parseConfig(text, FILE, { PROXY: 'http://proxy:3128', EXTRA: 'x', OTHER: 'no' });
  const env = Object.fromEntries(c.branches.map((b) => [b.name, b.env]));
  expect(env.staging).toEqual({ PROXY: 'http://proxy:3128', A: 'top', B: 'top' });
  expect(env.branch1).toEqual({ PROXY: 'http://proxy:3128', A: 'top', B: 'branch', EXTRA: 'x' });
});

test('STAGEPOST_* and malformed names are refused in env', () => {
  const text = `${BASE}env:\n  set: { STAGEPOST_PORT: "1" }\n  pass: ["not a name"]\n`;
  const problems = problemsOf(text);
  expect(problems.map((p) => p.line)).toEqual([
    lineWith(text, 'STAGEPOST_PORT'),
    lineWith(text, 'not a name'),
  ]);
  expect(problems[0].message).toMatch(/not STAGEPOST_\*/);
});

test('secretNames lists what ${…} read; public_logs defaults to true', () => {
  const text = `${BASE}http:\n  token: \${TOKEN}\nnotify:\n  - { use: webhook, url: "https://h/\${HOOK}" }\n`;
  const c = parseConfig(text, FILE, { TOKEN: 't0k3n', HOOK: 'h00k' });
  expect(c.secretNames.sort()).toEqual(['HOOK', 'TOKEN']);
  expect(c.http).toMatchObject({ publicLogs: true, publicUrlSet: false });
  const off = parseConfig(`${BASE}http:\n  public_logs: false\n`, FILE, {});
  expect(off.http?.publicLogs).toBe(false);
});
