import { formatDuration } from '../util/duration.js';

/**
 * Bounds one build's checkout whatever the VCS: it is ended when it takes
 * longer than `builds.checkout_timeout`, or when its transfer shows no
 * progress (no output from the child) for `builds.checkout_stall`. A remote
 * that hangs mid-fetch then frees its build slot instead of holding it for
 * the step timeout while every other branch waits.
 */
export interface CheckoutGuard {
  /** Aborted by the guard or by the build's own signal (shutdown). */
  signal: AbortSignal;
  /** Feed every chunk of the checkout's output through this. */
  progress(): void;
  /** Why the guard ended the checkout, or null. */
  reason(): string | null;
  dispose(): void;
}

export function guardCheckout(options: {
  timeoutMs: number;
  stallMs: number;
  signal?: AbortSignal;
}): CheckoutGuard {
  const controller = new AbortController();
  let why: string | null = null;
  const end = (reason: string) => {
    if (why) return;
    why = reason;
    controller.abort();
  };
  const deadline = setTimeout(
    () =>
      end(
        `checkout took longer than ${formatDuration(options.timeoutMs)} (builds.checkout_timeout); ended`,
      ),
    options.timeoutMs,
  );
  let stall: NodeJS.Timeout | undefined;
  const rearm = () => {
    clearTimeout(stall);
    stall = setTimeout(
      () =>
        end(
          `checkout showed no progress for ${formatDuration(options.stallMs)} (builds.checkout_stall): the remote stopped answering; ended`,
        ),
      options.stallMs,
    );
  };
  rearm();
  return {
    signal: options.signal
      ? AbortSignal.any([options.signal, controller.signal])
      : controller.signal,
    progress: rearm,
    reason: () => why,
    dispose: () => {
      clearTimeout(deadline);
      clearTimeout(stall);
    },
  };
}
