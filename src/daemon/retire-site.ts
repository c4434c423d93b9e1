/**
 * The end of a pattern's site, after it left the effective config (and after
 * its teardown steps, which run for any branch that leaves): who last
 * committed to its branch is read from its checkout, the directory is removed
 * (unless `keep_dir: true`), and operators and those committers are told,
 * with the site's URLs. Its build history stays in state_dir, readable.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { BranchConfig, Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { CommitReport, SiteNotification } from '../plugin-api.js';
import type { TrackState } from '../state/store.js';
import type { VcsRegistry } from '../vcs.js';
import type { RetireReason } from '../patterns/keeper.js';
import { sourceSpec, trackKey } from '../poll/tracks.js';
import { customerUrl } from '../site/urls.js';

const WHY: Record<RetireReason, string> = {
  gone: 'its branch is gone from the remote',
  idle: 'its branch had no new commit for longer than `idle`',
  bumped: 'branches with newer commits took all the slots',
};

export interface RetireContext {
  config: Config;
  vcs: VcsRegistry;
  log: Logger;
  tracks: Record<string, TrackState>;
  notify(n: Omit<SiteNotification, 'events'>): Promise<void>;
}

export async function retireSite(
  ctx: RetireContext,
  site: BranchConfig,
  reason: RetireReason,
): Promise<void> {
  const { config, log } = ctx;
  const pattern = config.patterns.find((p) => p.name === site.pattern?.name);
  const commits = await lastCommits(ctx, site);
  const keep = pattern?.keepDir ?? false;
  // The dir comes from the pattern's template with the safe site name in it (rules
  // require {branch} there), so it is the site's own directory.
  if (!keep && site.dir.includes(site.name) && path.resolve(site.dir) !== path.resolve(config.dir))
    await rm(site.dir, { recursive: true, force: true });
  const urls = site.customers.flatMap((c) => customerUrl(config, site, c) ?? []);
  log.info(
    {
      branch: site.name,
      pattern: site.pattern?.name,
      ref: site.pattern?.ref,
      reason,
      dir: site.dir,
      keptDir: keep,
    },
    'site retired',
  );
  await ctx.notify({
    type: 'site',
    branch: site.name,
    pattern: site.pattern?.name ?? '',
    message: `Site ${site.name} (branch ${site.pattern?.ref ?? '?'} of pattern ${site.pattern?.name ?? '?'}) was retired: ${WHY[reason]}. ${keep ? `Its directory ${site.dir} was kept.` : `Its directory ${site.dir} was removed.`} Its build history stays readable (stagepost history ${site.name}).`,
    urls,
    commits,
  });
}

/** The authors of the last few commits of the site's branch, from its own checkout. */
async function lastCommits(ctx: RetireContext, site: BranchConfig): Promise<CommitReport[]> {
  const source = site.sources.find((s) => s.ref === site.pattern?.ref) ?? site.sources[0];
  const revision = source && ctx.tracks[trackKey(source)]?.revision;
  if (!source || !revision) return [];
  try {
    const plugin = await ctx.vcs.get(source.vcs);
    const commits = await plugin.commitsBetween(sourceSpec(source), null, revision, {
      dir: path.join(site.dir, source.path),
      timeoutMs: 30_000,
      limit: 5,
    });
    return commits.map((c) => ({ ...c, source: source.name }));
  } catch (err) {
    ctx.log.warn(
      { branch: site.name, error: err },
      'cannot list the last commits of a retired site',
    );
    return [];
  }
}
