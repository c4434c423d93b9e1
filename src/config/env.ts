/**
 * `${NAME}` (and `${credential:NAME}`, see credentials.ts) substitution at
 * load time, so secrets stay out of ci.yaml. The
 * `run` commands of steps and jobs are shell and keep their `${NAME}` for the
 * shell to expand when they run.
 */
import { readCredential } from './credentials.js';
import type { ConfigPath, PathProblem } from './problems.js';

// One pass for both kinds, so a substituted value is never substituted again.
const REFERENCE = /\$\{(?:credential:([^}]*)|([A-Za-z_][A-Za-z0-9_]*))\}/g;

export interface Substituted {
  value: unknown;
  /** Every value that came from the environment or a credential, to be masked everywhere. */
  secrets: string[];
  /** The names of the variables read. */
  names: string[];
  problems: PathProblem[];
}

/** `steps[i].run`, `create[i].run` (top level or in a branch) and `jobs.X.run`. */
export function isShellCommand(path: ConfigPath): boolean {
  const n = path.length;
  if (n < 3 || path[n - 1] !== 'run') return false;
  if (path[n - 3] === 'steps' || path[n - 3] === 'create') return typeof path[n - 2] === 'number';
  return n === 3 && path[0] === 'jobs';
}

/**
 * Offset of the `@` that ends the userinfo of a URL as written (before
 * substitution, so a value's own `@` or `/` cannot move it); -1 if none.
 */
function userinfoEndOf(template: string): number {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(template);
  if (!scheme) return -1;
  const rest = template.slice(scheme[0].length);
  const end = rest.search(/[/?#]/);
  const at = (end < 0 ? rest : rest.slice(0, end)).lastIndexOf('@');
  return at < 0 ? -1 : scheme[0].length + at;
}

export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv): Substituted {
  const secrets = new Set<string>();
  const names = new Set<string>();
  const problems: Substituted['problems'] = [];

  const walk = (v: unknown, path: ConfigPath): unknown => {
    if (typeof v === 'string') {
      if (isShellCommand(path)) return v;
      const userinfoEnd = userinfoEndOf(v);
      return v.replace(
        REFERENCE,
        (whole, credential: string | undefined, name: string | undefined, offset: number) => {
          let found: string;
          if (credential !== undefined) {
            const read = readCredential(credential, env);
            if ('problem' in read) {
              problems.push({ path, message: read.problem });
              return whole;
            }
            found = read.value;
          } else {
            const value = env[name!];
            if (value === undefined) {
              problems.push({
                path,
                message: `\${${name}} is not set in the environment — set ${name}, or pass the secret as a systemd credential and write \${credential:NAME} (docs/service.md), or write the value here`,
              });
              return whole;
            }
            names.add(name!);
            found = value;
          }
          if (found !== '') secrets.add(found);
          if (offset > userinfoEnd) return found;
          // In a URL's user:password@ the value is data: `/`, `@`, `:`, `+`, `=`
          // would otherwise change where git and svn see the host and path.
          const encoded = encodeURIComponent(found);
          if (encoded !== found) secrets.add(encoded);
          return encoded;
        },
      );
    }
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...path, i]));
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.entries(v).map(([k, item]) => [k, walk(item, [...path, k])]),
      );
    }
    return v;
  };

  return { value: walk(value, []), secrets: [...secrets], names: [...names], problems };
}
