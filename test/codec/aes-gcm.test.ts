// The AES-256-GCM that seals keys, slot descriptions, shares and admin records: the same bytes as
// @noble/ciphers' gcm (an independent implementation) for any key, nonce, AAD and plaintext, and a
// refusal of anything changed: a flipped bit in the ciphertext, the tag or the AAD, or a short input.

import test from 'ava';
import fc from 'fast-check';
import { gcm } from '@noble/ciphers/aes.js';
import { aesGcm } from '../../src/codec/aes-gcm.js';

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

test('aesGcm gives the bytes noble gives, and opens them', (t) => {
  fc.assert(
    fc.property(bytes(32), bytes(12), fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }), fc.uint8Array({ maxLength: 300 }), (key, nonce, aad, plain) => {
      const sealed = aesGcm(key, nonce, aad).encrypt(plain);
      t.deepEqual(sealed, gcm(key, nonce, aad).encrypt(plain));
      t.deepEqual(aesGcm(key, nonce, aad).decrypt(sealed), plain);
      t.deepEqual(aesGcm(key, nonce, aad).decrypt(gcm(key, nonce, aad).encrypt(plain)), plain);
    }),
    { numRuns: 200 },
  );
});

test('aesGcm refuses a changed byte anywhere, another AAD, a short input, and keys or nonces of other sizes', (t) => {
  const key = new Uint8Array(32).fill(7);
  const nonce = new Uint8Array(12).fill(9);
  const aad = new TextEncoder().encode('purpose');
  const sealed = aesGcm(key, nonce, aad).encrypt(new TextEncoder().encode('a key worth keeping'));
  for (let i = 0; i < sealed.length; i++) {
    const bad = sealed.slice();
    bad[i]! ^= 1;
    t.throws(() => aesGcm(key, nonce, aad).decrypt(bad), undefined, `byte ${i} changed`);
  }
  t.throws(() => aesGcm(key, nonce, new TextEncoder().encode('purpos3')).decrypt(sealed));
  t.throws(() => aesGcm(key, nonce).decrypt(sealed));
  t.throws(() => aesGcm(key, nonce, aad).decrypt(sealed.subarray(0, 15)));
  t.throws(() => aesGcm(new Uint8Array(16), nonce));
  t.throws(() => aesGcm(key, new Uint8Array(16)));
});
