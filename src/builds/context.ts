import type { Config } from '../config/types.js';
import type { BuildNotification, EventName } from '../plugin-api.js';
import type { Logger } from '../log.js';
import type { StateStore, TrackState } from '../state/store.js';
import type { VcsRegistry } from '../vcs.js';

/** What a build or a job is given by whoever runs it: the daemon, or the CLI in the foreground. */
export interface BuildContext {
  config: Config;
  store: StateStore;
  vcs: VcsRegistry;
  log: Logger;
  /** Current remote revision of a track. */
  track(key: string): TrackState | undefined;
  /**
   * Send a notification for these events (the dispatcher filters per
   * notifier). Resolves once the messages are safe in the outbox.
   */
  notify(
    notification: Omit<BuildNotification, 'events'>,
    events: EventName[],
  ): Promise<void> | void;
  /** Aborted on shutdown: running children are ended and the build recorded `interrupted`. */
  signal?: AbortSignal;
  /** Progress for status and the dashboard. */
  progress?(
    branch: string,
    info: { id: number; kind: string; step: string | null; startedAt: string } | null,
  ): void;
  /** Mirror of the log (foreground `update`). */
  echo?: (text: string) => void;
  /** Public base URL of the dashboard, for log links. */
  httpUrl?: string;
  /** Told once when another process holds the branch lock. */
  onLockWait?: (owner: { pid: number; purpose: string }) => void;
}
