import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** An svn repository made with `svnadmin create`, reached as file://. */
export interface SvnRemote {
  repo: string;
  url: string;
  /** Commit a change under `subpath` (e.g. `trunk`, `branches/b1`); returns the new revision. */
  commit(
    subpath: string,
    message?: string,
    opts?: { author?: string; file?: string; content?: string },
  ): string;
  /** Copy (branch) `from` to `to` on the server; returns the new revision. */
  copy(from: string, to: string, message?: string): string;
}

export function svn(args: string[], cwd?: string): string {
  return execFileSync('svn', ['--non-interactive', ...args], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

export function makeSvnRemote(root: string, name = 'svnrepo'): SvnRemote {
  const repo = path.join(root, name);
  execFileSync('svnadmin', ['create', repo]);
  const url = `file://${repo}`;
  svn(['mkdir', '--parents', '-m', 'layout', `${url}/trunk`, `${url}/branches`, `${url}/tags`]);
  const work = path.join(root, `${name}-wc`);
  svn(['checkout', '-q', url, work]);
  let counter = 0;
  const lastRev = (out: string) => {
    const m = /Committed revision (\d+)/.exec(out);
    if (!m) throw new Error(`no revision in: ${out}`);
    return m[1];
  };
  return {
    repo,
    url,
    commit(subpath, message, opts = {}) {
      counter += 1;
      svn(['update', '-q'], work);
      const file = path.join(work, subpath, opts.file ?? 'file.txt');
      mkdirSync(path.dirname(file), { recursive: true });
      const existed = svn(['status', file], work);
      writeFileSync(file, opts.content ?? `change ${counter} ${Date.now()}\n`);
      try {
        svn(['add', '-q', '--parents', file], work);
      } catch {
        /* already versioned */
      }
      void existed;
      const args = ['commit', '-m', message ?? `change ${counter} in ${subpath}`];
      if (opts.author) args.push('--username', opts.author);
      return lastRev(svn([...args, work], work));
    },
    copy(from, to, message) {
      return lastRev(
        svn([
          'copy',
          '--parents',
          '-m',
          message ?? `copy ${from} to ${to}`,
          `${url}/${from}`,
          `${url}/${to}`,
        ]),
      );
    },
  };
}
