import { escapeControls } from '../util/terminal.js';

/** Plain-text tables and JSON for the terminal; stdout carries only the command's answer. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** As written to `stream`: escaped where a terminal would read it, unchanged into a pipe or file. */
export function forTerminal(text: string, stream: NodeJS.WriteStream, keepCr = false): string {
  return stream.isTTY ? escapeControls(text, keepCr) : text;
}

export function say(text: string): void {
  process.stdout.write(forTerminal(text.endsWith('\n') ? text : text + '\n', process.stdout));
}

/** Progress and notes go to stderr so `--json` output stays clean. */
export function note(text: string): void {
  process.stderr.write(forTerminal(text.endsWith('\n') ? text : text + '\n', process.stderr));
}

/** Streamed text (a log, a mail, a build's output) to stdout, escaped for a terminal. */
export function writeOut(text: string): boolean {
  return process.stdout.write(forTerminal(text, process.stdout, true));
}
