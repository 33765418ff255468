// Ends a wait when a call is aborted, even if the work behind it cannot be stopped: the work goes
// on and cleans up after itself, and its result is dropped. Every layer that honours a signal on a
// call that ignores one (a connection handshake, an SDK promise) waits through this.

/** Rejects with the signal's reason as soon as it fires; without a signal, `p` itself. */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}
