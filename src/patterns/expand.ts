/**
 * A pattern's sites as ordinary branches of the effective config: the
 * template with `{branch}` filled in with the site name (never the raw
 * branch name, which may hold `/`, `..` or shell characters), the matched
 * source at the site's branch, and the site's port.
 */
import type { BranchConfig, Config, PatternConfig } from '../config/types.js';
import type { SitesFile } from './sites-file.js';

function fill<T>(value: T, name: string): T {
  if (typeof value === 'string') return value.replaceAll('{branch}', name) as T;
  if (Array.isArray(value)) return value.map((v) => fill(v, name) as unknown) as T;
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v, name)])) as T;
  return value;
}

export function siteBranch(
  pattern: PatternConfig,
  name: string,
  site: { ref: string; port?: number; host?: string },
): BranchConfig {
  const { template } = pattern;
  // Steps, health and notifiers are filled in too, so `{branch}` works wherever a value varies.
  const filled = fill({ ...template, name: '', pattern: undefined }, name);
  return {
    ...filled,
    name,
    pattern: { name: pattern.name, ref: site.ref },
    ...(site.port === undefined ? {} : { port: site.port }),
    ...(site.host === undefined ? {} : { host: site.host }),
    sources: filled.sources.map((s) => {
      if (s.match === undefined) return s;
      const rest = { ...s, ref: site.ref };
      delete rest.match;
      return rest;
    }),
    line: pattern.line,
  };
}

/** The config with every pattern's live sites added to its branches. */
export function withSites(config: Config, sites: SitesFile): Config {
  const fixed = new Set(config.branches.map((b) => b.name));
  const added: BranchConfig[] = [];
  for (const pattern of config.patterns) {
    const own = sites.patterns[pattern.name] ?? {};
    for (const [name, site] of Object.entries(own)) {
      // A hand-written branch of that name wins; the keeper never hands it out.
      if (fixed.has(name)) continue;
      fixed.add(name);
      added.push(siteBranch(pattern, name, site));
    }
  }
  return added.length === 0 ? config : { ...config, branches: [...config.branches, ...added] };
}

/** The discovery entry of a pattern for the poller: its matched source with the glob. */
export function discoveryBranch(pattern: PatternConfig): BranchConfig {
  const { template } = pattern;
  return {
    ...template,
    name: discoveryName(pattern.name),
    sources: template.sources.filter((s) => s.match !== undefined),
  };
}

/** Not a valid branch name (`:`), so it never meets a real branch in the poller. */
export const DISCOVERY_PREFIX = 'pattern:';
export const discoveryName = (pattern: string) => `${DISCOVERY_PREFIX}${pattern}`;
