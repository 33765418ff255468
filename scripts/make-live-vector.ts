// Writes fixtures/vectors/live/live-v2.json: the live state's keys, LMDB keys and sealed values
// (docs/FORMAT.md section 4) for a fixed master key, so any implementation can be checked byte for byte.
// Run: node dist/scripts/make-live-vector.js

import { writeFileSync } from 'node:fs';
import { blake3DeriveKey, toHex } from '../src/codec/blake3.js';
import { Kind, LIVE_INDEX_KEY_CONTEXT, LIVE_NAME_KEY_CONTEXT, LIVE_NONCE_KEY_CONTEXT, LIVE_VALUE_KEY_CONTEXT, LiveCrypto, type LiveKeys } from '../src/vfs/live-crypto.js';
import { LIVE_VECTOR_CASES, vectorKey } from '../src/vfs/live-vector-cases.js';

const masterKey = Buffer.alloc(32, 0x5a);
const keys: LiveKeys = {
  index: blake3DeriveKey(LIVE_INDEX_KEY_CONTEXT, masterKey),
  name: blake3DeriveKey(LIVE_NAME_KEY_CONTEXT, masterKey),
  value: blake3DeriveKey(LIVE_VALUE_KEY_CONTEXT, masterKey),
  nonce: blake3DeriveKey(LIVE_NONCE_KEY_CONTEXT, masterKey),
};
const crypto = new LiveCrypto(keys);
await crypto.ready;
const vector = {
  description: 'fragfs live state format 2 (docs/FORMAT.md section 4): keys from a fixed master key, LMDB keys, sealed values',
  masterKey: masterKey.toString('hex'),
  keys: { index: toHex(keys.index), name: toHex(keys.name), value: toHex(keys.value), nonce: toHex(keys.nonce) },
  kinds: Kind,
  cases: LIVE_VECTOR_CASES.map((c) => {
    const key = vectorKey(crypto, c);
    return { ...c, lmdbKey: toHex(key), sealed: toHex(crypto.seal(key, Buffer.from(c.plain, 'hex'))) };
  }),
};
writeFileSync(new URL('../../fixtures/vectors/live/live-v2.json', import.meta.url), `${JSON.stringify(vector, null, 2)}\n`);
