/**
 * sd_notify(3) for the unit's Type=notify: READY=1 once ci.yaml is loaded and
 * the HTTP port listens, STOPPING=1 when a stop begins. Node has no unix
 * datagram sockets, and the npm bindings need a native build, so the message
 * goes through systemd-notify(1); being a child of the daemon, it needs
 * NotifyAccess=all in the unit. systemd-notify waits until systemd has taken
 * the message (its barrier), so none is lost when it exits at once.
 */
import type { Logger } from '../log.js';
import { describeFailure, run } from '../util/exec.js';

const TIMEOUT_MS = 10_000;

export class SystemdNotifier {
  private constructor(private readonly socket: string | undefined) {}

  /**
   * Takes NOTIFY_SOCKET out of `env` (as sd_notify's unset_environment does):
   * with NotifyAccess=all, an sd_notify-aware app server started by a build
   * step would otherwise report its own READY=1 or MAINPID= as the daemon's.
   */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): SystemdNotifier {
    const socket = env.NOTIFY_SOCKET || undefined;
    delete env.NOTIFY_SOCKET;
    return new SystemdNotifier(socket);
  }

  /** Not started by systemd with Type=notify: every message is skipped. */
  get enabled(): boolean {
    return this.socket !== undefined;
  }

  ready(status: string, log: Logger): Promise<boolean> {
    return this.send(['READY=1', `STATUS=${status}`], log);
  }

  stopping(log: Logger): Promise<boolean> {
    return this.send(['STOPPING=1', 'STATUS=stopping: running builds may finish'], log);
  }

  private async send(assignments: string[], log: Logger): Promise<boolean> {
    if (!this.socket) return false;
    // Only what systemd-notify needs: no secret of the daemon's environment.
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', NOTIFY_SOCKET: this.socket };
    const result = await run('systemd-notify', assignments, { env, timeoutMs: TIMEOUT_MS });
    if (result.exitCode === 0) {
      log.debug({ message: assignments[0] }, 'told systemd');
      return true;
    }
    log.error(
      {
        message: assignments[0],
        error: `systemd-notify: ${describeFailure(result)} ${result.stderr.trim()}`.trim(),
        hint: 'install systemd-notify (package systemd), or set Type=exec in a drop-in of the unit',
      },
      'cannot tell systemd',
    );
    return false;
  }
}
