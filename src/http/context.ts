import type { Logger } from '../log.js';
import type { DaemonApi } from '../api.js';

/** What every route module gets from the server. */
export interface HttpContext {
  api: DaemonApi;
  log: Logger;
  redact: (text: string) => string;
}

/** Deep copy of a JSON value with every string passed through `redact`. */
export function redactJson<T>(value: T, redact: (text: string) => string): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactJson(v, redact)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactJson(v, redact);
    return out as T;
  }
  return value;
}
