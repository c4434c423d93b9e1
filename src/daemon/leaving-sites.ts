import type { BranchConfig, Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { NotifyDispatcher } from '../notify/dispatcher.js';
import type { BuildQueue } from '../queue/build-queue.js';
import type { TrackState } from '../state/store.js';
import type { VcsRegistry } from '../vcs.js';
import type { BuildContext } from '../builds/context.js';
import type { RetireReason, Retirement } from '../patterns/keeper.js';
import { runTeardown } from '../builds/teardown.js';
import { retireSite } from './retire-site.js';

export interface LeavingSitesDeps {
  queue: () => BuildQueue;
  dispatcher: () => NotifyDispatcher;
  log: Logger;
  config: () => Config;
  vcs: () => VcsRegistry;
  tracks: () => Record<string, TrackState>;
  buildContext: () => BuildContext;
  /** Whether ci.yaml (or a pattern) has the site again: then it stays. */
  present: (name: string) => boolean;
  aborted: () => boolean;
  changed: (branch: string) => void;
}

/**
 * Sites that leave: a branch removed from ci.yaml (its `teardown` steps) and
 * a pattern's site retired (teardown, port, directory, mail). Both go
 * through the queue, so they run after a build of the site that still runs
 * (the queue never runs two items of one branch), and both are dropped if
 * the site is back by then.
 */
export class LeavingSites {
  /** Branches removed from ci.yaml whose teardown steps wait in the queue. */
  private readonly leaving = new Map<string, BranchConfig>();
  /** Sites retired from the config whose end waits in the queue. */
  private readonly retiring = new Map<string, { site: BranchConfig; reason: RetireReason }>();

  constructor(private readonly deps: LeavingSitesDeps) {}

  /** A branch left ci.yaml: its teardown steps, or a word on what stays. */
  branchLeft(branch: BranchConfig): void {
    if ((branch.teardown ?? []).length === 0) {
      // A pattern's retired site: its directory goes in the retire item, logged there.
      if (branch.pattern) return;
      this.deps.log.info(
        { branch: branch.name, dir: branch.dir },
        'branch removed; no teardown steps, so its directory and any server it started stay',
      );
      return;
    }
    this.leaving.set(branch.name, branch);
    this.deps.queue().request({ branch: branch.name, kind: 'teardown', force: false });
  }

  /** A pattern's site whose branch is gone: it has left the config already. */
  retire(site: BranchConfig, reason: RetireReason): Promise<void> {
    this.retiring.set(site.name, { site, reason });
    this.deps.queue().request({ branch: site.name, kind: 'retire', force: false });
    return Promise.resolve();
  }

  /** One answer would retire more than half of a pattern's sites: none goes, the operators hear. */
  held(pattern: string, sites: Retirement[]): void {
    const names = sites.map((r) => r.name);
    this.deps.log.warn(
      { pattern, sites: names, reasons: sites.map((r) => r.reason) },
      'retiring held: one answer would retire more than half of the sites',
    );
    void this.deps
      .dispatcher()
      .dispatch(
        {
          type: 'site',
          branch: pattern,
          pattern,
          message: `One answer of the remote would retire ${names.length} of the sites of pattern ${pattern} at once (${names.join(', ')}); none was retired. If their branches are really gone, run \`stagepost retire --confirm\`; if the remote is broken, fix it and nothing happens.`,
          urls: [],
          commits: [],
        },
        ['retire-held'],
      )
      .catch(() => undefined);
  }

  /** Runs a queue item of kind `teardown` or `retire`. */
  async run(kind: 'teardown' | 'retire', name: string): Promise<void> {
    try {
      if (kind === 'teardown') await this.teardown(name);
      else await this.retireNow(name);
    } finally {
      this.deps.changed(name);
    }
  }

  private async teardown(name: string): Promise<void> {
    const branch = this.leaving.get(name);
    this.leaving.delete(name);
    // Back in ci.yaml meanwhile: the site stays.
    if (!branch || this.deps.present(name) || this.deps.aborted()) return;
    try {
      await runTeardown(this.deps.buildContext(), branch);
    } catch (err) {
      this.deps.log.error({ branch: name, error: err }, 'teardown could not run');
    }
  }

  private async retireNow(name: string): Promise<void> {
    const retiring = this.retiring.get(name);
    this.retiring.delete(name);
    // Back meanwhile (the branch was pushed again): the site stays.
    if (!retiring || this.deps.present(name)) return;
    try {
      await retireSite(
        {
          config: this.deps.config(),
          vcs: this.deps.vcs(),
          log: this.deps.log,
          tracks: this.deps.tracks(),
          notify: (n) => this.deps.dispatcher().dispatch(n, ['retired'], name),
        },
        retiring.site,
        retiring.reason,
      );
    } catch (err) {
      this.deps.log.error({ branch: name, error: err }, 'site could not be retired');
    }
  }
}
