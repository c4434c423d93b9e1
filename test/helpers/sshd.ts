import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, startServer } from '../plugins/vcs-helpers.js';

export const SSHD = '/usr/sbin/sshd';

export interface TestSshd {
  /** Host alias the client config in `clientBin` resolves to this sshd. */
  host: string;
  /**
   * A directory to put first in PATH: its `ssh` runs the real ssh with this
   * server's client config (port, key, known host). The options stagepost adds
   * on the command line still apply: command-line options come before -F's.
   */
  clientBin: string;
  /** Logins sshd accepted so far (one per new connection). */
  logins(): number;
  /**
   * Runs ssh through the shared connection of a stagepost state dir (its
   * `ssh/%C` socket): `['-O', 'check']`, `['-O', 'exit']`, or a command.
   * False when ssh failed (no connection to check, none to end).
   */
  viaShared(stateDir: string, args: string[]): boolean;
  stop(): Promise<void>;
}

/**
 * A real OpenSSH server on 127.0.0.1 for the current user, with a throwaway
 * host key and client key, logging to a file the test reads.
 */
export async function startSshd(dir: string): Promise<TestSshd> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const keygen = (file: string) =>
    execFileSync(
      'ssh-keygen',
      ['-q', '-t', 'ed25519', '-N', '', '-C', 'stagepost-test', '-f', file],
      { stdio: 'ignore' },
    );
  const hostKey = path.join(dir, 'host_key');
  const clientKey = path.join(dir, 'client_key');
  keygen(hostKey);
  keygen(clientKey);
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`), {
    mode: 0o600,
  });
  const port = await freePort();
  const log = path.join(dir, 'sshd.log');
  writeFileSync(log, '');
  const user = os.userInfo().username;
  writeFileSync(
    path.join(dir, 'sshd_config'),
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AllowUsers ${user}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  // As root, sshd insists on its privilege separation directory, which
  // Debian's package only makes when the service starts.
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });

  const host = 'stagepost-test-sshd';
  writeFileSync(
    path.join(dir, 'known_hosts'),
    `[127.0.0.1]:${port} ${readFileSync(`${hostKey}.pub`, 'utf8')}`,
  );
  const clientConfig = path.join(dir, 'ssh_config');
  writeFileSync(
    clientConfig,
    [
      `Host ${host}`,
      '  HostName 127.0.0.1',
      `  Port ${port}`,
      `  User ${user}`,
      `  IdentityFile ${clientKey}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${path.join(dir, 'known_hosts')}`,
      '  StrictHostKeyChecking yes',
      '',
    ].join('\n'),
  );
  const clientBin = path.join(dir, 'bin');
  mkdirSync(clientBin);
  const ssh = execFileSync('sh', ['-c', 'command -v ssh'], { encoding: 'utf8' }).trim();
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  writeFileSync(
    path.join(clientBin, 'ssh'),
    `#!/bin/sh\nexec ${quote(ssh)} -F ${quote(clientConfig)} "$@"\n`,
    { mode: 0o755 },
  );

  const server = await startServer(
    SSHD,
    ['-D', '-f', path.join(dir, 'sshd_config'), '-E', log],
    port,
  );
  return {
    host,
    clientBin,
    logins: () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l.includes('Accepted publickey')).length,
    viaShared(stateDir, args) {
      try {
        execFileSync(
          path.join(clientBin, 'ssh'),
          ['-o', `ControlPath="${stateDir}/ssh/%C"`, host, ...args],
          { stdio: 'ignore' },
        );
        return true;
      } catch {
        return false;
      }
    },
    stop: server.stop,
  };
}
