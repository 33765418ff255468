// Writes fixtures/vectors/solmet/*.json from the current code (the version fragfs writes; earlier
// versions' vectors stay in v1/ and v2/, never rewritten). Run only on a deliberate format
// change (then bump META_VERSION and update docs/FORMAT.md):
//   npx tsc -p . && node dist/test/fragment/write-solmet-vectors.js

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encodeMeta } from '../../src/fragment/meta-codec.js';
import { packPlain, packSolmet } from '../../src/fragment/solmet.js';
import { metaToWire } from '../../src/fragment/meta-schema.js';
import type { MetaObject } from '../../src/fragment/tree-format.js';
import { convergenceIdOf, convergenceWrapKey, deriveSpaceKeys } from '../../src/repo/keys.js';
import { derivePassphraseKey } from '../../src/repo/passphrase-kdf.js';
import { gcm } from '@noble/ciphers/aes.js';
import { toVectorJson, type MetaVector } from './vector-json.js';
import { VECTOR_OBJECTS, VECTOR_KEYS } from './solmet-vector-inputs.js';

const dir = fileURLToPath(new URL('../../../fixtures/vectors/solmet/', import.meta.url));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const write = (name: string, v: unknown): void => writeFileSync(dir + name, `${JSON.stringify(v, null, 2)}\n`);

write('frame-plain.json', {
  description: 'SOLMET frame, no encryption, no compression, body = UTF-8 "hello fragfs"',
  encryption: 0,
  compression: 0,
  body: hex(new TextEncoder().encode('hello fragfs')),
  frame: hex(packSolmet({ encryption: 0, compression: 0, body: new TextEncoder().encode('hello fragfs') })),
});

const keys = deriveSpaceKeys(VECTOR_KEYS.masterKey, VECTOR_KEYS.convergenceSecret);
for (const [file, description, obj] of VECTOR_OBJECTS as [string, string, MetaObject][]) {
  const { id, bytes, key } = encodeMeta(obj, keys);
  const v: MetaVector = {
    description,
    metaKey: hex(keys.metaKey),
    metaNonceKey: hex(keys.metaNonceKey),
    treeKeySecret: hex(keys.treeKeySecret),
    ...(key === undefined ? {} : { ownKey: hex(key) }),
    object: toVectorJson(obj),
    plaintext: hex(packPlain(metaToWire(obj))),
    compression: bytes[9]!,
    frame: hex(bytes),
    id,
  };
  write(file, v);
}

const passphrase = 'correct horse battery staple';
const salt = '000102030405060708090a0b0c0d0e0f';
const kek = await derivePassphraseKey(passphrase, { name: 'scrypt', N: 1024, r: 8, p: 1, salt });
const nonce = new Uint8Array(12).fill(0x42);
write('keys.json', {
  description: 'space key derivations, scrypt and key sealing (fixed nonce here; real seals use a random one)',
  masterKey: hex(keys.masterKey),
  convergenceSecret: hex(keys.convergenceSecret),
  metaKey: hex(keys.metaKey),
  metaNonceKey: hex(keys.metaNonceKey),
  treeKeySecret: hex(keys.treeKeySecret),
  convergenceWrapKey: hex(convergenceWrapKey(keys.masterKey)),
  convergenceId: convergenceIdOf(keys.convergenceSecret),
  scrypt: { passphrase, kdf: { name: 'scrypt', N: 1024, r: 8, p: 1, salt }, key: hex(kek) },
  sealedMasterKey: {
    wrappingKey: hex(kek),
    aad: 'fragfs master key v1',
    alg: 'aes-256-gcm',
    nonce: hex(nonce),
    sealed: hex(gcm(kek, nonce, new TextEncoder().encode('fragfs master key v1')).encrypt(keys.masterKey)),
  },
});
console.log(`wrote vectors to ${dir}`);
