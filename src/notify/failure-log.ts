import type { Logger, Meta } from '../log.js';

/**
 * Quiet when failing for long: a notifier's first failure is logged, then only
 * every `every`-th or when the error changes, and its recovery once.
 */
export class FailureLog {
  private count = 0;
  private lastError = '';
  constructor(
    private readonly log: Logger,
    private readonly meta: Meta,
    private readonly every = 10,
  ) {}

  failed(error: string, extra: Meta = {}): void {
    this.count += 1;
    if (this.count === 1 || error !== this.lastError || this.count % this.every === 0) {
      this.log.warn(
        { ...this.meta, ...extra, failures: this.count, error },
        'notification delivery failed; kept in the outbox for retry',
      );
    }
    this.lastError = error;
  }

  succeeded(): void {
    if (this.count > 0)
      this.log.info({ ...this.meta, failures: this.count }, 'notification delivery works again');
    this.count = 0;
    this.lastError = '';
  }
}
