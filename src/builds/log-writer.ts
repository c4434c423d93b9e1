import { createWriteStream, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { redactor } from '../util/redact.js';

/**
 * A build log: lines are redacted before they reach the file (a secret split
 * across two chunks is still caught, since redaction works on whole lines) and
 * mirrored to `echo` (the terminal of a foreground `update`).
 */
export class LogWriter {
  private readonly stream: WriteStream;
  private partial = '';
  private readonly done: Promise<void>;

  constructor(
    readonly file: string,
    private readonly echo?: (text: string) => void,
  ) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.stream = createWriteStream(file, { flags: 'a', mode: 0o640 });
    this.done = new Promise((resolve) => this.stream.on('close', () => resolve()));
    this.stream.on('error', () => {
      /* a full disk must not kill the build loop; the result still gets recorded */
    });
  }

  /** Raw output of a child: redacted and written line by line. */
  output(chunk: string): void {
    const text = this.partial + chunk;
    const cut = text.lastIndexOf('\n');
    if (cut < 0) {
      // Bound a runaway line without a newline.
      if (text.length > 64 * 1024) {
        this.emit(text + '\n');
        this.partial = '';
      } else this.partial = text;
      return;
    }
    this.partial = text.slice(cut + 1);
    this.emit(text.slice(0, cut + 1));
  }

  /** A line of stagepost's own (step headers, results). */
  line(text: string): void {
    this.flushPartial();
    this.emit(`${text}\n`);
  }

  private flushPartial(): void {
    if (this.partial) {
      this.emit(this.partial + '\n');
      this.partial = '';
    }
  }

  private emit(text: string): void {
    const clean = redactor.redact(text);
    this.stream.write(clean);
    this.echo?.(clean);
  }

  async close(): Promise<void> {
    this.flushPartial();
    this.stream.end();
    await this.done;
  }
}

/** The last `count` lines of a log file (for failure mail). */
export function tailLines(file: string, count: number): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.slice(-count).map((l) => (l.length > 2000 ? `${l.slice(0, 2000)}…` : l));
}
