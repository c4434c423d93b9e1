import type { Config } from '../config/types.js';
import type { Commit } from '../plugin-api.js';

/**
 * The address of a commit's author: `authors` maps svn user names and git
 * addresses to rewrite; an svn user not listed falls back to authors_domain.
 */
export function commitEmail(
  config: Pick<Config, 'authors' | 'authorsDomain'>,
  commit: Commit,
): string | undefined {
  if (commit.email)
    return (
      config.authors[commit.email] ?? config.authors[commit.email.toLowerCase()] ?? commit.email
    );
  const mapped = config.authors[commit.author];
  if (mapped) return mapped;
  if (config.authorsDomain && /^[A-Za-z0-9._-]+$/.test(commit.author))
    return `${commit.author}@${config.authorsDomain}`;
  return undefined;
}
