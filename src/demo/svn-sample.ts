import path from 'node:path';
import { must, writeSampleApp, type Author, type SampleRepo } from './sample-repo.js';

/**
 * An svn repository made with `svnadmin create` (reached as file://) with the
 * sample app on trunk, and a working copy of trunk that commits. svn keeps
 * its own configuration and credentials in the sandbox, not in ~/.subversion.
 */
export async function makeSvnSample(
  remotesDir: string,
  workDir: string,
  configDir: string,
  first: Author,
): Promise<SampleRepo> {
  const repo = path.join(remotesDir, 'karl-svn');
  const work = path.join(workDir, 'karl-svn-trunk');
  const url = `file://${repo}`;
  const svn = (args: string[]) =>
    must('svn', ['--non-interactive', '--config-dir', configDir, ...args], { cwd: workDir });
  await must('svnadmin', ['create', repo]);
  await svn([
    'mkdir',
    '--parents',
    '--username',
    first.user,
    '-m',
    'Repository layout',
    `${url}/trunk`,
    `${url}/branches`,
  ]);
  await svn(['checkout', '-q', `${url}/trunk`, work]);
  writeSampleApp(work);
  const commit = async (author: Author, message: string): Promise<string> => {
    await svn(['add', '-q', '--force', work]);
    const out = await svn(['commit', '--username', author.user, '-m', message, work]);
    const m = /Committed revision (\d+)/.exec(out);
    return m ? m[1] : svn(['info', '--show-item', 'last-changed-revision', work]);
  };
  await commit(first, 'Start the sample app');
  return {
    vcs: 'svn',
    url,
    async commit(_ref, author, message, edit) {
      await svn(['update', '-q', work]);
      edit(work);
      return commit(author, message);
    },
  };
}
