import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { DaemonApi } from '../api.js';
import { redactor } from '../util/redact.js';

/**
 * The daemon's HTTP listener, following `http:` of ci.yaml: started, moved or
 * stopped when a reload changes its address or token, left alone otherwise.
 */
export class HttpHost {
  private server: { url: string; close(): Promise<void> } | null = null;
  private key = '';

  constructor(
    private readonly api: DaemonApi,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  get url(): string | undefined {
    return this.server?.url;
  }

  async apply(config: Config): Promise<void> {
    const http = config.http;
    // Host names the listener answers besides its own address (DNS rebinding).
    const publicHosts = http?.publicUrlSet ? [new URL(http.publicUrl).hostname] : [];
    const key = http
      ? `${http.host}:${http.port}:${http.token ?? ''}:${http.publicLogs}:${publicHosts.join()}`
      : '';
    if (key === this.key) return;
    await this.close();
    this.key = key;
    if (!http) return;
    // Loaded only when configured: fastify is the largest part of a resting daemon's memory.
    const { startHttpServer } = await import('../http/server.js');
    this.server = await startHttpServer({
      host: http.host,
      port: http.port,
      token: http.token,
      publicLogs: http.publicLogs,
      publicHosts,
      api: this.api,
      metrics: this.metrics,
      log: this.log,
      redact: (t: string) => redactor.redact(t),
    });
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.key = '';
    await server?.close();
  }
}
