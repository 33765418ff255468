// stdout closed by its reader (`fragfs ls STORE KEY | head -1`): like other Unix tools, fragfs then
// ends quietly with exit 0 instead of a stack trace. The command goes on as if its output had been
// read (a snapshot still releases its lock); a stream of file content stops at the next write.

/** Whether the reader of stdout has gone: every later write is dropped. */
let readerGone = false;

/** A write failure that only says the reader of stdout has gone. */
export function isClosedStdout(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EPIPE' || (readerGone && code === 'ERR_STREAM_DESTROYED');
}

/** Installs the handler; once, before any command writes. */
export function quietOnClosedStdout(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (isClosedStdout(e)) {
      readerGone = true;
      return;
    }
    throw e;
  });
  const write = process.stdout.write.bind(process.stdout) as (...args: unknown[]) => boolean;
  process.stdout.write = ((...args: unknown[]): boolean => {
    if (!readerGone) return write(...args);
    const cb = args.find((a): a is (e?: Error) => void => typeof a === 'function');
    if (cb) {
      const e: NodeJS.ErrnoException = new Error('write EPIPE');
      e.code = 'EPIPE';
      process.nextTick(cb, e);
    }
    return true;
  }) as typeof process.stdout.write;
}
