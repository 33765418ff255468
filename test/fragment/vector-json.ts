// JSON form of metadata objects in test vectors: bigint as {"$bigint": "<decimal>"}, bytes as
// {"$bytes": "<hex>"}, everything else as is. Shared by the vector writer and the vector test.

import type { MetaObject } from '../../src/fragment/tree-format.js';

export function toVectorJson(value: unknown): unknown {
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString('hex') };
  if (Array.isArray(value)) return value.map(toVectorJson);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toVectorJson(v)]));
  }
  return value;
}

export function fromVectorJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromVectorJson);
  if (typeof value === 'object' && value !== null) {
    const o = value as Record<string, unknown>;
    if (typeof o.$bigint === 'string') return BigInt(o.$bigint);
    if (typeof o.$bytes === 'string') return new Uint8Array(Buffer.from(o.$bytes, 'hex'));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) {
      Object.defineProperty(out, k, { value: fromVectorJson(v), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}

/** One metadata vector file in fixtures/vectors/solmet/. */
export interface MetaVector {
  description: string;
  metaKey: string;
  metaNonceKey: string;
  /** Version 3 on: the tree key secret (FORMAT.md 2.5), which gives dir and manifest objects their own keys. */
  treeKeySecret?: string;
  /** A version 3 dir or manifest object's own key: what the entry naming it carries. */
  ownKey?: string;
  /** The object in vector JSON form. */
  object: unknown;
  /** msgpack plaintext before compression. */
  plaintext: string;
  /** SOLMET compression byte the encoder chose. */
  compression: number;
  /** Whole meta fragment (SOLMET frame). */
  frame: string;
  /** BLAKE3-256 of the frame: the meta id. */
  id: string;
}

export function metaFromVector(v: MetaVector): MetaObject {
  return fromVectorJson(v.object) as MetaObject;
}
