import { Daemon } from '../../daemon/daemon.js';
import { resolveConfigPath } from '../../config/load.js';
import { SystemdNotifier } from '../../daemon/sd-notify.js';
import { createLogger } from '../../log.js';

/** `stagepost run`: the daemon, until SIGTERM/SIGINT (exit 0). SIGHUP reloads ci.yaml. */
export async function runCommand(opts: { config?: string; httpPort?: number }): Promise<number> {
  const log = createLogger();
  const systemd = SystemdNotifier.fromEnv(process.env);
  // Signals are taken before start-up (recovery can take seconds): a stop
  // asked for meanwhile is carried out as soon as the daemon is up.
  let daemon: Daemon | null = null;
  let stopAsked: string | null = null;
  let signals = 0;
  let resolveExit: (code: number) => void = () => undefined;
  const exit = new Promise<number>((resolve) => {
    resolveExit = resolve;
  });
  const stop = (signal: string) => {
    signals += 1;
    if (!daemon) {
      stopAsked = signal;
      return;
    }
    if (signals > 1) {
      log.warn({ signal }, 'second signal');
      daemon.interruptNow();
      return;
    }
    log.info({ signal }, 'shutting down');
    void systemd.stopping(log);
    void daemon.stop().then(
      () => resolveExit(0),
      (err) => {
        log.error({ error: err }, 'shutdown failed');
        resolveExit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    log.info({}, 'SIGHUP: reloading ci.yaml');
    void daemon?.reload();
  });

  daemon = await Daemon.start({
    configFile: resolveConfigPath(opts.config, process.env, process.cwd()),
    log,
    ...(opts.httpPort ? { httpPort: opts.httpPort } : {}),
  });
  // Only now, so `systemctl start` waits for a loaded config and a listening
  // port, and fails when start-up fails (a bad ci.yaml exits 2 before this).
  await systemd.ready('polling; ci.yaml loaded', log);
  if (stopAsked) {
    signals = 0;
    stop(stopAsked);
  }
  return exit;
}
