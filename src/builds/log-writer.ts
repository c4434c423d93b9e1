import {
  closeSync,
  createWriteStream,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  type WriteStream,
} from 'node:fs';
import path from 'node:path';
import { redactor } from '../util/redact.js';
import { formatSize } from '../util/size.js';

/**
 * A build log: lines are redacted before they reach the file (a secret split
 * across two chunks is still caught, since redaction works on whole lines) and
 * mirrored to `echo` (the terminal of a foreground `update`).
 *
 * Bounded by `maxBytes` (builds.log_max): the first half is written as it
 * comes; past it a line says where the log was cut, and only the last half
 * is kept (in memory, at most maxBytes/2) and written at close, where the
 * cause of a failure usually is.
 */
export class LogWriter {
  private readonly stream: WriteStream;
  private partial = '';
  private readonly done: Promise<void>;
  private written = 0;
  private cut = false;
  private tail: string[] = [];
  private tailBytes = 0;
  private dropped = 0;

  constructor(
    readonly file: string,
    private readonly echo?: (text: string) => void,
    private readonly maxBytes = Infinity,
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
    this.echo?.(clean);
    const bytes = Buffer.byteLength(clean);
    if (!this.cut && this.written + bytes <= this.maxBytes / 2) {
      this.written += bytes;
      this.stream.write(clean);
      return;
    }
    if (!this.cut) {
      this.cut = true;
      this.stream.write(
        `[stagepost: this log reached half of builds.log_max (${formatSize(this.maxBytes)}); output is cut here and its last ${formatSize(this.maxBytes / 2)} follow when the build ends]\n`,
      );
    }
    this.keepTail(clean, bytes);
  }

  private keepTail(text: string, bytes: number): void {
    this.tail.push(text);
    this.tailBytes += bytes;
    const budget = this.maxBytes / 2;
    while (this.tailBytes - Buffer.byteLength(this.tail[0]) >= budget) {
      const first = Buffer.byteLength(this.tail.shift()!);
      this.tailBytes -= first;
      this.dropped += first;
    }
  }

  async close(): Promise<void> {
    this.flushPartial();
    if (this.cut) {
      let tail = Buffer.from(this.tail.join(''));
      this.tail = [];
      if (tail.length > this.maxBytes / 2) {
        // Start the kept end on a whole line.
        const from = tail.length - this.maxBytes / 2;
        const nl = tail.indexOf(10, from);
        const start = nl < 0 ? from : nl + 1;
        this.dropped += start;
        tail = tail.subarray(start);
      }
      this.stream.write(`[stagepost: ${formatSize(this.dropped)} left out here]\n`);
      this.stream.write(tail);
    }
    this.stream.end();
    await this.done;
  }
}

const TAIL_BLOCK = 64 * 1024;
const LINE_MAX = 2000;

/**
 * The last `count` lines of a log file (for failure mail), read backwards
 * from the end in blocks: a log of any size costs at most about
 * count × 8 KB of memory, never the whole file.
 */
export function tailLines(file: string, count: number): string[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    // Enough for `count` lines of LINE_MAX characters of up to 4 bytes each.
    const limit = Math.min(size, count * (LINE_MAX * 4 + 1) + 1);
    const blocks: Buffer[] = [];
    let read = 0;
    let newlines = 0;
    while (read < limit && newlines <= count) {
      const len = Math.min(TAIL_BLOCK, limit - read);
      const block = Buffer.alloc(len);
      readSync(fd, block, 0, len, size - read - len);
      read += len;
      blocks.unshift(block);
      for (const byte of block) if (byte === 10) newlines += 1;
    }
    const lines = Buffer.concat(blocks).toString('utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    // The first line is partial unless the read reached the start of the file:
    // dropped when there are enough others, else shown as the end of a longer line.
    if (read < size) {
      if (lines.length > count) lines.shift();
      else lines[0] = `…${lines[0].slice(-LINE_MAX)}`;
    }
    return lines.slice(-count).map((l) => (l.length > LINE_MAX ? `${l.slice(0, LINE_MAX)}…` : l));
  } catch {
    return [];
  } finally {
    closeSync(fd);
  }
}
