/**
 * Mail addresses from two kinds of source: the operator's `to`/`from` (may
 * carry a display name) and commit metadata (anyone who can push writes it, so
 * only a plain, well-formed address is accepted — never a name, a newline or
 * markup that could turn into a header or a second recipient).
 */
export interface Mailbox {
  name?: string;
  address: string;
}

const ADDRESS =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
const NAMED = /^\s*"?([^"<>\r\n]*?)"?\s*<([^<>\s]+)>\s*$/;
/** More committers than this in one build is a merge of history, not an audience. */
export const MAX_COMMITTERS = 20;

export function isAddress(text: string): boolean {
  return text.length <= 254 && ADDRESS.test(text);
}

/** `ops@example.com` or `Ops Team <ops@example.com>`; null when it is neither. */
export function parseMailbox(text: unknown): Mailbox | null {
  if (typeof text !== 'string' || /[\r\n]/.test(text) || text.length > 320) return null;
  const trimmed = text.trim();
  if (isAddress(trimmed)) return { address: trimmed };
  const m = NAMED.exec(trimmed);
  if (!m || !isAddress(m[2])) return null;
  return m[1] ? { name: m[1], address: m[2] } : { address: m[2] };
}

export function listOption(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

/** `to` first, then committer addresses; each address once, compared case-insensitively. */
export function recipients(to: Mailbox[], committerEmails: Array<string | undefined>): Mailbox[] {
  const seen = new Set<string>();
  const out: Mailbox[] = [];
  const add = (m: Mailbox) => {
    const key = m.address.toLowerCase();
    if (seen.has(key)) return;
    seen.add(key);
    out.push(m);
  };
  to.forEach(add);
  let committers = 0;
  for (const email of committerEmails) {
    const address = email?.trim();
    if (!address || !isAddress(address) || committers >= MAX_COMMITTERS) continue;
    const before = out.length;
    add({ address });
    if (out.length > before) committers += 1;
  }
  return out;
}
