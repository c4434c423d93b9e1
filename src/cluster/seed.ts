import { existsSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { BranchConfig, ClusterConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { BranchState, StateStore } from '../state/store.js';
import { errorMessage } from '../errors.js';
import { redactor } from '../util/redact.js';
import { READ_BRANCH } from './tables.js';

/** What marks a source's dir as a checkout of its VCS (a plugin VCS: the dir itself). */
function isCheckout(branch: BranchConfig): boolean {
  if (!existsSync(branch.dir)) return false;
  return branch.sources.every((s) => {
    const dir = path.join(branch.dir, s.path);
    if (s.vcs === 'git') return existsSync(path.join(dir, '.git'));
    if (s.vcs === 'svn') return existsSync(path.join(dir, '.svn'));
    return existsSync(dir);
  });
}

/**
 * A site this host holds that has no local state file (it moved here, or the
 * cluster was turned on with `stagepost cluster import` on another host)
 * takes its state from the database, so it is neither rebuilt nor announced
 * again — but only when its dir is already a checkout here: a site whose dir
 * is missing must be built, and is. What belonged to the process of the host
 * that wrote it (the running build, a notification not yet in its outbox)
 * is dropped: that host ends or sends them. Returns the branches seeded.
 */
export async function seedMissingStates(
  cluster: ClusterConfig,
  store: StateStore,
  branches: BranchConfig[],
  log: Logger,
): Promise<string[]> {
  const candidates = branches.filter((b) => !existsSync(store.branchFile(b.name)) && isCheckout(b));
  if (candidates.length === 0) return [];
  const client = new pg.Client({
    connectionString: cluster.database,
    connectionTimeoutMillis: 5000,
    application_name: `stagepost ${cluster.host} (seed)`,
  });
  client.on('error', () => undefined);
  const seeded: string[] = [];
  try {
    await client.connect();
    for (const b of candidates) {
      const { rows } = await client.query<{ host: string; state: BranchState }>(READ_BRANCH, [
        b.name,
      ]);
      const row = rows[0];
      if (!row) continue;
      const { pendingNotification: _sent, ...rest } = row.state;
      await store.writeBranch(b.name, { ...rest, running: null });
      seeded.push(b.name);
      log.info(
        { branch: b.name, from: row.host, dir: b.dir },
        'site state taken from the cluster database (no local state; its dir is a checkout)',
      );
    }
  } catch (err) {
    // Without the database the site is built, as a new site is.
    log.warn(
      { error: redactor.redact(errorMessage(err)) },
      'cannot read site states from the cluster database; sites without local state are built',
    );
  } finally {
    await client.end().catch(() => undefined);
  }
  return seeded;
}
