// The SOLMET frame of seed 003 that wraps every metadata fragment: a plain msgpack array
// ["SOLMET", encryption uint8, compression uint8, bin body]. Packing and strict unpacking only; what
// the body holds (encrypted, compressed msgpack) is meta-codec.ts's business.

import { Packr, Unpackr } from 'msgpackr';
import { FragfsError } from '../errors.js';

/** First element of every metadata frame (a 6-byte msgpack fixstr). */
export const SOLMET_MAGIC = 'SOLMET';

/** Metadata encryption types (frame element [1]). */
export const META_ENCRYPTION_NONE = 0x00;
/**
 * AES-256-GCM with a synthetic nonce: nonce = first 12 bytes of keyed BLAKE3(metaNonceKey, x),
 * body = nonce(12) || AES-256-GCM(metaKey, nonce, x) || tag(16), where x is the (compressed) plaintext.
 */
export const META_ENCRYPTION_AES256GCM_SIV = 0x01;
/**
 * AES-256-GCM under the fragment's own key (docs/FORMAT.md 2.2.1), which the entry naming the fragment
 * carries and the body also holds sealed under the space's metadata key:
 * body = wrapNonce(12) || AES-256-GCM(metaKey, wrapNonce, key)(48) || AES-256-GCM(key, zero nonce, x) || tag(16).
 */
export const META_ENCRYPTION_AES256GCM_OWN_KEY = 0x02;

/** Metadata compression types (frame element [2]), applied before encryption. */
export const META_COMPRESSION_NONE = 0x00;
export const META_COMPRESSION_ZSTD = 0x01;

const KNOWN_ENCRYPTION: ReadonlySet<number> = new Set([META_ENCRYPTION_NONE, META_ENCRYPTION_AES256GCM_SIV, META_ENCRYPTION_AES256GCM_OWN_KEY]);
const KNOWN_COMPRESSION: ReadonlySet<number> = new Set([META_COMPRESSION_NONE, META_COMPRESSION_ZSTD]);

export interface SolmetFrame {
  /** One of META_ENCRYPTION_*. */
  readonly encryption: number;
  /** One of META_COMPRESSION_*. */
  readonly compression: number;
  /** The metadata bytes after compression and encryption. */
  readonly body: Uint8Array;
}

/**
 * Plain msgpack only: no records, no extensions, typed arrays as bin, so any msgpack reader in any
 * language parses a frame. Shared by meta-codec.ts for the objects inside.
 */
export const plainPackr = new Packr({
  useRecords: false,
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
  variableMapSize: true,
  encodeUndefinedAsNil: false,
});

/** The matching reader: maps stay Maps (no prototype games with keys), 64-bit ints come back as bigint. */
export const plainUnpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: false,
  int64AsType: 'bigint',
  moreTypes: false,
  structuredClone: false,
});

/** msgpack of `value` as a fresh Uint8Array that owns its bytes (msgpackr reuses its output buffer). */
export function packPlain(value: unknown): Uint8Array {
  const packed = plainPackr.pack(value);
  return new Uint8Array(packed.buffer.slice(packed.byteOffset, packed.byteOffset + packed.byteLength));
}

/** Throws INVALID unless `n` is a known type byte. */
function checkType(what: string, n: number, known: ReadonlySet<number>): void {
  if (!Number.isInteger(n) || !known.has(n)) {
    throw new FragfsError('INVALID', `unknown SOLMET ${what} type ${String(n)}`);
  }
}

/** The frame bytes. Types MUST be known ones; the body is written as msgpack bin. */
export function packSolmet(frame: SolmetFrame): Uint8Array {
  checkType('encryption', frame.encryption, KNOWN_ENCRYPTION);
  checkType('compression', frame.compression, KNOWN_COMPRESSION);
  if (!(frame.body instanceof Uint8Array)) throw new FragfsError('INVALID', 'SOLMET body must be bytes');
  // A plain Uint8Array view (not a Buffer subclass or another typed array) always packs as bin.
  const body = new Uint8Array(frame.body.buffer, frame.body.byteOffset, frame.body.byteLength);
  return packPlain([SOLMET_MAGIC, frame.encryption, frame.compression, body]);
}

function corrupt(fragmentId: string | undefined, why: string, cause?: unknown): FragfsError {
  const name = fragmentId === undefined ? 'metadata fragment' : `metadata fragment ${fragmentId}`;
  return new FragfsError('CORRUPT', `${name} is corrupt: ${why}`, { fragmentId, cause });
}

/**
 * Parses a frame. Anything but exactly a msgpack array of 4 with the magic, known type bytes and a
 * bin body (and nothing after it) is FragfsError('CORRUPT') naming `fragmentId`.
 * The returned body is a view into `bytes`.
 */
export function unpackSolmet(bytes: Uint8Array, fragmentId?: string): SolmetFrame {
  if (!(bytes instanceof Uint8Array)) throw new FragfsError('INVALID', 'SOLMET frame must be bytes');
  // The shortest frame is 94 a6 "SOLMET" 00 00 c4 00: 12 bytes.
  if (bytes.length < 12) throw corrupt(fragmentId, `too short for a SOLMET frame (${bytes.length} bytes)`);
  let value: unknown;
  try {
    value = plainUnpackr.unpack(bytes);
  } catch (e) {
    throw corrupt(fragmentId, `not valid msgpack (${(e as Error).message})`, e);
  }
  if (!Array.isArray(value) || value.length !== 4) throw corrupt(fragmentId, 'not a msgpack array of 4');
  const [magic, encryption, compression, body] = value as unknown[];
  if (magic !== SOLMET_MAGIC) throw corrupt(fragmentId, 'wrong magic (not "SOLMET")');
  if (typeof encryption !== 'number' || !KNOWN_ENCRYPTION.has(encryption)) {
    throw corrupt(fragmentId, `unknown encryption type ${String(encryption)}`);
  }
  if (typeof compression !== 'number' || !KNOWN_COMPRESSION.has(compression)) {
    throw corrupt(fragmentId, `unknown compression type ${String(compression)}`);
  }
  // msgpackr turns bin into a Buffer; an extension type would come back as something else.
  if (!(body instanceof Uint8Array) || !isBin(bytes, body.length)) {
    throw corrupt(fragmentId, 'body is not msgpack bin');
  }
  return { encryption, compression, body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) };
}

/**
 * True when the last element of `bytes` is encoded as bin8/16/32 of `bodyLength` bytes (not an
 * extension type that a msgpack library might also hand back as bytes).
 */
function isBin(bytes: Uint8Array, bodyLength: number): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const [marker, header] of [[0xc4, 2], [0xc5, 3], [0xc6, 5]] as const) {
    const at = bytes.length - bodyLength - header;
    if (at < 0 || bytes[at] !== marker) continue;
    const n = header === 2 ? view.getUint8(at + 1) : header === 3 ? view.getUint16(at + 1) : view.getUint32(at + 1);
    if (n === bodyLength) return true;
  }
  return false;
}
