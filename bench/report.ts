/** The bench's table: one row per figure, with its target and PASS/FAIL. */
interface Row {
  what: string;
  value: string;
  target: string;
  verdict: 'PASS' | 'FAIL' | '';
  section?: boolean;
}

export class Report {
  private readonly rows: Row[] = [];

  exact(what: string, value: number, want: number): void {
    this.rows.push({
      what,
      value: fmt(value, 1),
      target: `= ${want}`,
      verdict: value === want ? 'PASS' : 'FAIL',
    });
  }

  atMost(
    what: string,
    value: number,
    limit: number,
    digits: number,
    unit = '',
    shown?: string,
  ): void {
    const u = unit ? ` ${unit}` : '';
    this.rows.push({
      what,
      value: shown ?? `${fmt(value, digits)}${u}`,
      target: `≤ ${limit}${u}`,
      verdict: value <= limit ? 'PASS' : 'FAIL',
    });
  }

  ratio(what: string, value: number, base: number, limit: number): void {
    this.atMost(
      what,
      value / base,
      limit,
      2,
      '',
      `${(value / base).toFixed(2)} (${value.toFixed(1)} / ${base.toFixed(1)} ms)`,
    );
  }

  info(what: string, value: string): void {
    this.rows.push({ what, value, target: '', verdict: '' });
  }

  section(title: string): void {
    this.rows.push({ what: title, value: '', target: '', verdict: '', section: true });
  }

  failed(): boolean {
    return this.rows.some((r) => r.verdict === 'FAIL');
  }

  render(): string {
    const head: Row = { what: 'figure', value: 'measured', target: 'target', verdict: '' };
    const all = [head, ...this.rows.filter((r) => !r.section)];
    const w = {
      what: width(all, 'what'),
      value: width(all, 'value'),
      target: width(all, 'target'),
    };
    const line = (r: Row) =>
      r.section
        ? `\n${r.what}`
        : `${r.what.padEnd(w.what)}  ${r.value.padEnd(w.value)}  ${r.target.padEnd(w.target)}  ${r.verdict}`.trimEnd();
    return [line(head), '-'.repeat(w.what + w.value + w.target + 12), ...this.rows.map(line)].join(
      '\n',
    );
  }
}

function fmt(n: number, digits: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Number.isInteger(n) ? String(n) : n.toFixed(digits);
}

function width(rows: Row[], key: 'what' | 'value' | 'target'): number {
  return Math.max(...rows.map((r) => [...r[key]].length));
}

/** What a bench prints: its title and time, the machine, the table, how long it took. */
export function benchText(
  title: string,
  head: string[],
  report: Report,
  startedMs: number,
): string {
  return [
    `${title} — ${new Date().toISOString()}`,
    ...head,
    '',
    report.render(),
    '',
    `bench took ${((Date.now() - startedMs) / 1000).toFixed(0)} s`,
  ].join('\n');
}
