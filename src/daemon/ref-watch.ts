import type { BranchConfig } from '../config/types.js';
import type { TrackState } from '../state/store.js';
import { missingRefError } from '../poll/missing.js';

/**
 * Which branches miss a ref on their remote, so that operators hear of it
 * once when it goes (`ref-missing`) and once when it is back (`ref-back`),
 * not on every poll, nor again after a restart (the poll state keeps it).
 */
export class RefWatch {
  private readonly missing = new Map<string, string>();

  constructor(branches: BranchConfig[], tracks: Record<string, TrackState | undefined>) {
    for (const b of branches) {
      const error = missingRefError(b, tracks);
      if (error) this.missing.set(b.name, error);
    }
  }

  /** The poll error of a branch whose remote answers but lacks its ref; null otherwise. */
  errorOf(branch: string): string | null {
    return this.missing.get(branch) ?? null;
  }

  /** The remote of `branch` answered: its poll error, and the event this is news for. */
  answered(
    branch: BranchConfig,
    tracks: Record<string, TrackState | undefined>,
  ): {
    error: string | null;
    event: 'ref-missing' | 'ref-back' | null;
    message: string;
    sources: string[];
  } {
    const error = missingRefError(branch, tracks);
    const before = this.missing.get(branch.name);
    const sources = (error ?? before ?? '')
      .split('; ')
      .flatMap((l) => /^ref missing: source ([^:]+):/.exec(l)?.[1] ?? []);
    if (error) this.missing.set(branch.name, error);
    else this.missing.delete(branch.name);
    if (error && error !== before) return { error, event: 'ref-missing', message: error, sources };
    if (!error && before)
      return {
        error,
        event: 'ref-back',
        message: before.replaceAll('ref missing: ', 'was missing: '),
        sources,
      };
    return { error, event: null, message: '', sources };
  }
}
