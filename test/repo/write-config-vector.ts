// Writes fixtures/vectors/config/fragfs-json-v2.json from the current code: a whole layout 2
// fragfs.json with fixed keys and nonces, its config MAC key, and for every authenticated field the
// exact text its tag covers and the tag. Run only on a deliberate format change (then update
// docs/FORMAT.md section 2.6):
//   npx tsc -p . && node dist/test/repo/write-config-vector.js

import { gcm } from '@noble/ciphers/aes.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  AUTHENTICATED_FIELDS,
  CONFIG_MAC_KEY_CONTEXT,
  canonicalFieldText,
  computeConfigMac,
  configMacKey,
} from '../../src/repo/config-mac.js';
import { CONVERGENCE_SECRET_AAD, MASTER_KEY_AAD_V2, convergenceIdOf, convergenceWrapKey } from '../../src/repo/keys.js';
import { derivePassphraseKey, type KdfParams } from '../../src/repo/passphrase-kdf.js';
import type { SpaceConfig, StoreConfig } from '../../src/repo/store-config.js';

const dir = fileURLToPath(new URL('../../../fixtures/vectors/config/', import.meta.url));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const seq = (start: number) => new Uint8Array(32).map((_, i) => start + i);

const passphrase = 'correct horse battery staple';
const kdf: KdfParams = { name: 'scrypt', N: 1024, r: 8, p: 1, salt: '000102030405060708090a0b0c0d0e0f' };
const masterKey = seq(0x00);
const convergenceSecret = seq(0x80);
const kek = await derivePassphraseKey(passphrase, kdf);
const seal = (key: Uint8Array, nonceByte: number, plain: Uint8Array, aad: string) => {
  const nonce = new Uint8Array(12).fill(nonceByte);
  return { alg: 'aes-256-gcm' as const, nonce: hex(nonce), sealed: hex(gcm(key, nonce, new TextEncoder().encode(aad)).encrypt(plain)) };
};

const space = 'default';
const entry: SpaceConfig = {
  createdMs: 1767225600000,
  blockSize: 1048576,
  kdf,
  masterKey: seal(kek, 0x42, masterKey, MASTER_KEY_AAD_V2),
  convergenceSecret: seal(convergenceWrapKey(masterKey), 0x43, convergenceSecret, CONVERGENCE_SECRET_AAD),
  storeId: '00112233445566778899aabbccddeeff',
  convergenceId: convergenceIdOf(convergenceSecret),
};
const globals = { fragfs: 2, backend: 'dir' as const };
const values = { ...globals, ...entry };
const mac = computeConfigMac(masterKey, space, values);
const config: StoreConfig = { ...globals, spaces: { [space]: { ...entry, mac } } };

mkdirSync(dir, { recursive: true });
writeFileSync(
  `${dir}fragfs-json-v2.json`,
  `${JSON.stringify(
    {
      description:
        'a layout 2 fragfs.json (fixed keys and nonces; real ones are random): the master key of keys.json sealed with aad "fragfs master key v2" under the scrypt key of keys.json, and one tag per authenticated field',
      passphrase,
      masterKey: hex(masterKey),
      convergenceSecret: hex(convergenceSecret),
      macKeyContext: CONFIG_MAC_KEY_CONTEXT,
      macKey: hex(configMacKey(masterKey)),
      space,
      fields: AUTHENTICATED_FIELDS.map((field) => ({ field, text: canonicalFieldText(space, field, values), tag: mac[field] })),
      fragfsJson: `${JSON.stringify(config, null, 2)}\n`,
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${dir}fragfs-json-v2.json`);
