import type { BranchConfig } from '../config/types.js';
import type { TrackState } from '../state/store.js';
import { trackKey } from './tracks.js';

/**
 * A branch whose ref (or svn URL) is gone from the remote has a poll error,
 * though its remote answered: one line per missing source, or null.
 */
export function missingRefError(
  branch: BranchConfig,
  tracks: Record<string, TrackState | undefined>,
): string | null {
  const lines = branch.sources.flatMap((s) => {
    const missing = tracks[trackKey(s)]?.missing;
    return missing ? [`ref missing: source ${s.name}: ${missing}`] : [];
  });
  return lines.length > 0 ? lines.join('; ') : null;
}
