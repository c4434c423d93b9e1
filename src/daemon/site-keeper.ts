/**
 * Keeps the patterns' sites in step with their remotes. It only listens to
 * the answers the poller gets anyway (a pattern's discovery source shares the
 * one query per repository and cycle), writes state_dir/sites.json, and has
 * the daemon reload: the sites then are branches of the effective config.
 */
import type { BranchConfig, Config, PatternConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { TrackState } from '../state/store.js';
import { trackKey } from '../poll/tracks.js';
import {
  DISCOVERY_PREFIX,
  discoveryBranch,
  discoveryName,
  siteBranch,
} from '../patterns/expand.js';
import { answer, type RetireReason, type Retirement } from '../patterns/keeper.js';
import {
  readPins,
  readRetireConfirm,
  readSites,
  writeSites,
  type SitesFile,
} from '../patterns/sites-file.js';

export interface SiteKeeperOptions {
  log: Logger;
  config(): Config;
  tracks(): Record<string, TrackState>;
  /** Sites came or went: load the effective config again. */
  reload(): Promise<void>;
  /** A site left the config (its branch gone, idle, or bumped): teardown, dir, mail hang off this. */
  retire(site: BranchConfig, reason: RetireReason): Promise<void>;
  /** After the reload that made sites come or go (the on_sites_changed hook). */
  sitesChanged(change: { added: string[]; retired: string[] }): Promise<void>;
  /** The half-at-once guard held these retirements back; operators are to be told. */
  held(pattern: PatternConfig, sites: Retirement[]): void;
  /** sites.json was written (a cluster shares a pattern's sites with the hosts they are placed on). */
  written?(sites: SitesFile): void;
  now?: () => Date;
}

export class SiteKeeper {
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly options: SiteKeeperOptions) {}

  /** What the poller asks: the branches, and one discovery entry per pattern. */
  pollerBranches(config: Config): BranchConfig[] {
    return config.patterns.length === 0
      ? config.branches
      : [...config.branches, ...config.patterns.map(discoveryBranch)];
  }

  /** The names without the patterns' discovery entries. */
  branchesOnly(names: string[]): string[] {
    return this.options.config().patterns.length === 0
      ? names
      : names.filter((n) => !n.startsWith(DISCOVERY_PREFIX));
  }

  /** An answer of a repository came for these branches; null error means it succeeded. */
  polled(branches: string[], error: string | null): void {
    if (error !== null) return; // a failed or timed-out answer never counts against a site
    const config = this.options.config();
    const names = new Set(branches);
    const patterns = config.patterns.filter((p) => names.has(discoveryName(p.name)));
    if (patterns.length === 0) return;
    this.chain = this.chain
      .then(() => this.update(patterns.map((p) => p.name)))
      .catch((err: unknown) =>
        this.options.log.error({ error: err }, 'cannot update the sites of the patterns'),
      );
  }

  /** Wait for the updates under way (tests, shutdown). */
  idle(): Promise<void> {
    return this.chain;
  }

  private async update(patternNames: string[]): Promise<void> {
    const config = this.options.config();
    const tracks = this.options.tracks();
    let sites = readSites(config.stateDir);
    const fixed = config.branches.filter((b) => !b.pattern);
    const fixedNames = new Set(fixed.map((b) => b.name));
    const fixedPorts = new Set(fixed.flatMap((b) => (b.port === undefined ? [] : [b.port])));
    const pinned = readPins(config.stateDir);
    const confirmedAt = readRetireConfirm(config.stateDir);
    let write = false;
    const added: BranchConfig[] = [];
    const gone: Array<{ site: BranchConfig; reason: RetireReason }> = [];
    for (const name of patternNames) {
      const pattern = config.patterns.find((p) => p.name === name);
      const source = pattern?.template.sources.find((s) => s.match !== undefined);
      if (!pattern || !source) continue;
      const track = tracks[trackKey(source)];
      if (!track?.refs || track.missing) continue;
      const outcome = answer(sites, {
        pattern,
        refs: track.refs,
        fixedNames,
        fixedPorts,
        pinned,
        ...(confirmedAt ? { confirmedAt } : {}),
        now: this.options.now?.() ?? new Date(),
      });
      sites = outcome.sites;
      write ||= outcome.changed;
      for (const r of outcome.retired)
        gone.push({ site: siteBranch(pattern, r.name, r.site), reason: r.reason });
      if (outcome.held) this.options.held(pattern, outcome.held);
      for (const site of outcome.added) {
        const branch = siteBranch(pattern, site, sites.patterns[name][site]);
        added.push(branch);
        // The answer already holds the branch's commit: the new site builds without a second query.
        const key = trackKey(branch.sources.find((s) => s.name === source.name)!);
        const revision = track.refs[branch.pattern!.ref];
        if (!tracks[key]?.revision && revision)
          tracks[key] = { revision, changedAt: new Date().toISOString() };
      }
    }
    if (!write) return;
    await writeSites(config.stateDir, sites);
    this.options.written?.(sites);
    if (added.length === 0 && gone.length === 0) return;
    this.options.log.info(
      { added: added.map((b) => b.name), retired: gone.map((g) => g.site.name) },
      'pattern sites changed',
    );
    await this.options.reload();
    for (const { site, reason } of gone) await this.options.retire(site, reason);
    await this.options.sitesChanged({
      added: added.map((b) => b.name),
      retired: gone.map((g) => g.site.name),
    });
  }
}
