// The fragfs data block codec (seed 000): plaintext block -> stored fragment bytes + fragment id +
// block key, and back with every check. docs/FORMAT.md "Data fragments" is the normative text.
//
//   key = keyed BLAKE3(convergence secret, P)                       32 bytes
//   C   = zstd level 1 (P) if strictly shorter than P, else P
//   E   = AES-256-GCM(key, nonce = 12 zero bytes, C) = ciphertext || tag(16)   (or C when not encrypted)
//   S   = status || crc32(E) big-endian uint32 || E
//   id  = lowercase hex BLAKE3-256(S)
//
// The zero nonce is safe because a key is only ever used for one plaintext: the key is a function
// of that plaintext, so the same (key, nonce) pair always encrypts the same bytes.

import { createCipheriv, createDecipheriv } from 'node:crypto';
import { createRequire } from 'node:module';
import { crc32 } from 'node:zlib';
import { FragfsError } from '../errors.js';
import { blake3, blake3Keyed, isHexId, toHex } from './blake3.js';
import { MAX_BLOCK_SIZE } from './block-size.js';
import { STATUS_COMPRESSED, STATUS_ENCRYPTED, STATUS_RESERVED_MASK, STORED_HEADER_LEN } from './status-byte.js';

// The low-level binding lets us compress into a reused scratch buffer and decompress into a buffer
// whose size we bound; it is CommonJS with a native module, hence createRequire.
const zstd = createRequire(import.meta.url)('zstd-napi/binding.js') as typeof import('zstd-napi/binding.js');

export const BLOCK_KEY_LEN = 32;
export const CONVERGENCE_SECRET_LEN = 32;
export const GCM_TAG_LEN = 16;
export const GCM_NONCE_LEN = 12;
export const ZSTD_LEVEL = 1;

const ZERO_NONCE = new Uint8Array(GCM_NONCE_LEN);

export interface EncodeOptions {
  /** Try zstd (kept only when strictly smaller). Default true. */
  compress?: boolean;
  /** AES-256-GCM the payload. Default true; false is for tests and the format's unencrypted variant. */
  encrypt?: boolean;
  /**
   * Memory for the stored bytes: when it holds storedCapacity(plain.length) bytes or more, `stored`
   * is a view of its start (a writer reuses such buffers: memory already touched, no garbage).
   */
  into?: Uint8Array;
}

/** The most bytes a block of `plainBytes` can take stored: header, the payload uncompressed, GCM tag. */
export function storedCapacity(plainBytes: number): number {
  return STORED_HEADER_LEN + plainBytes + GCM_TAG_LEN;
}

export interface EncodedBlock {
  /** Fragment id: lowercase hex BLAKE3-256 of `stored`. */
  id: string;
  /** Block key: keyed BLAKE3(convergence secret, plaintext), 32 bytes. */
  key: Uint8Array;
  /** The fragment bytes to put in the store; owns its whole ArrayBuffer (transferable), except from CodecPool.encodeBulk (a view). */
  stored: Uint8Array;
  plainSize: number;
  /** True when the payload is zstd-compressed (status bit 7). */
  compressed: boolean;
}

/** What a reader knows about a block before fetching it (a BlockRef, `plainSize` optional). */
export interface DecodeRef {
  id: string;
  key: Uint8Array;
  plainSize?: number;
}

// One compression context and scratch buffer per thread (each worker loads its own copy of this
// module). Safe because encodeBlock is synchronous and consumes the scratch before returning.
let cctx: InstanceType<typeof zstd.CCtx> | undefined;
let dctx: InstanceType<typeof zstd.DCtx> | undefined;
let scratch: Uint8Array = new Uint8Array(0);

/** zstd(plain) as a view into the scratch buffer when strictly shorter than `plain`, else undefined. */
function compressIfSmaller(plain: Uint8Array): Uint8Array | undefined {
  if (plain.length === 0) return undefined;
  const bound = zstd.compressBound(plain.length);
  if (scratch.length < bound) scratch = new Uint8Array(bound);
  cctx ??= new zstd.CCtx();
  const n = cctx.compress(scratch, plain, ZSTD_LEVEL);
  return n < plain.length ? scratch.subarray(0, n) : undefined;
}

