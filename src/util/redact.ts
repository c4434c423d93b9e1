/**
 * Secrets masked in everything a user can see (after semantic-release's
 * hide-sensitive). Two sources of secrets: values substituted from `${VAR}`
 * (registered at config load) and passwords embedded in URLs.
 */
const MASK = '[secure]';
// Bounded repeats: unbounded ones made this quadratic, and one 100 kB line
// (a commit message) froze the daemon for minutes.
const URL_PASSWORD = /([a-z][a-z0-9+.-]{0,31}:\/\/[^\s:@/]{1,256}:)([^\s@/]{1,1024})(@)/gi;

export class Redactor {
  private secrets = new Set<string>();
  private pattern: RegExp | null = null;

  add(secret: string | undefined): void {
    // Very short values ("1", "no") would mask ordinary words everywhere.
    if (!secret || secret.length < 4 || this.secrets.has(secret)) return;
    this.secrets.add(secret);
    // The same secret inside a URL appears percent-encoded.
    this.secrets.add(encodeURIComponent(secret));
    const escaped = [...this.secrets]
      .sort((a, b) => b.length - a.length)
      .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.pattern = new RegExp(escaped.join('|'), 'g');
  }

  redact(text: string): string {
    let out = text.replace(URL_PASSWORD, `$1${MASK}$3`);
    if (this.pattern) out = out.replace(this.pattern, MASK);
    return out;
  }

  /** Deep copy of a JSON-like value with every string redacted. */
  redactValue<T>(value: T): T {
    return redactDeep(value, (text) => this.redact(text));
  }
}

/**
 * Deep copy of a value as JSON.stringify sees it (toJSON applied, own
 * enumerable keys), with every string passed through `redact`. Not limited to
 * plain objects: a value built in another realm (jest's vm contexts) has
 * another Object.prototype and must be redacted all the same.
 */
export function redactDeep<T>(value: T, redact: (text: string) => string): T {
  if (typeof value === 'string') return redact(value) as T;
  if (value === null || typeof value !== 'object') return value;
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return redactDeep(toJSON.call(value) as T, redact);
  if (Array.isArray(value)) return value.map((v: unknown) => redactDeep(v, redact)) as T;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v, redact);
  return out as T;
}

/** A URL with any password removed, for display and as a key. */
export function stripUrlPassword(url: string): string {
  return url.replace(URL_PASSWORD, `$1${MASK}$3`);
}

/** The process-wide redactor: config loading registers secrets into it. */
export const redactor = new Redactor();
