// The interface every remote service implements (S3, SFTP, Azure Blob, rclone): a flat namespace
// of keys holding whole objects. ObjectStore builds the fragfs Store contract on top of it, and
// ResilientBackend adds bounded concurrency, timeouts and retries around any of them, so a
// service's own file only translates calls and classifies its errors.

/** One object found by `list`: its full key and its size in bytes. */
export interface ObjectEntry {
  readonly key: string;
  readonly size: number;
}

export interface PutOptions {
  /**
   * Create only: write nothing and resolve `false` when the key exists (S3 `If-None-Match: *`,
   * Azure `ifNoneMatch: *`, SFTP exclusive open, rclone's create). Used for leases.
   */
  readonly ifAbsent?: boolean;
}

export interface CallOptions {
  /** Aborts the call; the backend MUST reject promptly once it fires (ResilientBackend's timeout). */
  readonly signal?: AbortSignal;
}

/**
 * The contract, checked by test/remote/object-conformance.ts on every service.
 *
 * - Keys are relative paths of [A-Za-z0-9._-] segments joined by '/', no empty segment, no '.' or
 *   '..' segment, at most 512 bytes (checkObjectKey). The backend maps them under its own root
 *   (bucket prefix, folder, container prefix); two keys never alias, and a key MUST NOT be both an
 *   object and the first segments of another object's key (fragfs never asks for that).
 * - `put` MUST be atomic: a reader sees no object or all of it, never a prefix, also after a failed
 *   or aborted call and after the process is killed. When it resolves, the object MUST be durable
 *   in the service. A put over an existing key replaces it atomically. With `ifAbsent`, the put
 *   MUST resolve `false` and change nothing when the key exists, and of several concurrent creates
 *   of one key (from any machines) exactly one MUST resolve `true`.
 * - `get` MUST resolve the exact bytes, or `undefined` when the key does not exist.
 * - `size` MUST resolve the object's size, or `undefined` when it does not exist.
 * - `delete` of a missing key MUST succeed.
 * - `list(prefix)`: `prefix` is '' or ends with '/'. It MUST yield every object whose key starts with
 *   `prefix` (at any depth) that existed when the listing began and was not deleted meanwhile, each
 *   once, in any order; objects made meanwhile MAY appear.
 * - Failures MUST reject with a RemoteFailure (remote-failure.ts) that says whether a retry can
 *   help, or with a FragfsError for what is not the service's doing. A call MUST NOT hang: a backend
 *   honours `signal`, and ResilientBackend bounds every call with one.
 * - `close` MUST release connections and child processes; no call is made after it.
 */
export interface ObjectBackend {
  /** The store's URL as the user gave it, without secrets: for messages. */
  readonly url: string;
  /** How many calls the service takes at once to full speed (ResilientBackend's default bound). */
  readonly parallelism: number;
  get(key: string, o?: CallOptions): Promise<Uint8Array | undefined>;
  /**
   * MAY be given by a service that reads part of an object in one request (S3 and rclone's Range,
   * Azure's offset and count, SFTP's read at an offset): `length` (at least 1) bytes from `offset`.
   * MUST resolve `undefined` when the key does not exist, and the bytes of the object from
   * `offset` up to its end (fewer than asked, possibly none) when it ends before offset + length;
   * never a byte that is not the object's. Without it, callers read the whole object.
   */
  getRange?(key: string, offset: number, length: number, o?: CallOptions): Promise<Uint8Array | undefined>;
  put(key: string, bytes: Uint8Array, o?: PutOptions & CallOptions): Promise<boolean>;
  size(key: string, o?: CallOptions): Promise<number | undefined>;
  delete(key: string, o?: CallOptions): Promise<void>;
  list(prefix: string, o?: CallOptions): AsyncIterable<ObjectEntry>;
  close(): Promise<void>;
}

const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;
export const MAX_OBJECT_KEY_BYTES = 512;

/** Entry-point check of an object key (see the contract); throws a TypeError, as it is always a bug. */
export function checkObjectKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_OBJECT_KEY_BYTES) {
    throw new TypeError(`not an object key: ${String(key).slice(0, 80)}`);
  }
  for (const seg of key.split('/')) {
    if (!SEGMENT_RE.test(seg) || seg === '.' || seg === '..') throw new TypeError(`not an object key: ${key.slice(0, 80)}`);
  }
}

/** Entry-point check of a list prefix: '' or a key followed by '/'. */
export function checkListPrefix(prefix: string): void {
  if (prefix === '') return;
  if (!prefix.endsWith('/')) throw new TypeError(`a list prefix ends with '/': ${prefix.slice(0, 80)}`);
  checkObjectKey(prefix.slice(0, -1));
}
