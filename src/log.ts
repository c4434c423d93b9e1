import { redactor } from './util/redact.js';
import { escapeControls } from './util/terminal.js';

/**
 * Structured logs: a fixed message plus metadata (`log.warn({ branch }, 'poll
 * failed')`). One JSON object per line when stderr is not a terminal (journald,
 * files); a readable line on a terminal. Everything passes the redactor.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Meta = Record<string, unknown>;

export interface Logger {
  debug(meta: Meta, msg: string): void;
  info(meta: Meta, msg: string): void;
  warn(meta: Meta, msg: string): void;
  error(meta: Meta, msg: string): void;
  child(meta: Meta): Logger;
}

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  level?: Level;
  format?: 'json' | 'pretty';
  write?: (line: string) => void;
  now?: () => Date;
}

export function createLogger(options: LoggerOptions = {}, bound: Meta = {}): Logger {
  const envLevel = process.env.STAGEPOST_LOG_LEVEL as Level | undefined;
  const level = options.level ?? (envLevel && envLevel in ORDER ? envLevel : 'info');
  const format =
    options.format ??
    (process.env.STAGEPOST_LOG_FORMAT === 'json' || !process.stderr.isTTY ? 'json' : 'pretty');
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const now = options.now ?? (() => new Date());

  const emit = (lvl: Level, meta: Meta, msg: string) => {
    if (ORDER[lvl] < ORDER[level]) return;
    const fields = redactor.redactValue({ ...bound, ...normalize(meta) });
    if (format === 'json') {
      write(JSON.stringify({ time: now().toISOString(), level: lvl, msg, ...fields }));
    } else {
      const time = now().toISOString().slice(11, 19);
      const { branch, build } = fields as { branch?: string | number; build?: string | number };
      const where = branch ? `[${branch}${build ? `#${build}` : ''}] ` : '';
      const rest = Object.entries(fields)
        .filter(([k]) => k !== 'branch' && k !== 'build')
        .map(
          ([k, v]) =>
            `${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`,
        )
        .join(' ');
      // Pretty lines go to a terminal: a remote's error text must not drive it.
      write(
        escapeControls(
          `${time} ${lvl.toUpperCase().padEnd(5)} ${where}${msg}${rest ? '  ' + rest : ''}`,
        ),
      );
    }
  };

  return {
    debug: (meta, msg) => emit('debug', meta, msg),
    info: (meta, msg) => emit('info', meta, msg),
    warn: (meta, msg) => emit('warn', meta, msg),
    error: (meta, msg) => emit('error', meta, msg),
    child: (meta) => createLogger({ level, format, write, now }, { ...bound, ...meta }),
  };
}

function normalize(meta: Meta): Meta {
  const out: Meta = {};
  for (const [k, v] of Object.entries(meta)) {
    if (v instanceof Error) out[k] = { message: v.message, code: (v as { code?: string }).code };
    else if (v !== undefined) out[k] = v;
  }
  return out;
}

/** A logger that keeps its lines, for tests. */
export function memoryLogger(): Logger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'debug',
    format: 'json',
    write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>),
  });
  return Object.assign(logger, { lines });
}
