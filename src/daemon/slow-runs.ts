import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { NotifyDispatcher } from '../notify/dispatcher.js';
import type { StateStore } from '../state/store.js';
import { jobOfKind } from '../state/history.js';
import { SlowWatch } from '../builds/slow-watch.js';

/** The daemon's SlowWatch: history from the state files, `slow` mail through the outbox. */
export function watchSlowRuns(deps: {
  store: StateStore;
  dispatcher: NotifyDispatcher;
  log: Logger;
  config: () => Config;
}): SlowWatch {
  return new SlowWatch({
    history: (branch, kind) => {
      const state = deps.store.readBranch(branch);
      const job = jobOfKind(kind);
      return job ? (state.jobs[job]?.runs ?? []) : state.builds;
    },
    send: (n) => {
      deps.log.warn(
        { branch: n.branch, job: n.job, run: n.id, durationMs: n.durationMs, medianMs: n.medianMs },
        'run slower than usual',
      );
      void deps.dispatcher.enqueue(n, ['slow'], n.branch).catch(() => undefined);
    },
    logUrl: (branch, kind, id) => {
      const base = deps.config().http?.publicUrl?.replace(/\/$/, '');
      if (!base) return undefined;
      const job = jobOfKind(kind);
      const b = encodeURIComponent(branch);
      return job
        ? `${base}/api/branches/${b}/jobs/${encodeURIComponent(job)}/runs/${id}/log`
        : `${base}/api/branches/${b}/builds/${id}/log`;
    },
  });
}
