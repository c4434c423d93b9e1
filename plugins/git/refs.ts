/**
 * Exact ref matching over `git ls-remote` output. ls-remote patterns match the
 * tail of a ref name (`main` also matches `refs/heads/x/main`), so patterns
 * only narrow what the server sends; the answer is picked here by full name.
 */

/** Full ref names a configured ref may mean, in order of preference. */
export function refCandidates(ref: string): string[] {
  if (ref === 'HEAD' || ref.startsWith('refs/')) return [ref];
  return [`refs/heads/${ref}`, `refs/tags/${ref}`];
}

/** Why a ref name is unusable, or null. Guards argv against option injection. */
export function invalidRef(ref: string | undefined): string | null {
  if (!ref) return 'no ref configured (set `ref:` to a branch, tag or full ref name)';
  if (ref.startsWith('-')) return `ref "${ref}" starts with "-"`;
  // eslint-disable-next-line no-control-regex -- git check-ref-format forbids control characters; the pattern mirrors it
  if (/[\s\x00-\x1f\x7f~^:?*[\\]|\.\.|@\{|\/\/|\/$|\.lock$|^\//.test(ref))
    return `"${ref}" is not a valid git ref name`;
  return null;
}

/** Above this many patterns, asking for every ref is shorter than listing them. */
const MAX_PATTERNS = 60;

/** Patterns for one ls-remote call covering all refs, or [] for "all refs". */
export function lsRemotePatterns(refs: string[]): string[] {
  const patterns = new Set<string>();
  for (const ref of refs) {
    for (const full of refCandidates(ref)) {
      patterns.add(full);
      // The peeled line of an annotated tag is only listed when asked for.
      if (full.startsWith('refs/tags/')) patterns.add(`${full}^{}`);
    }
  }
  return patterns.size > MAX_PATTERNS ? [] : [...patterns];
}

/** `<id>\t<name>` lines → name → id (peeled `^{}` lines kept under their own name). */
export function parseLsRemote(stdout: string): Map<string, string> {
  const table = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab <= 0) continue;
    const id = line.slice(0, tab).trim();
    if (/^[0-9a-f]{40,64}$/.test(id)) table.set(line.slice(tab + 1).trim(), id);
  }
  return table;
}

/**
 * The names to look up in a parseLsRemote table for a configured ref, first
 * found wins: an annotated tag's peeled commit before the tag object, a branch
 * before a tag. Worked out once per source, not on every answer.
 */
export function refLookups(ref: string): string[] {
  return refCandidates(ref).flatMap((full) => [`${full}^{}`, full]);
}

/** The commit a ref names: an annotated tag resolves to its peeled commit. */
export function resolveRef(lookups: readonly string[], table: Map<string, string>): string | null {
  for (const name of lookups) {
    const id = table.get(name);
    if (id) return id;
  }
  return null;
}