/** Plain Uint8Array over the same memory (Buffers compare unequal to Uint8Arrays in tests, and clone as them anyway). */
function view(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** True when `b` spans its whole ArrayBuffer, so transferring that buffer moves exactly `b`. */
export function ownsBuffer(b: Uint8Array): boolean {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && !(b.buffer instanceof SharedArrayBuffer);
}

/** `b` itself when it owns its buffer, else a copy that does. */
export function owned(b: Uint8Array): Uint8Array {
  if (ownsBuffer(b)) return view(b);
  const c = new Uint8Array(b.byteLength);
  c.set(b);
  return c;
}

function checkBytes(name: string, b: unknown, len?: number): asserts b is Uint8Array {
  if (!(b instanceof Uint8Array)) throw new FragfsError('INVALID', `${name} must be a Uint8Array`);
  if (len !== undefined && b.length !== len) {
    throw new FragfsError('INVALID', `${name} must be ${len} bytes, got ${b.length}`);
  }
}

/**
 * Encodes one plaintext block. Deterministic: the same plaintext, secret and options always give
 * the same id, key and stored bytes. `plain` is not modified and may be reused after the call.
 */
export function encodeBlock(plain: Uint8Array, convergenceSecret: Uint8Array, o: EncodeOptions = {}): EncodedBlock {
  checkBytes('block plaintext', plain);
  checkBytes('convergence secret', convergenceSecret, CONVERGENCE_SECRET_LEN);
  if (plain.length > MAX_BLOCK_SIZE) {
    throw new FragfsError('INVALID', `block of ${plain.length} bytes exceeds the largest block size ${MAX_BLOCK_SIZE}`);
  }
  const doCompress = o.compress ?? true;
  const doEncrypt = o.encrypt ?? true;

  const key = blake3Keyed(convergenceSecret, plain);
  const c = doCompress ? compressIfSmaller(plain) : undefined;
  const payload = c ?? plain;
  const status = (c !== undefined ? STATUS_COMPRESSED : 0) | (doEncrypt ? STATUS_ENCRYPTED : 0);

  // S is allocated once at its final size (not from node's pool: it must own its ArrayBuffer so it
  // can be transferred), or is the start of the caller's `into`; node:crypto has no encrypt-into,
  // so the ciphertext costs one copy into S.
  const payloadLen = payload.length + (doEncrypt ? GCM_TAG_LEN : 0);
  const into = o.into;
  const stored =
    into !== undefined && into.byteLength >= STORED_HEADER_LEN + payloadLen
      ? Buffer.from(into.buffer, into.byteOffset, STORED_HEADER_LEN + payloadLen)
      : Buffer.allocUnsafeSlow(STORED_HEADER_LEN + payloadLen);
  stored[0] = status;
  if (doEncrypt) {
    const cipher = createCipheriv('aes-256-gcm', key, ZERO_NONCE, { authTagLength: GCM_TAG_LEN });
    let at = STORED_HEADER_LEN;
    at += cipher.update(payload).copy(stored, at);
    at += cipher.final().copy(stored, at);
    at += cipher.getAuthTag().copy(stored, at);
    if (at !== stored.length) throw new Error(`AES-GCM wrote ${at} of ${stored.length} bytes`); // bug
  } else {
    stored.set(payload, STORED_HEADER_LEN);
  }
  stored.writeUInt32BE(crc32(stored.subarray(STORED_HEADER_LEN)), 1);
  return { id: toHex(blake3(stored)), key, stored: view(stored), plainSize: plain.length, compressed: c !== undefined };
}

function corrupt(id: string, what: string): FragfsError {
  return new FragfsError('CORRUPT', `fragment ${id}: ${what}`, { fragmentId: id });
}

/**
 * Decodes and verifies a stored block. Checks, in order: header (length >= 5, reserved status bits
 * zero), crc32 of the payload, BLAKE3(stored) == ref.id, AEAD tag (encrypted blocks), zstd
 * (compressed blocks; output bounded by plainSize or MAX_BLOCK_SIZE), plaintext length == plainSize
 * when given. Any failure throws FragfsError CORRUPT naming the fragment; no bytes of a block that
 * failed are ever returned. The result owns its ArrayBuffer; or, with `into` large enough for the
 * plaintext, is a view of its start (a writer decoding a block under a new image; `into`'s bytes
 * past the plaintext are left as they were, and after a failure its contents are anything).
 */
export function decodeBlock(stored: Uint8Array, ref: DecodeRef, into?: Uint8Array): Uint8Array {
  checkBytes('stored block', stored);
  if (ref === null || typeof ref !== 'object' || !isHexId(ref.id)) {
    throw new FragfsError('INVALID', `block ref id must be 64 lowercase hex digits, got ${JSON.stringify(ref?.id)}`);
  }
  const id = ref.id;
  const plainSize = ref.plainSize;
  if (plainSize !== undefined && !(Number.isInteger(plainSize) && plainSize >= 0 && plainSize <= MAX_BLOCK_SIZE)) {
    throw new FragfsError('INVALID', `block ref plainSize out of range: ${plainSize}`, { fragmentId: id });
  }

  if (stored.length < STORED_HEADER_LEN) {
    throw corrupt(id, `header check failed (${stored.length} bytes, shorter than the ${STORED_HEADER_LEN}-byte header)`);
  }
  const status = stored[0]!;
  if ((status & STATUS_RESERVED_MASK) !== 0) {
    throw corrupt(id, `header check failed (reserved status bits set: 0x${status.toString(16).padStart(2, '0')})`);
  }
  const payload = stored.subarray(STORED_HEADER_LEN);
  const wantCrc = ((stored[1]! << 24) | (stored[2]! << 16) | (stored[3]! << 8) | stored[4]!) >>> 0;
  if (crc32(payload) !== wantCrc) throw corrupt(id, 'crc32 check failed');
  if (toHex(blake3(stored)) !== id) throw corrupt(id, 'BLAKE3 id check failed (the bytes do not hash to the id)');

  let c: Uint8Array = payload;
  if ((status & STATUS_ENCRYPTED) !== 0) {
    checkBytes('block key', ref.key, BLOCK_KEY_LEN);
    if (payload.length < GCM_TAG_LEN) throw corrupt(id, 'AEAD tag check failed (payload shorter than the tag)');
    const ctLen = payload.length - GCM_TAG_LEN;
    const decipher = createDecipheriv('aes-256-gcm', ref.key, ZERO_NONCE, { authTagLength: GCM_TAG_LEN });
    decipher.setAuthTag(payload.subarray(ctLen));
    const out = decipher.update(payload.subarray(0, ctLen));
    try {
      decipher.final();
    } catch {
      out.fill(0); // unauthenticated plaintext never leaves, not even in freed memory we can reach
      throw corrupt(id, 'AEAD tag check failed (wrong key or altered ciphertext)');
    }
    c = out;
  }

  let plain: Uint8Array;
  if ((status & STATUS_COMPRESSED) !== 0) {
    plain = decompressBounded(id, c, plainSize ?? MAX_BLOCK_SIZE, plainSize !== undefined, into);
  } else if (into !== undefined && into.byteLength >= c.length) {
    into.set(c);
    plain = new Uint8Array(into.buffer, into.byteOffset, c.length);
  } else {
    // An unencrypted payload is a view into `stored`; the caller gets its own copy.
    plain = c === payload ? new Uint8Array(payload) : owned(c);
  }
  if (plainSize !== undefined && plain.length !== plainSize) {
    throw corrupt(id, `plain size check failed (expected ${plainSize} bytes, got ${plain.length})`);
  }
  return plain;
}

/** zstd-decompresses `c`, refusing frames that claim more than `limit` bytes (a zip bomb in an unencrypted block). */
function decompressBounded(id: string, c: Uint8Array, limit: number, exact: boolean, into?: Uint8Array): Uint8Array {
  let size: number | null;
  try {
    if (zstd.findFrameCompressedSize(c) !== c.length) throw new Error('trailing bytes after the frame');
    size = zstd.getFrameContentSize(c);
  } catch (e) {
    throw corrupt(id, `zstd decompress failed (${(e as Error).message})`);
  }
  if (size !== null && exact && size !== limit) {
    throw corrupt(id, `plain size check failed (expected ${limit} bytes, frame holds ${size})`);
  }
  if (size !== null && size > limit) {
    throw corrupt(id, `zstd decompress failed (frame holds ${size} bytes, more than the ${limit} allowed)`);
  }
  const need = size ?? limit;
  const dest = into !== undefined && into.byteLength >= need ? Buffer.from(into.buffer, into.byteOffset, need) : Buffer.allocUnsafeSlow(need);
  let n: number;
  try {
    dctx ??= new zstd.DCtx();
    n = dctx.decompress(dest, c);
  } catch (e) {
    throw corrupt(id, `zstd decompress failed (${(e as Error).message})`);
  }
  if (size !== null && n !== size) throw corrupt(id, `zstd decompress failed (frame said ${size} bytes, gave ${n})`);
  if (dest.buffer === into?.buffer) return new Uint8Array(dest.buffer, dest.byteOffset, n);
  return n === dest.length ? view(dest) : owned(dest.subarray(0, n));
}
