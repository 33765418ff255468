// The write lease of a remote store on an in-memory service: one holder at a time, a clear LOCKED
// naming the holder (sealed in the store), release and take-over, expiry of a holder that stopped
// renewing, races between machines, and a holder that finds its lease taken.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { FragfsError } from '../../src/errors.js';
import { leaseSealerOf } from '../../src/remote/lease-sealer.js';
import { CLOCK_SKEW_MS, RemoteLease } from '../../src/remote/remote-lease.js';
import { ResilientBackend } from '../../src/remote/resilient-backend.js';
import { MemoryObjectRoot } from '../helpers/memory-objects.js';

const masterKey = randomBytes(32);
const sealer = leaseSealerOf({ deriveKey: (c: string) => Buffer.from(c.padEnd(32, '.')).subarray(0, 32).map((b, i) => b ^ masterKey[i]!) });

function backend(root: MemoryObjectRoot): ResilientBackend {
  return new ResilientBackend(root.open(), { backoffMs: 1 });
}

test('one holder at a time; the second is told who holds it and until when; no name in clear', async (t) => {
  const root = new MemoryObjectRoot();
  const a = await RemoteLease.acquire({ objects: backend(root), space: 'sp', purpose: 'mount /mnt/secret-name', sealer });
  const e = await t.throwsAsync(RemoteLease.acquire({ objects: backend(root), space: 'sp', purpose: 'mount /b', sealer }), { instanceOf: FragfsError });
  t.is(e!.code, 'LOCKED');
  t.regex(e!.message, /in use read-write by mount \/mnt\/secret-name \(pid \d+ on .+\); its lease runs until \d{4}-/);
  const stored = Buffer.concat([...root.objects.values()]).toString();
  t.false(stored.includes('secret-name'), 'the holder is sealed');
  // Another space of the same store is free.
  const other = await RemoteLease.acquire({ objects: backend(root), space: 'other', purpose: 'x', sealer });
  await other.release();
  await a.release();
  const b = await RemoteLease.acquire({ objects: backend(root), space: 'sp', purpose: 'mount /b', sealer });
  t.deepEqual([...root.objects.keys()].filter((k) => k.startsWith('sp/')), ['sp/lease/000000000002'], 'older generations are dropped');
  await b.release();
});

test('a lease that was not renewed expires (after the clock skew margin) and is taken over', async (t) => {
  const root = new MemoryObjectRoot();
  process.env['FRAGFS_LEASE_SECONDS'] = '10';
  try {
    let now = 1_000_000;
    const a = await RemoteLease.acquire({ objects: backend(root), space: 'sp', purpose: 'a', sealer, nowMs: () => now });
    now += 10_000 + CLOCK_SKEW_MS - 1;
    await t.throwsAsync(RemoteLease.acquire({ objects: backend(root), space: 'sp', purpose: 'b', sealer, nowMs: () => now }));
    now += 2;
    let lostWhy = '';
    const b = await RemoteLease.acquire({ objects: backend(root), space: 'sp', purpose: 'b', sealer, nowMs: () => now });
    // The old holder wakes up: its renewal sees the later generation and reports the loss.
    (a as unknown as { onLost: (w: string) => void }).onLost = (w) => (lostWhy = w);
    await a.renew();
    t.true(a.isLost);
    t.regex(lostWhy, /was taken by another machine/);
    await a.release(); // changes nothing: b's lease stands
    await t.throwsAsync(RemoteLease.acquire({ objects: backend(root), space: 'sp', purpose: 'c', sealer, nowMs: () => now }), { message: /by b / });
    await b.release();
  } finally {
    delete process.env['FRAGFS_LEASE_SECONDS'];
  }
});

test('machines racing for a free lease: exactly one wins', async (t) => {
  const root = new MemoryObjectRoot();
  const results = await Promise.allSettled(
    Array.from({ length: 6 }, (_, i) => RemoteLease.acquire({ objects: backend(root), space: 'sp', purpose: `m${i}`, sealer })),
  );
  const won = results.filter((r) => r.status === 'fulfilled');
  t.is(won.length, 1);
  for (const r of results) if (r.status === 'rejected') t.is((r.reason as FragfsError).code, 'LOCKED');
  await (won[0] as PromiseFulfilledResult<RemoteLease>).value.release();
});

test('a damaged lease object never blocks the store for good', async (t) => {
  const root = new MemoryObjectRoot();
  root.objects.set('sp/lease/000000000007', Buffer.from('{torn'));
  const a = await RemoteLease.acquire({ objects: backend(root), space: 'sp', purpose: 'a', sealer });
  t.true(root.objects.has('sp/lease/000000000008'));
  await a.release();
});
