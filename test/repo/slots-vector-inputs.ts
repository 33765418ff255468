// The inputs of fixtures/vectors/config/fragfs-json-v2-slots.json and the one function that builds its
// fragfs.json from them, shared by the writer and the test: every byte but the age file of the
// recipient slot (age seals with a fresh ephemeral key, so that file is an input kept in the vector)
// follows from fixed keys, salts and nonces.

import { gcm } from '@noble/ciphers/aes.js';
import { tagOfLines } from '../../src/repo/config-mac.js';
import { MASTER_KEY_AAD_V2 } from '../../src/repo/keys.js';
import { derivePassphraseKey, type KdfParams } from '../../src/repo/passphrase-kdf.js';
import { computeConfigMac } from '../../src/repo/config-mac.js';
import { RECOVERY_SLOT_AAD, sealInfo, slotLines, type FirstSlot, type KeySlot } from '../../src/people/key-slots.js';
import { formatRecoveryKey, recoveryWrapKey } from '../../src/people/recovery-key.js';
import type { SpaceConfig, StoreConfig } from '../../src/repo/store-config.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const seq = (start: number, n = 32) => new Uint8Array(n).map((_, i) => start + i);

export const SPACE = 'default';
export const SECOND_PASSPHRASE = 'a second passphrase';
export const SECOND_KDF: KdfParams = { name: 'scrypt', N: 1024, r: 8, p: 1, salt: hex(seq(0x10, 16)) };
export const RECOVERY_KEY_BYTES = seq(0x40);
export const RECOVERY_KEY = formatRecoveryKey(RECOVERY_KEY_BYTES);
export const IDS = { first: '1a2b3c4d', passphrase: '2b3c4d5e', recovery: '3c4d5e6f', recipient: '4d5e6f70' };
export const CREATED_MS = 1767225600000;

function seal(key: Uint8Array, nonceByte: number, plain: Uint8Array, aad: string) {
  const nonce = new Uint8Array(12).fill(nonceByte);
  return { alg: 'aes-256-gcm' as const, nonce: hex(nonce), sealed: hex(gcm(key, nonce, new TextEncoder().encode(aad)).encrypt(plain)) };
}

/**
 * The layout 2 fragfs.json of `base` (the fragfs-json-v2.json vector's, whose master key is
 * `masterKey`) with a labelled first slot and three slots: a passphrase, a recovery key and the
 * recipient of `recipient` whose sealed age file is `age`.
 */
export async function buildSlotsConfig(o: { base: StoreConfig; masterKey: Uint8Array; recipient: string; age: string }): Promise<{
  config: StoreConfig;
  lines: string[];
  tag: string;
}> {
  const mk = o.masterKey;
  const nonce = (b: number) => new Uint8Array(12).fill(b);
  const firstSlot: FirstSlot = { id: IDS.first, createdMs: CREATED_MS, info: sealInfo(mk, SPACE, IDS.first, { label: 'first passphrase' }, nonce(0x50)) };
  const kek = await derivePassphraseKey(SECOND_PASSPHRASE, SECOND_KDF);
  const slots: KeySlot[] = [
    {
      id: IDS.passphrase,
      type: 'passphrase',
      createdMs: CREATED_MS + 1,
      kdf: SECOND_KDF,
      masterKey: seal(kek, 0x44, mk, MASTER_KEY_AAD_V2),
      info: sealInfo(mk, SPACE, IDS.passphrase, { label: 'Ada at home' }, nonce(0x51)),
    },
    { id: IDS.recovery, type: 'recovery', createdMs: CREATED_MS + 2, masterKey: seal(recoveryWrapKey(RECOVERY_KEY_BYTES), 0x45, mk, RECOVERY_SLOT_AAD) },
    {
      id: IDS.recipient,
      type: 'recipient',
      createdMs: CREATED_MS + 3,
      age: o.age,
      info: sealInfo(mk, SPACE, IDS.recipient, { recipient: o.recipient, label: 'Grace' }, nonce(0x52)),
    },
  ];
  const { mac: _mac, ...rest } = o.base.spaces[SPACE]!;
  const entry: SpaceConfig = { ...rest, firstSlot, slots };
  const lines = slotLines(firstSlot, slots);
  const tag = tagOfLines(mk, SPACE, lines);
  const mac = { ...computeConfigMac(mk, SPACE, { fragfs: o.base.fragfs, backend: o.base.backend, ...entry }), slots: tag };
  return { config: { fragfs: o.base.fragfs, backend: o.base.backend, spaces: { [SPACE]: { ...entry, mac } } }, lines, tag };
}
