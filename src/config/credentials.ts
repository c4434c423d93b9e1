/**
 * `${credential:NAME}` in ci.yaml: a secret that systemd passed as a
 * credential (LoadCredential=NAME:PATH), read from $CREDENTIALS_DIRECTORY/NAME.
 * Unlike `${VAR}`, the value never sits in any process's environment.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

// systemd's credential names are file names; this also keeps `..` and `/` out.
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/;

/** The unit line that provides the credential, for messages. */
export function unitLine(name: string): string {
  return `LoadCredential=${name}:/etc/stagepost/${name}`;
}

export type CredentialResult = { value: string } | { problem: string };

export function readCredential(name: string, env: NodeJS.ProcessEnv): CredentialResult {
  const ref = `\${credential:${name}}`;
  if (!NAME.test(name))
    return {
      problem: `${ref}: a credential name is letters, digits, "_", "." and "-" — write e.g. \${credential:smtp_password}`,
    };
  const dir = env.CREDENTIALS_DIRECTORY;
  const provide = `add "${unitLine(name)}" to the unit (in a drop-in, see docs/service.md)`;
  if (!dir)
    return {
      problem: `${ref}: no credentials were passed ($CREDENTIALS_DIRECTORY is not set) — ${provide}; outside systemd, set CREDENTIALS_DIRECTORY to a directory holding a file ${name}`,
    };
  try {
    // A file written with `echo` ends in a newline that is not part of the secret.
    return { value: readFileSync(path.join(dir, name), 'utf8').replace(/[\r\n]+$/, '') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      return { problem: `${ref}: there is no credential ${name} in ${dir} — ${provide}` };
    return {
      problem: `${ref}: cannot read ${path.join(dir, name)} (${code ?? String(err)}) — the service's user must be able to read it; ${provide}`,
    };
  }
}
