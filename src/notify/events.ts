import type { BuildResult, EventName } from '../plugin-api.js';

/** A failing result: what makes the next success `fixed` and the next failure `still-failing`. */
export function isFailing(result: BuildResult | null | undefined): boolean {
  return result === 'failure' || result === 'timeout';
}

/**
 * The events a finished build raises (SPEC "Notifications"). `previous` is the
 * result of the last build before it that was not interrupted, null on the
 * first. An interrupted build raises nothing: it is redone. `started` is
 * raised by the core when a build begins.
 */
export function buildEvents(result: BuildResult, previous: BuildResult | null): EventName[] {
  if (result === 'success') return isFailing(previous) ? ['success', 'fixed'] : ['success'];
  if (isFailing(result)) return isFailing(previous) ? ['failure', 'still-failing'] : ['failure'];
  return [];
}
