// How a remote service's failure is classified: worth a retry (a dropped connection, a timeout, a
// 5xx or a throttle), a refusal of the credentials, a full service, or final. Each service's
// backend throws these; ResilientBackend retries the first kind and turns the last failure into one
// FragfsError with a documented exit code.

import { FragfsError } from '../errors.js';

export type FailureKind = 'retry' | 'auth' | 'no-space' | 'final';

export class RemoteFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    o: { cause?: unknown } = {},
  ) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = 'RemoteFailure';
  }
}

/** Node's errno codes of a network failure that a new connection may not meet. */
const TRANSIENT_ERRNOS = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Whether a raw error (from node:net, http, a service SDK) looks like a network failure. */
export function isTransientNetworkError(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_ERRNOS.has(code)) return true;
    const name = (cur as { name?: unknown }).name;
    if (name === 'TimeoutError' || name === 'AbortError') return true;
  }
  return false;
}

/** The one FragfsError a failure that retries did not cure becomes. */
export function failureToError(e: unknown, what: string, url: string, attempts: number): FragfsError {
  if (e instanceof FragfsError) return e;
  const tries = attempts > 1 ? ` (${attempts} attempts)` : '';
  if (e instanceof RemoteFailure) {
    switch (e.kind) {
      case 'auth':
        return new FragfsError('REMOTE_AUTH', `${url}: ${what}: access refused: ${e.message}`, { cause: e, path: url });
      case 'no-space':
        return new FragfsError('NO_SPACE', `${url}: ${what}: the remote store is full: ${e.message}`, { cause: e, path: url });
      default:
        return new FragfsError('REMOTE', `${url}: ${what}: ${e.message}${tries}`, { cause: e, path: url });
    }
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new FragfsError('REMOTE', `${url}: ${what}: ${msg}${tries}`, { cause: e, path: url });
}
