/** Samples of a Prometheus text exposition; throws on any line that is not valid. */
export function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const sample =
    /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)( \d+)?$/i;
  const meta = /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      if (!meta.test(line)) throw new Error(`bad metadata line: ${line}`);
      continue;
    }
    const m = sample.exec(line);
    if (!m) throw new Error(`bad sample line: ${line}`);
    samples.set(m[1] + (m[2] ?? ''), Number(m[3]));
  }
  return samples;
}
