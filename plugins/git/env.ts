import type { SshWords } from 'stagepost/plugin-api';

const shellQuote = (s: string) =>
  /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The environment of every git child: never prompt (a prompt would hang a poll
 * until its timeout), C locale (stderr is parsed), and ssh with one shared
 * connection per host (the context's sshWords). A GIT_SSH_COMMAND or GIT_SSH the
 * operator set wins: they chose their ssh deliberately.
 */
export function gitEnvironment(
  sshWords: () => SshWords,
  base: NodeJS.ProcessEnv,
): { env: NodeJS.ProcessEnv; sharedSsh: boolean } {
  const env: NodeJS.ProcessEnv = { ...base, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C', LANGUAGE: 'C' };
  if (env.GIT_SSH_COMMAND || env.GIT_SSH) return { env, sharedSsh: false };
  const ssh = sshWords();
  // git runs GIT_SSH_COMMAND through sh.
  env.GIT_SSH_COMMAND = [...ssh.base, ...ssh.sharing].map(shellQuote).join(' ');
  return { env, sharedSsh: ssh.sharing.length > 0 };
}
