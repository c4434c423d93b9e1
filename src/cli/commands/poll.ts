import type { Session } from '../session.js';
import { openSession } from '../session.js';
import { trackKey } from '../../poll/tracks.js';
import { printJson, table, say } from '../output.js';

/** `stagepost poll [BRANCH…]`: ask the remotes once; show built vs remote. Builds nothing. */
export async function pollCommand(
  branches: string[],
  opts: { config?: string; json?: boolean },
): Promise<number> {
  const session = await openSession(opts.config, { readOnly: true });
  try {
    const selected = selectBranches(session, branches);
    await session.poller.setBranches(selected, false);
    // Everything before this (node, imports, ci.yaml, state, plugins) is
    // start-up; the queries are timed apart so `--json` can show both.
    const pollStarted = performance.now();
    await session.poller.pollNow();
    const timing = {
      startupMs: round(pollStarted),
      pollMs: round(performance.now() - pollStarted),
    };
    const rows = selected.map((b) => {
      const state = session.store.readBranch(b.name);
      return {
        name: b.name,
        error: session.pollErrors.get(b.name) ?? null,
        sources: b.sources.map((s) => {
          const track = session.poller.tracks[trackKey(s)];
          const built = state.built[s.name] ?? null;
          const attempted = state.attempted[s.name] ?? null;
          const remote = session.poller.tracks[trackKey(s)]?.revision ?? null;
          return {
            name: s.name,
            vcs: s.vcs,
            built,
            attempted,
            remote,
            missing: track?.missing ?? null,
            changed: remote !== null && remote !== attempted,
          };
        }),
      };
    });
    const failed = rows.some((r) => r.error);
    if (opts.json) printJson({ branches: rows, timing });
    else {
      const lines = [['BRANCH', 'SOURCE', 'BUILT', 'REMOTE', 'CHANGED']];
      for (const r of rows) {
        for (const s of r.sources)
          lines.push([
            r.name,
            s.name,
            short(s.built, s.vcs),
            r.error ? 'error' : s.missing ? 'missing' : short(s.remote, s.vcs),
            r.error ? '?' : s.changed ? 'yes' : 'no',
          ]);
        if (r.error) lines.push([r.name, '', '', r.error, '']);
      }
      say(table(lines).trimEnd());
    }
    return failed ? 1 : 0;
  } finally {
    await session.close();
  }
}

export function selectBranches(session: Session, names: string[]) {
  return names.length === 0 ? session.config.branches : names.map((n) => session.branch(n));
}

const round = (ms: number) => Math.round(ms * 10) / 10;

/** A revision as a person reads it: 7 hex digits of a git commit, `r1` for svn. */
export function short(rev: string | null, vcs?: string): string {
  if (!rev) return '-';
  if (vcs === 'svn') return `r${rev}`;
  return /^[0-9a-f]{40}$/.test(rev) ? rev.slice(0, 7) : rev;
}
