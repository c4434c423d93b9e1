/**
 * What a plugin object must have, by kind. A wrong shape is reported at load
 * time, not as a TypeError in the middle of a poll or a build.
 */
const REQUIRED: Record<string, readonly string[]> = {
  vcs: ['shortRevision', 'repositoryKey', 'remoteRevisions', 'checkout', 'commitsBetween'],
  notifier: ['create'],
};
const OPTIONAL: Record<string, readonly string[]> = { vcs: [], notifier: ['validate'] };

export function shapeProblems(plugin: unknown): string[] {
  if (!plugin || typeof plugin !== 'object')
    return [`it exports ${plugin === null ? 'null' : typeof plugin}, not an object`];
  const p = plugin as Record<string, unknown>;
  const kind = p.kind;
  if (typeof kind !== 'string' || !(kind in REQUIRED))
    return [`kind is ${JSON.stringify(kind) ?? 'missing'}, expected "vcs" or "notifier"`];
  const problems: string[] = [];
  if (typeof p.name !== 'string' || p.name === '') problems.push('name is missing');
  for (const fn of REQUIRED[kind])
    if (typeof p[fn] !== 'function') problems.push(`${fn}() is missing`);
  for (const fn of OPTIONAL[kind])
    if (p[fn] !== undefined && typeof p[fn] !== 'function')
      problems.push(`${fn} is not a function`);
  return problems;
}
