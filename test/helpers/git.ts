import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A bare git "remote" in a temp dir, reached as file://, plus a work clone to
 * commit from (after semantic-release's test/helpers/git-utils).
 */
const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Test Author',
  GIT_AUTHOR_EMAIL: 'author@example.com',
  GIT_COMMITTER_NAME: 'Test Author',
  GIT_COMMITTER_EMAIL: 'author@example.com',
  GIT_CONFIG_NOSYSTEM: '1',
  HOME: process.env.HOME ?? '/tmp',
};

export function git(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync('git', args, {
    cwd,
    env: { ...GIT_ENV, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

/**
 * Whether a git command line (the words after `git`, or an argv starting with
 * `git`) is a remote query: `ls-remote`, or for a repository on this machine
 * the `upload-pack` ls-remote would have started.
 */
export function isGitQuery(command: string | readonly string[]): boolean {
  const words =
    typeof command === 'string'
      ? command.split(' ')
      : command[0] === 'git'
        ? command.slice(1)
        : command;
  return words[0] === 'ls-remote' || (words[0] === 'upload-pack' && words[1] === '--stateless-rpc');
}

export interface GitRemote {
  bare: string;
  url: string;
  work: string;
  /** Commit a file change on a branch and push it; returns the commit id. */
  commit(
    branch: string,
    message?: string,
    opts?: { author?: string; email?: string; file?: string; content?: string },
  ): string;
  /** Current id of a branch on the remote. */
  head(branch: string): string;
}

export function makeGitRemote(root: string, name = 'repo', initialBranch = 'main'): GitRemote {
  const bare = path.join(root, `${name}.git`);
  const work = path.join(root, `${name}-work`);
  mkdirSync(bare, { recursive: true });
  git(bare, ['init', '--bare', '-q', '-b', initialBranch]);
  mkdirSync(work, { recursive: true });
  git(work, ['init', '-q', '-b', initialBranch]);
  git(work, ['remote', 'add', 'origin', bare]);
  let counter = 0;
  const remote: GitRemote = {
    bare,
    url: `file://${bare}`,
    work,
    commit(branch, message, opts = {}) {
      counter += 1;
      const branches = git(work, ['branch', '--list', branch]);
      let hasCommits = true;
      try {
        git(work, ['rev-parse', '--verify', '-q', 'HEAD']);
      } catch {
        hasCommits = false;
      }
      if (!branches) {
        if (hasCommits) git(work, ['checkout', '-q', '-b', branch]);
        else git(work, ['checkout', '-q', '--orphan', branch]);
      } else git(work, ['checkout', '-q', branch]);
      const file = path.join(work, opts.file ?? 'file.txt');
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, opts.content ?? `${branch} change ${counter} ${Date.now()}\n`);
      git(work, ['add', '-A']);
      const env =
        opts.author || opts.email
          ? {
              GIT_AUTHOR_NAME: opts.author ?? 'Test Author',
              GIT_AUTHOR_EMAIL: opts.email ?? 'author@example.com',
            }
          : {};
      git(work, ['commit', '-q', '-m', message ?? `change ${counter} on ${branch}`], env);
      git(work, ['push', '-q', '--force', 'origin', `${branch}:refs/heads/${branch}`]);
      return git(work, ['rev-parse', 'HEAD']);
    },
    head(branch) {
      return git(bare, ['rev-parse', `refs/heads/${branch}`]);
    },
  };
  return remote;
}

/** One branch of ci.yaml on a git ref: `dir: ./sites/NAME`, one source `app` checked out at src/app. */
export function gitBranchYaml(name: string, url: string, ref: string, extra = ''): string {
  return `  ${name}:
    dir: ./sites/${name}
    sources:
      - { name: app, vcs: git, url: ${JSON.stringify(url)}, ref: ${JSON.stringify(ref)}, path: src/app }
${extra}`;
}
