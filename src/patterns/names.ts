/**
 * Site names from remote branch names. A name becomes a URL segment, a
 * directory name (through `{branch}`), an environment-variable suffix and a
 * metrics label, so it is reduced to `[a-z0-9-]`; whatever a branch is called
 * (`feat$(touch x)`, `../x`, unicode, 300 characters), its name is safe.
 */
import { createHash } from 'node:crypto';

/** Short enough for a DNS label, so a name also fits a host name. */
export const MAX_SITE_NAME = 63;
const HASH_LENGTH = 6;

/** `feature/Foo_Bar` → `feature-foo-bar`; nothing usable left → `branch`. */
export function siteSlug(ref: string): string {
  const slug = ref
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_SITE_NAME)
    .replace(/-+$/, '');
  return slug || 'branch';
}

/**
 * A name for `ref` not in `taken`. Two branches that reduce to one slug are
 * told apart by a short hash of the full branch name, never merged.
 */
export function uniqueSiteName(ref: string, taken: ReadonlySet<string>): string {
  const slug = siteSlug(ref);
  if (!taken.has(slug)) return slug;
  const hash = createHash('sha256').update(ref).digest('hex');
  for (let i = 0; i + HASH_LENGTH <= hash.length; i++) {
    const suffix = hash.slice(i, i + HASH_LENGTH);
    const head = slug.slice(0, MAX_SITE_NAME - HASH_LENGTH - 1).replace(/-+$/, '');
    const name = `${head}-${suffix}`;
    if (!taken.has(name)) return name;
  }
  throw new Error(`no free site name for branch ${JSON.stringify(ref)}`);
}
