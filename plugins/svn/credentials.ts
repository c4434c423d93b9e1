/**
 * A password in an svn URL must never reach svn's argv (anyone can read it in
 * `ps`), nor svn's auth cache on disk. It is cut out of the URL here and given
 * to svn on stdin (`--password-from-stdin`, svn 1.10+) with `--no-auth-cache`.
 */
export interface SvnTarget {
  /** The URL without the password (and, but for svn+ssh, without the user). */
  url: string;
  username?: string;
  password?: string;
}

const URL_PARTS = /^([a-z][a-z0-9+.-]*:\/\/)([^/]*)(.*)$/i;

const decode = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

export function splitCredentials(url: string): SvnTarget {
  const m = URL_PARTS.exec(url);
  if (!m) return { url };
  const [, scheme, authority, rest] = m as unknown as [string, string, string, string];
  const at = authority.lastIndexOf('@');
  if (at < 0) return { url };
  const userinfo = authority.slice(0, at);
  const host = authority.slice(at + 1);
  const colon = userinfo.indexOf(':');
  if (colon < 0) return { url };
  const user = userinfo.slice(0, colon);
  // ssh authenticates svn+ssh (keys, agent): the user stays in the URL for ssh,
  // and svn has no way to hand ssh a password, so it is dropped.
  if (scheme.toLowerCase().startsWith('svn+')) return { url: `${scheme}${user}@${host}${rest}` };
  return {
    url: `${scheme}${host}${rest}`,
    username: decode(user),
    password: decode(userinfo.slice(colon + 1)),
  };
}

/** svn's argv and stdin for a target's credentials. */
export function authArgs(target: SvnTarget): { args: string[]; input?: string } {
  if (target.password === undefined) return { args: [] };
  return {
    args: ['--username', target.username ?? '', '--password-from-stdin', '--no-auth-cache'],
    input: target.password,
  };
}

/** A form of a URL for comparing what svn prints with what was asked. */
export function sameUrlKey(url: string): string {
  return decode(url.replace(/\/+$/, ''));
}
