/**
 * Issue 16.7: durations Node's timers cannot honour (over 2^31-1 ms, or 0
 * where 0 switches a timeout off) are config errors with their line and the
 * allowed range, not a tight poll loop or an instant timeout.
 */
import { parseConfig } from '../../src/config/load.js';
import { BASE, FILE, lineWith, problemsOf } from './helpers.js';

const withPoll = (body: string) => `${BASE}poll:\n${body}\n`;

test.each([
  ['interval: 30d', 'interval'],
  ['timeout: 25d', 'timeout'],
  ['timeout: 1e300', 'timeout'],
  ['interval: 2147484s', 'interval'],
])('poll %s is rejected with its line and the range', (entry, key) => {
  const text = withPoll(`  ${entry}`);
  const problems = problemsOf(text);
  expect(problems).toHaveLength(1);
  expect(problems[0]).toMatchObject({ line: lineWith(text, entry), path: `poll.${key}` });
  expect(problems[0].message).toMatch(/too long: the allowed range is 1ms to 24d \(2147483647 ms/);
});

test('a timeout of 0 would switch the timeout off: rejected', () => {
  const text = withPoll('  timeout: 0');
  const [problem] = problemsOf(text);
  expect(problem.line).toBe(lineWith(text, 'timeout: 0'));
  expect(problem.message).toMatch(/would switch this off: the allowed range is 1ms to 24d/);
});

test('step, job and health timeouts are checked too', () => {
  const text = `${BASE}builds:
  step_timeout: 40d
health:
  url: http://127.0.0.1:{port}/
  timeout: 0s
jobs:
  sync:
    schedule: "0 2 * * *"
    branches: all
    run: sync
    timeout: 25d
`;
  const problems = problemsOf(text).map((p) => [p.path, p.line]);
  expect(problems).toEqual(
    expect.arrayContaining([
      ['builds.step_timeout', lineWith(text, '40d')],
      ['health.timeout', lineWith(text, '0s')],
      ['jobs.sync.timeout', lineWith(text, '25d')],
    ]),
  );
});

test('the longest honourable values and a quiet of 0 are accepted', () => {
  const c = parseConfig(withPoll('  interval: 24d\n  timeout: 2147483ms\n  quiet: 0'), FILE, {});
  expect(c.poll).toEqual({ intervalMs: 24 * 86_400_000, timeoutMs: 2_147_483, quietMs: 0 });
});
