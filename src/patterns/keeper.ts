/**
 * What one answer of a pattern's remote does to its sites: a new matching
 * branch gets a site (a safe unique name, a free port of the range); a site
 * whose branch was missing from `retireAfter` successful answers in a row is
 * retired. An empty answer changes nothing: an outage that answers "no
 * branches" must not take every site with it.
 */
import type { PatternConfig } from '../config/types.js';
import { uniqueSiteName } from './names.js';
import type { SiteEntry, SitesFile } from './sites-file.js';

export interface AnswerOutcome {
  sites: SitesFile;
  added: string[];
  /** Sites whose branch is gone for good: the caller retires them. */
  gone: string[];
  /** Whether sites.json must be written (a count moved, a site came or went). */
  changed: boolean;
}

export interface AnswerInput {
  pattern: PatternConfig;
  /** Matching remote branch names → commit, from the poller's one query. */
  refs: Record<string, string>;
  /** Names a new site must not take: the fixed branches of ci.yaml. */
  fixedNames: ReadonlySet<string>;
  /** Ports a new site must not take: the fixed branches' ports. */
  fixedPorts: ReadonlySet<number>;
  now: Date;
}

export function answer(sites: SitesFile, input: AnswerInput): AnswerOutcome {
  const { pattern, refs } = input;
  const before = sites.patterns[pattern.name] ?? {};
  const own: Record<string, SiteEntry> = {};
  let changed = !(pattern.name in sites.patterns);
  const gone: string[] = [];
  const present = new Set(Object.keys(refs));
  const empty = present.size === 0;
  for (const [name, site] of Object.entries(before)) {
    if (present.has(site.ref) || empty) {
      if (site.missing !== 0 && !empty) changed = true;
      own[name] = empty ? site : { ...site, missing: 0 };
      continue;
    }
    const missing = site.missing + 1;
    changed = true;
    if (missing >= pattern.match.retireAfter) gone.push(name);
    own[name] = { ...site, missing };
  }
  for (const name of gone) delete own[name];

  const taken = new Set(input.fixedNames);
  const ports = new Set(input.fixedPorts);
  for (const [p, list] of Object.entries(sites.patterns)) {
    for (const [name, site] of Object.entries(p === pattern.name ? own : list)) {
      taken.add(name);
      if (site.port !== undefined) ports.add(site.port);
    }
  }
  const known = new Set(Object.values(own).map((s) => s.ref));
  const added: string[] = [];
  // Sorted, so that two daemons (or a restart) name colliding branches alike.
  for (const ref of [...present].sort()) {
    if (known.has(ref)) continue;
    const name = uniqueSiteName(ref, taken);
    taken.add(name);
    const port = freePort(pattern, ports);
    if (pattern.ports && port === undefined) continue; // range full: waits for a free port
    if (port !== undefined) ports.add(port);
    own[name] = {
      ref,
      ...(port === undefined ? {} : { port }),
      missing: 0,
      createdAt: input.now.toISOString(),
    };
    added.push(name);
    changed = true;
  }
  return {
    sites: { ...sites, patterns: { ...sites.patterns, [pattern.name]: own } },
    added,
    gone,
    changed,
  };
}

/** The lowest port of the range no site or branch has: a retired site's port is used again. */
function freePort(pattern: PatternConfig, used: ReadonlySet<number>): number | undefined {
  if (!pattern.ports) return undefined;
  for (let p = pattern.ports.first; p <= pattern.ports.last; p++) if (!used.has(p)) return p;
  return undefined;
}
