/**
 * A pattern's glob over branch names, as git users write them: `*` within one
 * `/` segment, `**` across segments, `?` one character other than `/`.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'u');
}

/** The branches (`refs/heads/...`) of an ls-remote table that match. */
export function matchingBranches(
  table: ReadonlyMap<string, string>,
  glob: RegExp,
): Record<string, string> {
  const refs: Record<string, string> = {};
  for (const [full, id] of [...table].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!full.startsWith('refs/heads/') || full.endsWith('^{}')) continue;
    const name = full.slice('refs/heads/'.length);
    if (glob.test(name)) refs[name] = id;
  }
  return refs;
}
