import type { BranchConfig, Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { MailCatcher } from '../site/mail-catcher.js';

/**
 * One mail catcher per branch with `smtp_port`, following ci.yaml: a catcher
 * whose branch, port or relay changed is replaced, one no longer wanted stops.
 */
export class MailCatchers {
  private readonly running = new Map<string, MailCatcher>();

  constructor(
    private readonly log: Logger,
    private readonly onCaught: (branch: string) => void,
  ) {}

  async apply(config: Config): Promise<void> {
    const wanted = new Map<string, BranchConfig>();
    for (const b of config.branches)
      if (b.smtpPort)
        wanted.set(`${b.name}:${b.smtpPort}:${b.mailout}:${config.site.smtpRelay ?? ''}`, b);
    for (const [key, catcher] of this.running) {
      if (!wanted.has(key)) {
        await catcher.stop();
        this.running.delete(key);
      }
    }
    for (const [key, b] of wanted) {
      if (this.running.has(key)) continue;
      // Loaded only when a branch has a catcher: smtp-server is not small.
      const { MailCatcher } = await import('../site/mail-catcher.js');
      const catcher = new MailCatcher({
        branch: b.name,
        port: b.smtpPort!,
        host: '127.0.0.1',
        stateDir: config.stateDir,
        keep: 300,
        relay: b.mailout && config.site.smtpRelay ? { url: config.site.smtpRelay } : null,
        log: this.log.child({ branch: b.name }),
      });
      catcher.on('caught', () => this.onCaught(b.name));
      try {
        await catcher.start();
        this.running.set(key, catcher);
      } catch (err) {
        this.log.error(
          { branch: b.name, port: b.smtpPort, error: err },
          'mail catcher could not start',
        );
      }
    }
  }

  async stop(): Promise<void> {
    for (const c of this.running.values()) await c.stop();
    this.running.clear();
  }
}
