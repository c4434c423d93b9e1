/**
 * A reader that stops early (`stagepost status | head -1`) closes our stdout;
 * the next write fails with EPIPE. That is the reader's choice, not an error
 * of the command: it ends quietly with status 0 instead of a stack trace.
 */
export function endQuietlyWhenStdoutCloses(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') process.exit(0);
    throw err;
  });
}

/**
 * For a command that must still clean up after its reader went away (the
 * demo): later writes are dropped, and nothing is thrown at the process.
 */
export function dropWritesWhenStdoutCloses(): { write: (text: string) => void } {
  let closed = false;
  process.stdout.on('error', () => {
    closed = true;
  });
  return {
    write: (text) => {
      if (!closed && !process.stdout.destroyed) process.stdout.write(text);
    },
  };
}
