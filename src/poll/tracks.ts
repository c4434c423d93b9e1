import type { SourceConfig } from '../config/types.js';
import type { SourceSpec } from '../plugin-api.js';
import { stripUrlPassword } from '../util/redact.js';

/**
 * Poll state is keyed by (vcs, repository URL, ref), never by branch, so a
 * config reload or a second branch on the same ref never resets what was seen.
 */
export function trackKey(source: Pick<SourceConfig, 'vcs' | 'url' | 'ref' | 'match'>): string {
  // A pattern's glob cannot be a ref name (`*` is not allowed in one), so the keys never meet.
  const ref = source.match === undefined ? (source.ref ?? '') : `match:${source.match}`;
  return `${source.vcs}|${stripUrlPassword(source.url)}|${ref}`;
}

export function sourceSpec(source: SourceConfig): SourceSpec {
  return {
    name: source.name,
    url: source.url,
    ref: source.ref,
    options: source.options,
    ...(source.match === undefined ? {} : { match: source.match }),
  };
}
