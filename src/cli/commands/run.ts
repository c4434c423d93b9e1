import { Daemon } from '../../daemon/daemon.js';
import { resolveConfigPath } from '../../config/load.js';
import { createLogger } from '../../log.js';

/** `stagepost run`: the daemon, until SIGTERM/SIGINT (exit 0). SIGHUP reloads ci.yaml. */
export async function runCommand(opts: { config?: string }): Promise<number> {
  const log = createLogger();
  const daemon = await Daemon.start({ configFile: resolveConfigPath(opts.config, process.env, process.cwd()), log });
  return new Promise<number>((resolve) => {
    let signals = 0;
    const stop = (signal: string) => {
      signals += 1;
      if (signals > 1) {
        log.warn({ signal }, 'second signal');
        daemon.interruptNow();
        return;
      }
      log.info({ signal }, 'shutting down');
      void daemon.stop().then(() => resolve(0), (err) => { log.error({ error: err }, 'shutdown failed'); resolve(1); });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => { log.info({}, 'SIGHUP: reloading ci.yaml'); void daemon.reload(); });
  });
}
