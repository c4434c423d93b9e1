/**
 * What one answer of a pattern's remote does to its sites: a new matching
 * branch gets a site (a safe unique name, a free port of the range) or, with
 * all `slots` taken by newer branches, waits; a site is retired when its
 * branch was missing from `retireAfter` successful answers in a row, went
 * `idle`, or was bumped by a newer branch. Pinned sites are never retired or
 * bumped, and count against the slots. A failed answer never gets here, nor
 * one without any ref (the plugin calls it missing). When one answer would
 * retire more than half of the sites, or it has no matching branch at all,
 * none is retired until an operator confirms: an outage that answers "no
 * branches" must not take every site with it.
 */
import type { PatternConfig } from '../config/types.js';
import { uniqueSiteName } from './names.js';
import type { SiteEntry, SitesFile, WaitingEntry } from './sites-file.js';

export type RetireReason = 'gone' | 'idle' | 'bumped';

export interface Retirement {
  name: string;
  site: SiteEntry;
  reason: RetireReason;
}

export interface AnswerOutcome {
  sites: SitesFile;
  added: string[];
  /** Sites to retire now: the caller tears them down. */
  retired: Retirement[];
  /** Set when the half-at-once guard held retirements back (the first time for this set). */
  held: Retirement[] | null;
  /** Whether sites.json must be written. */
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
  /** Site names pinned by `stagepost pin`. */
  pinned: ReadonlySet<string>;
  /** An operator ran `stagepost retire --confirm` at this time (held retirements proceed). */
  confirmedAt?: string;
  now: Date;
}

interface Candidate {
  ref: string;
  activeAt: string;
  /** The site it has, or none (waiting or new). */
  name?: string;
}

const newestFirst = (a: Candidate, b: Candidate) =>
  a.activeAt === b.activeAt ? (a.ref < b.ref ? -1 : 1) : a.activeAt < b.activeAt ? 1 : -1;

