import type { SourceConfig } from '../config/types.js';
import type { SourceSpec } from '../plugin-api.js';
import { stripUrlPassword } from '../util/redact.js';

/**
 * Poll state is keyed by (vcs, repository URL, ref), never by branch, so a
 * config reload or a second branch on the same ref never resets what was seen.
 */
export function trackKey(source: Pick<SourceConfig, 'vcs' | 'url' | 'ref'>): string {
  return `${source.vcs}|${stripUrlPassword(source.url)}|${source.ref ?? ''}`;
}

export function sourceSpec(source: SourceConfig): SourceSpec {
  return { name: source.name, url: source.url, ref: source.ref, options: source.options };
}
