import type { Logger } from '../log.js';
import type { DaemonApi } from '../api.js';

/** What every route module gets from the server. */
export interface HttpContext {
  api: DaemonApi;
  log: Logger;
  redact: (text: string) => string;
}
