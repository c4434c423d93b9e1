import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { must, writeSampleApp, type Author, type SampleRepo } from './sample-repo.js';

/**
 * A bare git repository as the "remote" (reached as file://) and a work clone
 * that commits and pushes. Identity comes from the environment and the user's
 * git configuration is ignored, so signing or hooks set up there cannot get
 * in the way and the user's settings are never touched.
 */
function gitEnv(author: Author): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: author.name,
    GIT_AUTHOR_EMAIL: author.email,
    GIT_COMMITTER_NAME: author.name,
    GIT_COMMITTER_EMAIL: author.email,
  };
}

export async function makeGitSample(
  remotesDir: string,
  workDir: string,
  first: Author,
  branches: string[],
): Promise<SampleRepo> {
  const bare = path.join(remotesDir, 'karl.git');
  const work = path.join(workDir, 'karl-git');
  mkdirSync(bare, { recursive: true });
  mkdirSync(work, { recursive: true });
  const git = (args: string[], author = first) =>
    must('git', args, { cwd: work, env: gitEnv(author) });
  await must('git', ['init', '--bare', '-q', bare], { env: gitEnv(first) });
  await must('git', ['symbolic-ref', 'HEAD', 'refs/heads/main'], { cwd: bare, env: gitEnv(first) });
  await git(['init', '-q']);
  await git(['checkout', '-q', '-b', 'main']);
  await git(['remote', 'add', 'origin', bare]);
  writeSampleApp(work);
  await git(['add', '-A']);
  await git(['commit', '-q', '-m', 'Start the sample app']);
  await git(['push', '-q', 'origin', 'main']);
  for (const b of branches) {
    await git(['checkout', '-q', '-b', b, 'main']);
    await git(['push', '-q', 'origin', b]);
  }
  return {
    vcs: 'git',
    url: `file://${bare}`,
    async commit(ref, author, message, edit) {
      await git(['checkout', '-q', ref]);
      edit(work);
      await git(['add', '-A']);
      await git(['commit', '-q', '-m', message], author);
      await git(['push', '-q', 'origin', ref]);
      return git(['rev-parse', 'HEAD']);
    },
  };
}
