/**
 * A repository on this machine is asked with `git upload-pack`, the program
 * `git ls-remote` itself starts for it: one git process instead of two, about
 * a third of the CPU (docs/performance.md). Protocol v2's ls-refs with
 * ref-prefix keeps the answer as small as ls-remote's with patterns.
 * Anything this code does not understand is answered by `git ls-remote`.
 */

/** The directory `git ls-remote <url>` would hand to upload-pack, or null when only git itself should read the URL. */
export function localRepositoryPath(url: string): string | null {
  let dir: string;
  if (url.startsWith('file:///')) dir = url.slice('file://'.length);
  else if (url.startsWith('/')) dir = url;
  else return null;
  // git percent-decodes file URLs; leave those (rare) to it.
  return dir.includes('%') ? null : dir;
}

function pkt(payload: string): string {
  return (Buffer.byteLength(payload) + 4).toString(16).padStart(4, '0') + payload;
}

const DELIM = '0001';
const FLUSH = '0000';

/**
 * The ls-refs request for upload-pack's stdin. ls-remote patterns (full ref
 * names here, some with `^{}`) become prefixes; `peel` lists the commit of an
 * annotated tag on the tag's own line. No prefixes: every ref.
 */
export function lsRefsRequest(patterns: readonly string[]): string {
  let request = pkt('command=ls-refs\n') + DELIM + pkt('peel\n');
  for (const pattern of patterns) {
    if (!pattern.endsWith('^{}')) request += pkt(`ref-prefix ${pattern}\n`);
  }
  return request + FLUSH;
}

const OID = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;
// eslint-disable-next-line no-control-regex -- git refuses control characters in ref names; finding them is the check
const CONTROL = /[\x00-\x1f\x7f]/; // never in a ref name; a v0 advertisement has a NUL after its first

/**
 * upload-pack's ls-refs answer (`<len><oid> <name>[ peeled:<oid>]\n`…, flush)
 * as the table parseLsRemote gives: name → id, and `<name>^{}` → the peeled
 * commit. null when the output is not exactly that (an old git that ignored
 * the version 2 request, an ERR packet, a cut-off answer).
 */
export function parseLsRefs(stdout: string): Map<string, string> | null {
  if (!stdout.endsWith(FLUSH)) return null;
  const table = new Map<string, string>();
  const body = stdout.slice(0, -FLUSH.length);
  if (body === '') return table;
  if (!body.endsWith('\n')) return null;
  for (const line of body.slice(0, -1).split('\n')) {
    // The length prefix counts itself and the newline, in bytes (as many as
    // characters, unless the name is not ASCII).
    const length = Number.parseInt(line.slice(0, 4), 16);
    if (length !== line.length + 1 && length !== Buffer.byteLength(line) + 1) return null;
    const words = line.slice(4).split(' ');
    const [id, name] = words;
    if (
      id === undefined ||
      name === undefined ||
      name === '' ||
      !OID.test(id) ||
      CONTROL.test(name)
    )
      return null;
    table.set(name, id);
    for (let i = 2; i < words.length; i++) {
      const word = words[i];
      if (!word.startsWith('peeled:')) continue;
      const peeled = word.slice('peeled:'.length);
      if (!OID.test(peeled)) return null;
      table.set(`${name}^{}`, peeled);
    }
  }
  return table;
}
