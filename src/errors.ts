/**
 * One error type for everything a user can act on. `code` is stable (tests and
 * the CLI key on it); `message` says what happened, where, and what to do.
 */
export type ErrorCode =
  | 'ECONFIG' // ci.yaml is invalid (exit 2)
  | 'ECONFIGMISSING' // ci.yaml not found (exit 2)
  | 'EUSAGE' // bad command line (exit 2)
  | 'ENOBRANCH' // branch not in ci.yaml (exit 2: the argument is wrong)
  | 'EREMOTE' // a remote query failed
  | 'ECHECKOUT' // bringing a checkout to a revision failed
  | 'ELOCKED' // another process holds the lock
  | 'ESTATE' // state_dir unreadable or unwritable
  | 'EPLUGIN' // a plugin failed to load or has the wrong shape
  | 'ENOTIFY' // a notifier failed
  | 'EEXISTS' // something exists that must not
  | 'ECLUSTER' // the cluster's database cannot be reached or set up
  | 'ENOTFOUND'; // something asked for does not exist

export class StagepostError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;
  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StagepostError';
    this.code = code;
    this.details = options.details;
  }
}

/** Exit status of SPEC: 2 bad config or usage, 1 anything else that failed. */
export function exitCodeFor(err: unknown): number {
  if (
    err instanceof StagepostError &&
    (err.code === 'ECONFIG' ||
      err.code === 'ECONFIGMISSING' ||
      err.code === 'EUSAGE' ||
      err.code === 'ENOBRANCH')
  )
    return 2;
  return 1;
}

/**
 * The message of anything thrown. Read as a property, not through
 * `instanceof Error`: an error from another realm (a plugin run in jest's vm
 * contexts) is no instance of this realm's Error.
 */
export function errorMessage(err: unknown): string {
  const message = (err as { message?: unknown } | null | undefined)?.message;
  return typeof message === 'string' ? message : String(err);
}
