// The AES-256-GCM that seals metadata bodies, keys, slot descriptions, shares, admin records and leases: the same bytes as
// @noble/ciphers' gcm (an independent implementation) for any key, nonce, AAD and plaintext, and a
// refusal of anything changed: a flipped bit in the ciphertext, the tag or the AAD, or a short input.

import test from 'ava';
import fc from 'fast-check';
import { gcm } from '@noble/ciphers/aes.js';
import { gcmOpen, gcmSeal } from '../../src/codec/aes-gcm.js';

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

test('gcmSeal gives the bytes noble gives, and gcmOpen opens them', (t) => {
  fc.assert(
    fc.property(bytes(32), bytes(12), fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }), fc.uint8Array({ maxLength: 300 }), (key, nonce, aad, plain) => {
      const sealed = gcmSeal(key, nonce, plain, aad);
      t.deepEqual(new Uint8Array(sealed), gcm(key, nonce, aad).encrypt(plain));
      t.deepEqual(new Uint8Array(gcmOpen(key, nonce, sealed, aad)!), plain);
      t.deepEqual(new Uint8Array(gcmOpen(key, nonce, gcm(key, nonce, aad).encrypt(plain), aad)!), plain);
    }),
    { numRuns: 200 },
  );
});

test('gcmOpen refuses a changed byte anywhere, another AAD and a short input; keys or nonces of other sizes are refused', (t) => {
  const key = new Uint8Array(32).fill(7);
  const nonce = new Uint8Array(12).fill(9);
  const aad = new TextEncoder().encode('purpose');
  const sealed = gcmSeal(key, nonce, new TextEncoder().encode('a key worth keeping'), aad);
  for (let i = 0; i < sealed.length; i++) {
    const bad = sealed.slice();
    bad[i]! ^= 1;
    t.is(gcmOpen(key, nonce, bad, aad), undefined, `byte ${i} changed`);
  }
  t.is(gcmOpen(key, nonce, sealed, new TextEncoder().encode('purpos3')), undefined);
  t.is(gcmOpen(key, nonce, sealed), undefined);
  t.is(gcmOpen(key, nonce, sealed.subarray(0, 15), aad), undefined);
  t.throws(() => gcmSeal(new Uint8Array(16), nonce, sealed));
  t.throws(() => gcmOpen(key, new Uint8Array(16), sealed));
});