export function answer(sites: SitesFile, input: AnswerInput): AnswerOutcome {
  const { pattern, refs, pinned } = input;
  const now = input.now.toISOString();
  const present = Object.keys(refs).sort();
  const before = sites.patterns[pattern.name] ?? {};

  let changed = !(pattern.name in sites.patterns);
  const own: Record<string, SiteEntry> = {};
  const retiring: Retirement[] = [];
  for (const [name, site] of Object.entries(before)) {
    const revision = refs[site.ref];
    let next: SiteEntry;
    if (revision === undefined) next = { ...site, missing: site.missing + 1 };
    else if (revision !== site.revision)
      next = { ...site, missing: 0, revision, activeAt: site.revision ? now : site.activeAt };
    else next = { ...site, missing: 0 };
    if (JSON.stringify(next) !== JSON.stringify(site)) changed = true;
    own[name] = next;
    if (pinned.has(name)) continue;
    if (next.missing >= pattern.match.retireAfter)
      retiring.push({ name, site: next, reason: 'gone' });
    else if (pattern.idleMs !== undefined && idleFor(next, input.now) > pattern.idleMs)
      retiring.push({ name, site: next, reason: 'idle' });
  }

  // Who holds a slot: pinned sites first, then the newest activity.
  const waitingBefore = sites.waiting?.[pattern.name] ?? {};
  const known = new Map(Object.entries(own).map(([name, s]) => [s.ref, name]));
  const leaving = new Set(retiring.map((r) => r.name));
  const candidates: Candidate[] = [];
  for (const [name, s] of Object.entries(own))
    if (!leaving.has(name) && !pinned.has(name) && refs[s.ref] !== undefined)
      candidates.push({ ref: s.ref, activeAt: s.activeAt, name });
  for (const ref of present) {
    if (known.has(ref)) continue;
    const w = waitingBefore[ref];
    candidates.push({ ref, activeAt: w && w.revision === refs[ref] ? w.activeAt : now });
  }
  candidates.sort(newestFirst);
  const pinnedCount = Object.keys(own).filter((n) => pinned.has(n)).length;
  const room =
    pattern.slots === undefined ? candidates.length : Math.max(0, pattern.slots - pinnedCount);
  const winners = candidates.slice(0, room);
  const losers = candidates.slice(room);
  for (const c of losers)
    if (c.name !== undefined) retiring.push({ name: c.name, site: own[c.name], reason: 'bumped' });

  // The guard: an answer that would retire most of the sites is more likely a broken remote.
  const unbumped = retiring.filter((r) => r.reason !== 'bumped');
  const total = Object.keys(own).length;
  const heldBefore = sites.held?.[pattern.name];
  let held: Retirement[] | null = null;
  let retired = retiring;
  const confirmed =
    heldBefore !== undefined &&
    input.confirmedAt !== undefined &&
    input.confirmedAt >= heldBefore.since;
  // No matching branch at all looks like an outage too, even for a last site.
  const suspicious =
    (unbumped.length > 1 && unbumped.length * 2 > total) ||
    (present.length === 0 && unbumped.length > 0);
  const holding = suspicious && !confirmed;
  let heldNext = sites.held;
  if (holding) {
    retired = [];
    const namesNow = unbumped.map((r) => r.name).sort();
    if (JSON.stringify(heldBefore?.sites) !== JSON.stringify(namesNow)) {
      held = unbumped;
      heldNext = { ...sites.held, [pattern.name]: { sites: namesNow, since: now } };
      changed = true;
    }
  } else if (heldBefore) {
    heldNext = { ...sites.held };
    delete heldNext[pattern.name];
    changed = true;
  }
  let retiredNext = sites.retired;
  for (const r of retired) {
    delete own[r.name];
    retiredNext = {
      ...retiredNext,
      [r.name]: {
        pattern: pattern.name,
        ref: r.site.ref,
        retiredAt: now,
        reason: r.reason,
        ...(r.site.host ? { host: r.site.host } : {}),
      },
    };
  }
  if (retired.length > 0) changed = true;

  const taken = new Set(input.fixedNames);
  const ports = new Set(input.fixedPorts);
  for (const [p, list] of Object.entries(sites.patterns)) {
    for (const [name, site] of Object.entries(p === pattern.name ? own : list)) {
      taken.add(name);
      if (site.port !== undefined) ports.add(site.port);
    }
  }
  // A bumped site that is held back still holds its slot: no newcomer until it is gone.
  const free = holding ? Math.max(0, room - candidates.filter((c) => c.name).length) : Infinity;
  const added: string[] = [];
  const waiting: Record<string, WaitingEntry> = {};
  for (const c of [...winners, ...losers]) {
    if (c.name !== undefined) {
      // A bumped branch waits for a slot again, as it was.
      if (retired.some((r) => r.name === c.name))
        waiting[c.ref] = { revision: refs[c.ref], activeAt: c.activeAt };
      continue;
    }
    const port = freePort(pattern, ports);
    const fits =
      winners.includes(c) && added.length < free && !(pattern.ports && port === undefined);
    if (!fits) {
      waiting[c.ref] = { revision: refs[c.ref], activeAt: c.activeAt };
      continue;
    }
    // A retired site's name (and its history) goes only to the same branch again.
    const formerly = Object.entries(retiredNext ?? {}).filter(([, r]) => r.ref !== c.ref);
    const name = uniqueSiteName(c.ref, new Set([...taken, ...formerly.map(([n]) => n)]));
    taken.add(name);
    if (port !== undefined) ports.add(port);
    const host = placeOn(pattern.hosts, own);
    own[name] = {
      ref: c.ref,
      ...(port === undefined ? {} : { port }),
      ...(host === undefined ? {} : { host }),
      missing: 0,
      revision: refs[c.ref],
      activeAt: c.activeAt,
      createdAt: now,
    };
    added.push(name);
    changed = true;
  }
  if (JSON.stringify(waiting) !== JSON.stringify(waitingBefore)) changed = true;
  return {
    sites: {
      ...sites,
      patterns: { ...sites.patterns, [pattern.name]: own },
      waiting: { ...sites.waiting, [pattern.name]: waiting },
      ...(heldNext ? { held: heldNext } : {}),
      ...(retiredNext ? { retired: retiredNext } : {}),
    },
    added,
    retired,
    held,
    changed,
  };
}

/**
 * A pattern on several hosts of a cluster: a new site goes to the one holding
 * fewest of its sites (the first listed on a tie), and stays there.
 */
function placeOn(
  hosts: string[] | undefined,
  sites: Record<string, SiteEntry>,
): string | undefined {
  if (!hosts || hosts.length < 2) return undefined;
  const held = (host: string) =>
    Object.values(sites).filter((s) => (s.host ?? hosts[0]) === host).length;
  return hosts.reduce((best, host) => (held(host) < held(best) ? host : best));
}

function idleFor(site: SiteEntry, now: Date): number {
  return now.getTime() - Date.parse(site.activeAt);
}

/** The lowest port of the range no site or branch has: a retired site's port is used again. */
function freePort(pattern: PatternConfig, used: ReadonlySet<number>): number | undefined {
  if (!pattern.ports) return undefined;
  for (let p = pattern.ports.first; p <= pattern.ports.last; p++) if (!used.has(p)) return p;
  return undefined;
}
