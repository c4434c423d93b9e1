import http from 'node:http';
import https from 'node:https';
import type { BranchConfig, Config, HealthSettings } from '../config/types.js';

export interface HealthOptions {
  urls: string[];
  expect: HealthSettings['expect'];
  timeoutMs: number;
  intervalMs?: number;
  /** Bound of a single request; default 5s (less when the budget is nearly spent). */
  requestTimeoutMs?: number;
  signal?: AbortSignal;
  onAttempt?: (url: string, statusOrError: number | string) => void;
}

export interface HealthUrlResult {
  url: string;
  ok: boolean;
  /** The last status seen. */
  status?: number;
  /** The last error seen, when there was no status. */
  error?: string;
  attempts: number;
}

export interface HealthReport {
  ok: boolean;
  results: HealthUrlResult[];
}

/** The health url template filled in for each customer of the branch. */
export function healthUrls(config: Config, branch: BranchConfig): string[] {
  const template = branch.health?.url ?? config.health?.url;
  if (!template) return [];
  return branch.customers.map((customer) =>
    template.replace(/\{(branch|customer|port)\}/g, (_, key: string) =>
      key === 'branch' ? branch.name : key === 'customer' ? customer : String(branch.port ?? ''),
    ),
  );
}

export function statusAccepted(status: number, expect: HealthSettings['expect']): boolean {
  return expect.some((r) => status >= r.min && status <= r.max);
}

/**
 * After the steps, every customer URL must answer with an accepted status
 * before the health timeout. An app server takes a while to come up after a
 * restart, so each URL is retried with short pauses; each request is bounded
 * on its own, so one that hangs cannot eat the whole budget.
 */
export async function checkHealth(opts: HealthOptions): Promise<HealthReport> {
  const deadline = Date.now() + opts.timeoutMs;
  const results = await Promise.all(opts.urls.map((url) => checkUrl(url, deadline, opts)));
  return { ok: results.every((r) => r.ok), results };
}

async function checkUrl(
  url: string,
  deadline: number,
  opts: HealthOptions,
): Promise<HealthUrlResult> {
  const interval = opts.intervalMs ?? 500;
  const result: HealthUrlResult = { url, ok: false, attempts: 0 };
  for (;;) {
    const remaining = deadline - Date.now();
    result.attempts += 1;
    const outcome = await probe(
      url,
      Math.min(opts.requestTimeoutMs ?? 5000, Math.max(remaining, 250)),
      opts.signal,
    );
    if (typeof outcome === 'number') {
      result.status = outcome;
      delete result.error;
    } else {
      result.error = outcome;
      delete result.status;
    }
    opts.onAttempt?.(url, outcome);
    if (typeof outcome === 'number' && statusAccepted(outcome, opts.expect)) {
      result.ok = true;
      return result;
    }
    const wait = Math.min(interval, deadline - Date.now());
    if (wait <= 0 || opts.signal?.aborted) return result;
    await pause(wait, opts.signal);
  }
}

/** One GET: the status, or a description of why there was none. */
function probe(url: string, timeoutMs: number, signal?: AbortSignal): Promise<number | string> {
  return new Promise((resolve) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      resolve(`not a URL: ${url}`);
      return;
    }
    const client = parsed.protocol === 'https:' ? https : parsed.protocol === 'http:' ? http : null;
    if (!client) {
      resolve(`unsupported protocol ${parsed.protocol}`);
      return;
    }
    // No keep-alive: the next attempt must see the server as it is now.
    const req = client.get(
      parsed,
      { agent: false, timeout: timeoutMs, signal, headers: { 'user-agent': 'stagepost-health' } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs}ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (signal?.aborted) resolve('interrupted');
      else if (err.code === 'ECONNREFUSED') resolve('connection refused');
      else
        resolve(
          err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message,
        );
    });
  });
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
