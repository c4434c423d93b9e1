import type { BranchState, BuildRecord, JobHistory } from './store.js';

/**
 * Retention of a branch's history. Builds and each job keep `keep` runs apart
 * from each other. Trimming builds never drops the last build nor the last
 * successful one: status, `log BRANCH` and the commit range of the next
 * build's mail are worked out from them.
 */
export function trimBuilds(builds: BuildRecord[], keep: number): BuildRecord[] {
  const kept = builds.slice(0, Math.max(1, keep));
  const lastSuccess = builds.find((b) => b.result === 'success');
  if (lastSuccess && !kept.includes(lastSuccess)) kept.push(lastSuccess);
  return kept;
}

export function jobHistory(state: BranchState, job: string): JobHistory {
  return (state.jobs[job] ??= { nextId: 1, runs: [] });
}

/** Record a finished job run as the newest of its job; returns the ids still kept. */
export function addJobRun(
  state: BranchState,
  job: string,
  record: BuildRecord,
  keep: number,
): number[] {
  const history = jobHistory(state, job);
  history.runs = [record, ...history.runs].slice(0, Math.max(1, keep));
  return history.runs.map((r) => r.id);
}

/** The job name of a `job:<name>` kind, or null for a build. */
export function jobOfKind(kind: string): string | null {
  return kind.startsWith('job:') ? kind.slice(4) : null;
}
