import path from 'node:path';
import type { Logger } from '../log.js';
import type { PluginContext } from '../plugin-api.js';
import { run } from '../util/exec.js';
import { redactor } from '../util/redact.js';
import { sharedSshWords } from '../util/ssh.js';

/**
 * The one place a plugin context is made, so the daemon, the foreground
 * commands and `check` hand every plugin the same state folder and the same
 * runner: a plugin that works under `check` works in the daemon.
 */
export function createPluginContext(
  stateDir: string,
  log: Logger,
  redact: (text: string) => string = (t) => redactor.redact(t),
): PluginContext {
  const dir = path.join(stateDir, 'plugins');
  return { log, stateDir: dir, redact, run, sshWords: () => sharedSshWords(dir) };
}
