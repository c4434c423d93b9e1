import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Author, SampleRepo } from './sample-repo.js';
import { errorMessage } from '../errors.js';

/**
 * The demo's commit loop: every few seconds a commit to one of the sample
 * branches. Every sixth commit breaks branch2 (adds BROKEN), the next one on
 * branch2 keeps it broken, the one after that repairs it, so the dashboard and
 * the mail show failed, still failing and fixed builds as well as successes.
 */
export interface CommitTarget {
  branch: string;
  repo: SampleRepo;
  /** git branch; for svn the working copy is of the branch's URL already. */
  ref: string;
}

export const AUTHORS: Author[] = [
  { name: 'Alice Example', email: 'alice@example.test', user: 'alice' },
  { name: 'Bob Example', email: 'bob@example.test', user: 'bob' },
  { name: 'Chris Example', email: 'chris@example.test', user: 'chris' },
];

const MESSAGES = [
  'Speed up the search index',
  'Fix a typo on the login page',
  'Show the community name in the page title',
  'Add a CSV export of the member list',
  'Make the calendar week start on Monday',
  'Update the help text of the upload form',
  'Log slow requests',
  'Tidy up the stylesheet',
];

interface Planned {
  branch: string;
  message: string;
  broken: 'add' | 'keep' | 'remove' | null;
  expect: string | null;
}

const pickOne = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)];

/** Commit number n (from 0). Slot 0 may hit any branch; 1, 3, 5 are branch2's break, still broken, repair. */
export function plan(n: number): Planned {
  const message = pickOne(MESSAGES);
  switch (n % 6) {
    case 0:
      return {
        branch: pickOne(['staging', 'branch1', 'branch2']),
        message,
        broken: null,
        expect: null,
      };
    case 1:
      return {
        branch: 'branch2',
        message: 'Break the build on purpose (adds BROKEN)',
        broken: 'add',
        expect: 'FAILED',
      };
    case 3:
      return {
        branch: 'branch2',
        message: `${message} (still broken)`,
        broken: 'keep',
        expect: 'STILL FAILING',
      };
    case 5:
      return {
        branch: 'branch2',
        message: 'Repair the build (removes BROKEN)',
        broken: 'remove',
        expect: 'FIXED',
      };
    default:
      return { branch: pickOne(['staging', 'branch1']), message, broken: null, expect: null };
  }
}

function edit(dir: string, p: Planned, author: Author): void {
  appendFileSync(path.join(dir, 'CHANGES.txt'), `${p.message} (${author.name})\n`);
  if (p.broken === 'add')
    writeFileSync(
      path.join(dir, 'BROKEN'),
      'the demo broke this branch on purpose; a later commit repairs it\n',
    );
  if (p.broken === 'remove') rmSync(path.join(dir, 'BROKEN'), { force: true });
}

export class CommitLoop {
  private n = 0;
  private timer: NodeJS.Timeout | null = null;
  private current: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly targets: CommitTarget[],
    private readonly intervalMs: number,
    private readonly out: (line: string) => void,
  ) {}

  start(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.current = this.commitOne().finally(() => this.schedule());
    }, this.intervalMs);
  }

  private async commitOne(): Promise<void> {
    const p = plan(this.n++);
    const target = this.targets.find((t) => t.branch === p.branch);
    if (!target) return;
    const author = pickOne(AUTHORS);
    try {
      const rev = await target.repo.commit(target.ref, author, p.message, (dir) =>
        edit(dir, p, author),
      );
      const where = target.repo.vcs === 'git' ? `git ${target.ref}` : 'svn trunk';
      const shown = target.repo.vcs === 'git' ? rev.slice(0, 7) : `r${rev}`;
      this.out(
        `${new Date().toTimeString().slice(0, 8)}  commit ${shown} to ${p.branch} (${where}) by ${author.name}: ${p.message}${p.expect ? `  -> expect ${p.expect}` : ''}`,
      );
    } catch (err) {
      this.out(
        `${new Date().toTimeString().slice(0, 8)}  commit to ${p.branch} failed: ${errorMessage(err)}`,
      );
    }
  }

  /** No new commits; waits for one in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.current;
  }
}
