/**
 * Poll `check` until it holds, for what no event announces (a process the
 * kernel reaps, a file another process writes); throws naming `what` after
 * `timeoutMs`. Anything that logs or emits an event is awaited on that instead.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
