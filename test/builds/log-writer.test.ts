/**
 * Build logs are bounded (issue 16, point 9): past builds.log_max the start
 * and the end are kept with a line where the log was cut, and failure-mail
 * tails are read from the end of the file, whatever its size.
 */
import { appendFileSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LogWriter, tailLines } from '../../src/builds/log-writer.js';
import { tempDir } from '../helpers/tmp.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir('stagepost-logw-');
});
afterEach(() => t.cleanup());

test('output past log_max is cut: the first half, a marker, the bytes left out, the last half with the final lines', async () => {
  const file = path.join(t.dir, 'logs', '1.log');
  const max = 64 * 1024;
  const writer = new LogWriter(file, undefined, max);
  writer.line('==> step: noisy');
  for (let i = 0; i < 20_000; i++) writer.output(`line ${i} ${'x'.repeat(40)}\n`);
  writer.output('the last words of the step\n');
  writer.line('stagepost build b#1: failure at noisy');
  await writer.close();
  const text = readFileSync(file, 'utf8');
  expect(statSync(file).size).toBeLessThanOrEqual(max + 1024);
  expect(text.startsWith('==> step: noisy\nline 0 ')).toBe(true);
  expect(text).toMatch(/\[stagepost: this log reached half of builds\.log_max \(64 KB\)/);
  expect(text).toMatch(/\[stagepost: [\d.]+ (KB|MB) left out here\]\nline \d+ x+\n/);
  expect(text.endsWith('the last words of the step\nstagepost build b#1: failure at noisy\n')).toBe(
    true,
  );
  // Nothing in between is torn: every output line is whole.
  for (const l of text.split('\n').filter((x) => x.startsWith('line ')))
    expect(l).toMatch(/^line \d+ x{40}$/);
});

test('a log under log_max is written whole, without a marker', async () => {
  const file = path.join(t.dir, '2.log');
  const writer = new LogWriter(file, undefined, 64 * 1024);
  writer.output('a\nb\n');
  writer.line('done');
  await writer.close();
  expect(readFileSync(file, 'utf8')).toBe('a\nb\ndone\n');
});

test('tailLines reads the last lines from the end of a 600 MB log (too big for one string) without reading it whole', () => {
  const file = path.join(t.dir, 'big.log');
  writeFileSync(file, 'first\n');
  // Sparse: 600 MB on paper, nothing on disk.
  truncateSync(file, 600 * 1024 * 1024);
  appendFileSync(file, '\n' + Array.from({ length: 150 }, (_, i) => `tail ${i}`).join('\n') + '\n');
  const before = process.memoryUsage().rss;
  const lines = tailLines(file, 100);
  expect(lines).toHaveLength(100);
  expect(lines[0]).toBe('tail 50');
  expect(lines[99]).toBe('tail 149');
  expect(process.memoryUsage().rss - before).toBeLessThan(50 * 1024 * 1024);
});

test('tailLines of a short file, of one without a final newline, and of long lines', () => {
  const file = path.join(t.dir, 'short.log');
  writeFileSync(file, 'a\nb\nc');
  expect(tailLines(file, 100)).toEqual(['a', 'b', 'c']);
  expect(tailLines(file, 2)).toEqual(['b', 'c']);
  writeFileSync(file, `${'y'.repeat(300_000)}\nz\n`);
  const lines = tailLines(file, 2);
  expect(lines[1]).toBe('z');
  // Longer than what is read back: its end, marked as cut.
  expect(lines[0]).toMatch(/^…y{1999}/);
  expect(lines[0].length).toBeLessThanOrEqual(2002);
  expect(tailLines(path.join(t.dir, 'missing.log'), 5)).toEqual([]);
});
