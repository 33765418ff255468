// Space keys: derivations pinned by a vector, key sealing, the passphrase KDF.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { scryptSync } from 'node:crypto';
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3.js';
import { isFragfsError } from '../../src/errors.js';
import {
  CONVERGENCE_SECRET_AAD,
  MASTER_KEY_AAD,
  META_KEY_CONTEXT,
  META_NONCE_KEY_CONTEXT,
  convergenceIdOf,
  convergenceWrapKey,
  deriveSpaceKeys,
  newSpaceKeys,
  sealKey,
  sealedKeyProblem,
  unsealKey,
} from '../../src/repo/keys.js';
import { DEFAULT_KDF_COST, derivePassphraseKey, kdfParamsProblem, newKdfParams } from '../../src/repo/passphrase-kdf.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const v = JSON.parse(readFileSync(new URL('../../../fixtures/vectors/solmet/keys.json', import.meta.url), 'utf8'));

test('derivations from the master key and convergence secret match the vector', (t) => {
  const keys = deriveSpaceKeys(unhex(v.masterKey), unhex(v.convergenceSecret));
  t.is(hex(keys.metaKey), v.metaKey);
  t.is(hex(keys.metaNonceKey), v.metaNonceKey);
  t.is(hex(convergenceWrapKey(keys.masterKey)), v.convergenceWrapKey);
  t.is(convergenceIdOf(keys.convergenceSecret), v.convergenceId);
  t.is(hex(keys.masterKey), v.masterKey);
  t.is(hex(keys.convergenceSecret), v.convergenceSecret);
});

test('the vector agrees with independent implementations (noble BLAKE3 derive_key, node scrypt)', (t) => {
  const derive = (context: string, material: Uint8Array): string =>
    hex(nobleBlake3(material, { context: new TextEncoder().encode(context) }));
  t.is(META_KEY_CONTEXT, 'fragfs 2026-11 metadata key v1');
  t.is(META_NONCE_KEY_CONTEXT, 'fragfs 2026-11 metadata nonce key v1');
  t.is(derive(META_KEY_CONTEXT, unhex(v.masterKey)), v.metaKey);
  t.is(derive(META_NONCE_KEY_CONTEXT, unhex(v.masterKey)), v.metaNonceKey);
  const { passphrase, kdf } = v.scrypt;
  t.is(hex(scryptSync(passphrase, unhex(kdf.salt), 32, { N: kdf.N, r: kdf.r, p: kdf.p })), v.scrypt.key);
});

test('the derived keys are all different from each other and from their inputs', (t) => {
  const keys = newSpaceKeys();
  const all = [keys.masterKey, keys.convergenceSecret, keys.metaKey, keys.metaNonceKey, convergenceWrapKey(keys.masterKey)];
  t.is(new Set(all.map(hex)).size, all.length);
  t.is(new Set([...all.map(hex), convergenceIdOf(keys.convergenceSecret)]).size, all.length + 1);
  for (const k of all) t.is(k.length, 32);
});

test('new keys are random; a given convergence secret is kept (copied)', (t) => {
  const a = newSpaceKeys();
  const b = newSpaceKeys();
  t.not(hex(a.masterKey), hex(b.masterKey));
  t.not(hex(a.convergenceSecret), hex(b.convergenceSecret));
  const shared = newSpaceKeys(a.convergenceSecret);
  t.is(hex(shared.convergenceSecret), hex(a.convergenceSecret));
  t.not(shared.convergenceSecret, a.convergenceSecret);
  t.not(hex(shared.metaKey), hex(a.metaKey));
  t.is(convergenceIdOf(shared.convergenceSecret), convergenceIdOf(a.convergenceSecret));
});

test('wrong key lengths are INVALID', (t) => {
  t.true(isFragfsError(t.throws(() => deriveSpaceKeys(new Uint8Array(31), new Uint8Array(32))), 'INVALID'));
  t.true(isFragfsError(t.throws(() => deriveSpaceKeys(new Uint8Array(32), new Uint8Array(33))), 'INVALID'));
  t.true(isFragfsError(t.throws(() => sealKey(new Uint8Array(16), new Uint8Array(32), MASTER_KEY_AAD)), 'INVALID'));
});

test('scrypt matches the vector, and sealing matches the vector', async (t) => {
  const kek = await derivePassphraseKey(v.scrypt.passphrase, v.scrypt.kdf);
  t.is(hex(kek), v.scrypt.key);
  const s = v.sealedMasterKey;
  const opened = unsealKey(unhex(s.wrappingKey), { alg: s.alg, nonce: s.nonce, sealed: s.sealed }, s.aad);
  t.is(hex(opened!), v.masterKey);
});

