/**
 * A password in a git URL (`https://deploy:TOKEN@host/repo.git`) must not sit
 * on git's argv (anyone can read it in `ps`) nor in the checkout's .git/config.
 * It is cut out of the URL and handed over by a one-shot credential helper that
 * reads it from the child's environment, which only the same user can read.
 */
export const PASSWORD_VARIABLE = 'STAGEPOST_GIT_PASSWORD';

// The helper text holds no secret: it prints the variable for `get` and
// ignores `store`/`erase`, so the password is never saved either. Resetting
// credential.helper first keeps an operator's store helper out of it.
const HELPER = `!f() { test "$1" = get && printf 'password=%s\\n' "$${PASSWORD_VARIABLE}"; }; f`;

export interface GitRemoteUrl {
  url: string;
  password?: string;
}

const URL_PARTS = /^([a-z][a-z0-9+.-]*:\/\/)([^/@:]*):([^/@]*)@(.*)$/i;

export function splitPassword(url: string): GitRemoteUrl {
  const m = URL_PARTS.exec(url);
  if (!m) return { url };
  const [, scheme, user, password, rest] = m as unknown as [string, string, string, string, string];
  let decoded = password;
  try {
    decoded = decodeURIComponent(password);
  } catch {
    /* keep as written */
  }
  return { url: `${scheme}${user ? `${user}@` : ''}${rest}`, password: decoded };
}

/** Leading `-c` options and environment that give git the password, if any. */
export function credentialArgs(remote: GitRemoteUrl): { args: string[]; env: NodeJS.ProcessEnv } {
  if (remote.password === undefined) return { args: [], env: {} };
  return {
    args: ['-c', 'credential.helper=', '-c', `credential.helper=${HELPER}`],
    env: { [PASSWORD_VARIABLE]: remote.password },
  };
}
