import { readFileSync } from 'node:fs';
import { parseDocument, isMap, isSeq } from 'yaml';
import { loadConfig, parseConfig, resolveConfigPath } from '../../config/load.js';
import { openSession } from '../session.js';
import { StagepostError, errorMessage } from '../../errors.js';
import { replaceFileInPlace } from '../../util/replace-file.js';
import { replaceScalar } from '../../config/edit.js';
import { sourceSpec } from '../../poll/tracks.js';
import { say, note } from '../output.js';

/**
 * `stagepost switch BRANCH REF [--source NAME]`: point a source at another git
 * ref or svn URL by editing ci.yaml in place (comments and layout kept), only
 * when the result is valid and the ref exists on the remote.
 */
export async function switchCommand(
  branchName: string,
  ref: string,
  opts: { config?: string; source?: string },
): Promise<number> {
  const file = resolveConfigPath(opts.config, process.env, process.cwd());
  const config = await loadConfig(file);
  const branch = config.branches.find((b) => b.name === branchName);
  if (!branch) throw new StagepostError('ENOBRANCH', `branch "${branchName}" is not in ${file}`);
  if (!opts.source && branch.sources.length > 1)
    throw new StagepostError(
      'EUSAGE',
      `${branchName} has ${branch.sources.length} sources (${branch.sources.map((s) => s.name).join(', ')}) — say which with --source NAME`,
    );
  const source = opts.source
    ? branch.sources.find((s) => s.name === opts.source)
    : branch.sources[0];
  if (!source)
    throw new StagepostError(
      'EUSAGE',
      `${branchName} has no source "${opts.source}" (sources: ${branch.sources.map((s) => s.name).join(', ')})`,
    );
  const key = source.vcs === 'svn' ? 'url' : 'ref';

  const text = readFileSync(file, 'utf8');
  const doc = parseDocument(text);
  const sources = doc.getIn(['branches', branchName, 'sources'], true);
  if (!isSeq(sources))
    throw new StagepostError('ECONFIG', `${file}: branches.${branchName}.sources is not a list`);
  const index = sources.items.findIndex((item) => isMap(item) && item.get('name') === source.name);
  if (index < 0)
    throw new StagepostError(
      'ECONFIG',
      `${file}: source ${source.name} of ${branchName} not found`,
    );
  const next = replaceScalar(text, ['branches', branchName, 'sources', index, key], ref);

  // Valid as a whole?
  let nextConfig;
  try {
    nextConfig = parseConfig(next, file, process.env);
  } catch (err) {
    note(
      `refusing: ${key} "${ref}" would make ${file} invalid; ci.yaml unchanged:\n${(err as Error).message}`,
    );
    return 2;
  }
  const nextSource = nextConfig.branches
    .find((b) => b.name === branchName)!
    .sources.find((s) => s.name === source.name)!;
  // Does the ref exist?
  const session = await openSession(opts.config);
  try {
    const plugin = await session.vcs.get(nextSource.vcs);
    let answer;
    try {
      [answer] = await plugin.remoteRevisions([sourceSpec(nextSource)], {
        timeoutMs: branch.poll.timeoutMs,
      });
    } catch (err) {
      // The plugin speaks of ci.yaml's url; here the value is the command's argument.
      const message = errorMessage(err);
      const why = message.replace(/; fix the source's \w+ in ci\.yaml$/, '');
      note(`refusing: ${key} "${ref}" given to switch cannot be used (${why}); ci.yaml unchanged`);
      // Not even a URL is a usage error; a remote that failed to answer is not.
      return why === message ? 1 : 2;
    }
    if (!answer || 'missing' in answer) {
      note(
        `refusing: ${key} "${ref}" does not exist on the remote${answer && 'missing' in answer ? ` (${answer.reason})` : ''}; ci.yaml unchanged`,
      );
      return 1;
    }
    await replaceFileInPlace(file, next);
    say(
      `${branchName}: source ${source.name} now at ${key} ${ref} (${plugin.shortRevision(answer.revision)}); a running daemon rebuilds it from its next poll`,
    );
    return 0;
  } finally {
    await session.close();
  }
}
