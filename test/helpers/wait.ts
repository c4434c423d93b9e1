import { readFileSync } from 'node:fs';

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

/**
 * The pid a shell writes with `echo $$ > file`, once the whole line is there:
 * the shell creates the file before it writes, so a file that exists may still be empty.
 */
export async function pidFromFile(file: string, timeoutMs = 30_000): Promise<number> {
  let pid = 0;
  await until(
    () => {
      try {
        const match = /^(\d+)\n/.exec(readFileSync(file, 'utf8'));
        pid = match ? Number(match[1]) : 0;
      } catch {
        pid = 0;
      }
      return pid > 0;
    },
    `a pid in ${file}`,
    timeoutMs,
  );
  return pid;
}
