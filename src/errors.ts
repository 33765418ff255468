// The one error type of fragfs: a code that maps to an errno (for the vfs/FUSE side) and to a
// documented CLI exit code (README "Exit codes"). Anything thrown that is not a FragfsError is a bug.

import { constants as osConstants } from 'node:os';

/** Every failure a user, a program on the mount or a damaged store can cause. */
export const ERROR_CODES = {
  //          errno name     exit  meaning
  USAGE: ['EINVAL', 2, 'bad command-line usage or option value'],
  INVALID: ['EINVAL', 2, 'an argument is out of range or malformed'],
  NO_STORE: ['ENOENT', 3, 'no fragfs store at that path'],
  STORE_EXISTS: ['EEXIST', 3, 'a store already exists at that path'],
  BAD_STORE: ['EIO', 3, 'the store configuration is unreadable or of an unknown version'],
  NO_PASSPHRASE: ['EACCES', 4, 'no passphrase given and no terminal to ask on'],
  BAD_PASSPHRASE: ['EACCES', 4, 'the passphrase does not open this store'],
  BAD_IDENTITY: ['EACCES', 4, 'no key of the store is sealed to the given identity'],
  BAD_KEY: ['EINVAL', 5, 'a meta key that is not 64 hex digits or a known snapshot name'],
  NOT_FOUND: ['ENOENT', 5, 'a path, meta key or snapshot that does not exist'],
  CORRUPT: ['EIO', 6, 'a fragment failed its checks (crc32, hash or AEAD tag)'],
  MISSING_FRAGMENT: ['EIO', 6, 'a fragment the tree needs is not in the store'],
  NO_SPACE: ['ENOSPC', 7, 'the disk is full'],
  IO: ['EIO', 8, 'an input/output error reading or writing local files'],
  PERMISSION: ['EACCES', 8, 'permission denied on a local file'],
  LOCKED: ['EBUSY', 9, 'the store is mounted read-write by another process'],
  BUSY: ['EBUSY', 9, 'the mount point is busy'],
  EXISTS: ['EEXIST', 10, 'the target already exists'],
  NOT_DIR: ['ENOTDIR', 10, 'a path component is not a directory'],
  IS_DIR: ['EISDIR', 10, 'the target is a directory'],
  NOT_EMPTY: ['ENOTEMPTY', 10, 'the directory is not empty'],
  NAME_TOO_LONG: ['ENAMETOOLONG', 10, 'a name is longer than 255 bytes'],
  READ_ONLY: ['EROFS', 10, 'the mount or store is read-only'],
  NO_ATTR: ['ENODATA', 10, 'no such extended attribute'],
  NOT_SUPPORTED: ['ENOTSUP', 10, 'the operation is not supported'],
  BAD_FD: ['EBADF', 10, 'the file handle is not open'],
  FILE_TOO_BIG: ['EFBIG', 10, 'the file would exceed the largest size fragfs handles'],
  LOOP: ['ELOOP', 10, 'too many levels of symbolic links'],
  CROSS_DEVICE: ['EXDEV', 10, 'a link across devices'],
  NOT_PERMITTED: ['EPERM', 10, 'the operation is not permitted'],
  RANGE: ['ERANGE', 10, 'a buffer is too small for the value'],
  REMOTE: ['EIO', 12, 'a remote store could not be reached, timed out or failed, also after retries'],
  REMOTE_AUTH: ['EACCES', 12, 'a remote store refused the credentials or the access'],
  INCOMPLETE: ['EIO', 11, 'completed with warnings: some files changed, vanished or could not be read while they were stored'],
  INTERRUPTED: ['EINTR', 130, 'interrupted by a signal'],
} as const satisfies Record<string, readonly [string, number, string]>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The exit code a bug (anything not a FragfsError) leaves with: EX_SOFTWARE from sysexits.h. */
export const BUG_EXIT_CODE = 70;

export interface FragfsErrorDetails {
  /** Hex id of the fragment involved, for corruption and missing fragments. */
  fragmentId?: string;
  /** The file or tree path involved (in the tree or on local disk). */
  path?: string;
  cause?: unknown;
}

/** FRAGFS_DEBUG set: FragfsErrors carry stacks (the CLI prints them). */
const STACKS = Boolean(process.env['FRAGFS_DEBUG']);

export class FragfsError extends Error {
  readonly code: ErrorCode;
  fragmentId?: string;
  path?: string;

  constructor(code: ErrorCode, message: string, details: FragfsErrorDetails = {}) {
    // A FragfsError is an expected outcome (ENOENT on a lookup, ENODATA on a getxattr), answered
    // thousands of times a second on a mount and printed as one line: capturing a stack costs more
    // than the lookup itself and nobody reads it, unless FRAGFS_DEBUG asks for it. Its `cause`
    // keeps its own stack.
    const stackTraceLimit = Error.stackTraceLimit;
    if (!STACKS) Error.stackTraceLimit = 0;
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    Error.stackTraceLimit = stackTraceLimit;
    this.name = 'FragfsError';
    this.code = code;
    if (details.fragmentId !== undefined) this.fragmentId = details.fragmentId;
    if (details.path !== undefined) this.path = details.path;
  }

  /** errno name, e.g. 'ENOENT'. */
  get errnoName(): string {
    return ERROR_CODES[this.code][0];
  }

  /** Positive errno number for this platform (fuse-native wants it negated). */
  get errno(): number {
    const n = (osConstants.errno as Record<string, number>)[this.errnoName];
    return n ?? (osConstants.errno.EIO as number);
  }

  get exitCode(): number {
    return ERROR_CODES[this.code][1];
  }
}

export function isFragfsError(e: unknown, code?: ErrorCode): e is FragfsError {
  return e instanceof FragfsError && (code === undefined || e.code === code);
}

/** Errno names from node:fs errors that are a user's or the environment's doing, not a bug. */
const FS_ERRNO_TO_CODE: Record<string, ErrorCode> = {
  ENOENT: 'NOT_FOUND',
  EACCES: 'PERMISSION',
  EPERM: 'PERMISSION',
  ENOSPC: 'NO_SPACE',
  EDQUOT: 'NO_SPACE',
  EIO: 'IO',
  EEXIST: 'EXISTS',
  ENOTDIR: 'NOT_DIR',
  EISDIR: 'IS_DIR',
  ENOTEMPTY: 'NOT_EMPTY',
  ENAMETOOLONG: 'NAME_TOO_LONG',
  EROFS: 'READ_ONLY',
  ELOOP: 'LOOP',
  EBUSY: 'BUSY',
  EMFILE: 'IO',
  ENFILE: 'IO',
  EFBIG: 'FILE_TOO_BIG',
};

/**
 * Turns a node:fs error into a FragfsError naming the path; anything else is rethrown untouched
 * so a bug keeps its stack.
 */
export function fromFsError(e: unknown, what: string, path?: string): FragfsError {
  if (e instanceof FragfsError) return e;
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  const code = errno === undefined ? undefined : FS_ERRNO_TO_CODE[errno];
  if (code === undefined) throw e;
  const where = path ?? (e as NodeJS.ErrnoException).path;
  const reason = ERROR_CODES[code][2];
  return new FragfsError(code, `${what}${where ? ` ${where}` : ''}: ${reason} (${errno})`, {
    path: where,
    cause: e,
  });
}
