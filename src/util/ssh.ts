import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';

/** ssh appends ~17 characters to the socket path while it sets one up; unix sockets take ~108. */
const MAX_SOCKET_PATH = 100;
const HASH_LENGTH = 40; // %C is a sha1 in hex
/**
 * How long an idle shared connection stays open. It must outlast the poll
 * interval, or every poll opens a new one: at the default 60 s interval a
 * 60 s persist would close the connection just as the next poll needs it.
 * Ten minutes covers any usual interval; the cost is one idle ssh process
 * per host, which stopping the service ends with its cgroup.
 */
export const CONTROL_PERSIST = '10m';

/**
 * The ssh command line a VCS should use to reach its ssh remotes: `base` is
 * batch mode (a password or host-key prompt would hang a poll until its
 * timeout); `sharing` adds one connection per host shared by every poll and
 * checkout (OpenSSH ControlMaster, sockets in `<stateDir>/ssh`), so a poll of
 * an ssh remote is one round trip on an open connection instead of a
 * handshake. `sharing` is empty when the state dir cannot hold the socket.
 *
 * Returned as words, for the caller to quote as its VCS reads them (git runs
 * GIT_SSH_COMMAND through sh; svn splits SVN_SSH itself), and to leave
 * `sharing` out if it cannot quote it.
 */
export function sharedSshWords(stateDir: string): { base: string[]; sharing: string[] } {
  const base = ['ssh', '-o', 'BatchMode=yes'];
  const socketDir = path.join(stateDir, 'ssh');
  // ssh reads an -o value as a line of its config: a path with a blank must be
  // in double quotes there, and one with a double quote cannot be written.
  if (socketDir.length + 1 + HASH_LENGTH > MAX_SOCKET_PATH || socketDir.includes('"'))
    return { base, sharing: [] };
  mkdirSync(socketDir, { recursive: true, mode: 0o700 });
  chmodSync(socketDir, 0o700);
  // ssh expands %-tokens in ControlPath; a literal % in the path must be doubled.
  const controlPath = path.join(socketDir, '%C').replace(/%(?!C$)/g, '%%');
  const value = /\s/.test(controlPath) ? `"${controlPath}"` : controlPath;
  return {
    base,
    sharing: [
      '-o',
      'ControlMaster=auto',
      '-o',
      `ControlPersist=${CONTROL_PERSIST}`,
      '-o',
      `ControlPath=${value}`,
    ],
  };
}