test('the passphrase is NFC-normalized: composed and decomposed accents give one key', async (t) => {
  const kdf = newKdfParams(10);
  const a = await derivePassphraseKey('caf\u00e9', kdf);
  const b = await derivePassphraseKey('cafe\u0301', kdf);
  t.is(hex(a), hex(b));
  t.not(hex(a), hex(await derivePassphraseKey('cafe', kdf)));
  t.not(hex(a), hex(await derivePassphraseKey('caf\u00e9', newKdfParams(10))), 'another salt, another key');
});

test('KDF parameters: defaults and bounds', (t) => {
  const d = newKdfParams();
  t.is(DEFAULT_KDF_COST, 17);
  t.like(d, { name: 'scrypt', N: 2 ** 17, r: 8, p: 1 });
  t.regex(d.salt, /^[0-9a-f]{32}$/);
  t.is(kdfParamsProblem(d), undefined);
  t.truthy(kdfParamsProblem({ ...d, N: 1000 }));
  t.truthy(kdfParamsProblem({ ...d, N: 2 ** 23 }));
  t.truthy(kdfParamsProblem({ ...d, name: 'argon2id' }));
  t.truthy(kdfParamsProblem({ ...d, salt: 'xyz' }));
  t.truthy(kdfParamsProblem({ ...d, r: 0 }));
  t.true(isFragfsError(t.throws(() => newKdfParams(0)), 'INVALID'));
  t.true(isFragfsError(t.throws(() => newKdfParams(30)), 'INVALID'));
});

test('KDF parameters are accepted only as fragfs writes them: N = 2^10..2^20, r = 8, p = 1, salt 16..64 bytes', (t) => {
  const d = newKdfParams(10);
  for (const cost of [10, 17, 20]) t.is(kdfParamsProblem({ ...d, N: 2 ** cost }), undefined, `2^${cost}`);
  t.is(kdfParamsProblem({ ...d, salt: 'ab'.repeat(64) }), undefined);
  const refused: [Record<string, unknown>, RegExp][] = [
    [{ N: 2 ** 9 }, /^kdf\.N /],
    [{ N: 2 ** 21 }, /^kdf\.N /],
    [{ N: 2 ** 22 }, /^kdf\.N /],
    [{ N: 2 ** 24 }, /^kdf\.N /],
    [{ N: 2 ** 10 + 1 }, /^kdf\.N /],
    [{ N: '1024' }, /^kdf\.N /],
    [{ r: 16 }, /^kdf\.r /],
    [{ r: 1 }, /^kdf\.r /],
    [{ p: 2 }, /^kdf\.p /],
    [{ p: 16 }, /^kdf\.p /],
    [{ salt: 'ab'.repeat(15) }, /^kdf\.salt /],
    [{ salt: 'ab'.repeat(65) }, /^kdf\.salt /],
    [{ salt: 'AB'.repeat(16) }, /^kdf\.salt /],
    [{ salt: 'abc'.repeat(11) }, /^kdf\.salt /],
  ];
  for (const [change, field] of refused) t.regex(kdfParamsProblem({ ...d, ...change }) ?? '', field, JSON.stringify(change));
  t.true(isFragfsError(t.throws(() => newKdfParams(9)), 'INVALID'));
  t.true(isFragfsError(t.throws(() => newKdfParams(21)), 'INVALID'));
});

test('sealed keys open only with the right wrapping key and purpose, and detect damage', (t) => {
  const wrap = newSpaceKeys().masterKey;
  const key = newSpaceKeys().masterKey;
  const s = sealKey(wrap, key, MASTER_KEY_AAD);
  t.is(sealedKeyProblem(s), undefined);
  t.is(hex(unsealKey(wrap, s, MASTER_KEY_AAD)!), hex(key));
  t.not(sealKey(wrap, key, MASTER_KEY_AAD).nonce, s.nonce, 'random nonce per seal');
  t.is(unsealKey(newSpaceKeys().masterKey, s, MASTER_KEY_AAD), undefined);
  t.is(unsealKey(wrap, s, CONVERGENCE_SECRET_AAD), undefined);
  for (let i = 0; i < s.sealed.length; i += 7) {
    const flipped = s.sealed.slice(0, i) + (s.sealed[i] === '0' ? '1' : '0') + s.sealed.slice(i + 1);
    t.is(unsealKey(wrap, { ...s, sealed: flipped }, MASTER_KEY_AAD), undefined, `hex digit ${i}`);
  }
  t.truthy(sealedKeyProblem({ ...s, alg: 'rot13' }));
  t.true(isFragfsError(t.throws(() => unsealKey(wrap, { ...s, nonce: 'zz' }, MASTER_KEY_AAD)), 'INVALID'));
});
