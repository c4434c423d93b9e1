import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';

/** ssh appends ~17 characters to the socket path while it sets one up. */
const MAX_SOCKET_PATH = 100;
const HASH_LENGTH = 40; // %C is a sha1 in hex

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The environment of every git child: never prompt (a prompt would hang a poll
 * until its timeout), C locale (stderr is parsed), and ssh in batch mode with
 * one shared connection per host kept for 60s, so polling an ssh remote every
 * few seconds does not pay a handshake each time. A GIT_SSH_COMMAND or GIT_SSH
 * the operator set wins: they chose their ssh deliberately.
 */
export function gitEnvironment(stateDir: string, base: NodeJS.ProcessEnv): { env: NodeJS.ProcessEnv; sharedSsh: boolean } {
  const env: NodeJS.ProcessEnv = { ...base, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C', LANGUAGE: 'C' };
  if (env.GIT_SSH_COMMAND || env.GIT_SSH) return { env, sharedSsh: false };
  const socketDir = path.join(stateDir, 'ssh');
  const sharedSsh = socketDir.length + 1 + HASH_LENGTH <= MAX_SOCKET_PATH;
  const ssh = ['ssh', '-o', 'BatchMode=yes'];
  if (sharedSsh) {
    mkdirSync(socketDir, { recursive: true, mode: 0o700 });
    chmodSync(socketDir, 0o700);
    // ssh expands %-tokens in ControlPath; a literal % in the path must be doubled.
    const controlPath = path.join(socketDir, '%C').replace(/%(?!C$)/g, '%%');
    ssh.push('-o', 'ControlMaster=auto', '-o', 'ControlPersist=60s', '-o', shellQuote(`ControlPath=${controlPath}`));
  }
  env.GIT_SSH_COMMAND = ssh.join(' ');
  return { env, sharedSsh };
}
