// runGc on a remote store (an ObjectStore over the in-memory service): a forgotten snapshot's
// fragments are freed and the kept one verifies; a writer on another machine (a GcGuard over a second
// connection to the same service) that pins a condemned fragment keeps it; a lease left unrenewed
// past its expiry is removed and holds nothing back, a fresh one does, and its writer fails from then
// on; a read-write mount holding the space's write lease on another machine holds the sweep back
// until it releases it.

import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runGc } from '../../src/gc/gc.js';
import { GcGuard } from '../../src/gc/gc-guard.js';
import { RemoteGcPlace } from '../../src/gc/gc-place.js';
import { ObjectStore } from '../../src/remote/object-store.js';
import { putPaths } from '../../src/repo/put.js';
import type { Repo } from '../../src/repo/repo.js';
import { verifyStore } from '../../src/repo/verify.js';
import type { Namespace } from '../../src/store/store.js';
import { MemoryObjectRoot } from '../helpers/memory-objects.js';
import { openObjectRepo } from '../helpers/object-repo.js';
import { tempDir } from '../helpers/stores.js';

const BS = 64 * 1024;

async function count(repo: Repo, ns: Namespace): Promise<number> {
  let n = 0;
  for await (const _ of repo.store.list(ns)) n++;
  return n;
}

/**
 * A store with two snapshots (sharing one file), the first one forgotten. The test's opening wrote
 * them; its lease goes, as a `put` that ended would take its own.
 */
async function storeWithGarbage(t: ExecutionContext): Promise<{ root: MemoryObjectRoot; repo: Repo; keep: string; gone: string }> {
  const tmp = await tempDir('fragfs-gc-remote-');
  t.teardown(() => tmp.remove());
  const root = new MemoryObjectRoot();
  const repo = await openObjectRepo(root, { blockSize: BS });
  t.teardown(() => repo.close());
  const shared = randomBytes(150_000);
  const snap = async (name: string, own: number): Promise<string> => {
    const dir = join(tmp.path, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'own.bin'), randomBytes(own));
    await writeFile(join(dir, 'shared.bin'), shared);
    return (await putPaths(repo, [dir], { parent: false })).key;
  };
  const gone = await snap('one', 300_000);
  const keep = await snap('two', 100_000);
  await (await repo.writerGuard())!.close();
  await repo.store.delete(repo.refNs, gone);
  return { root, repo, keep, gone };
}

test('remote: a forgotten snapshot is freed, the other stays whole; the gc files are under <space>/gc/', async (t) => {
  const { root, repo, keep } = await storeWithGarbage(t);
  const before = await count(repo, repo.dataNs);
  const dry = await runGc(repo, { dryRun: true });
  const r = await runGc(repo, { waitMs: 10_000 });
  t.deepEqual(r.waitingFor, []);
  t.true(r.freed >= 5, `300,000 bytes of own data are 5 blocks or more: ${r.freed}`);
  t.is(r.freed, dry.unreferenced);
  t.is(r.freedBytes, dry.unreferencedBytes);
  t.true((await count(repo, repo.dataNs)) < before);
  t.deepEqual((await verifyStore(repo, keep)).problems, []);
  const keys = [...root.objects.keys()];
  t.true(keys.includes('default/gc/mark'));
  t.true(keys.includes('default/gc/mark-head'));
  t.false(keys.some((k) => k.startsWith('default/trash/')), 'nothing left in the trash');
  t.false(keys.some((k) => k.startsWith('default/gc/leases/')), 'no lease left behind');
  const again = await runGc(repo, { waitMs: 10_000 });
  t.is(again.freed, 0);
});

test('remote: a writer on another machine that pins a condemned fragment during the gc keeps it', async (t) => {
  const { root, repo, keep } = await storeWithGarbage(t);
  const objects = root.open();
  const store = new ObjectStore(objects);
  const writer = await GcGuard.start({ place: new RemoteGcPlace(objects, 'default'), space: 'default', store, purpose: 'mount /elsewhere' });
  t.teardown(() => writer.close());
  writer.releaseBase();
  let pinned = '';
  const r = await runGc(repo, {
    waitMs: 10_000,
    afterMark: async (m) => {
      await writer.refresh();
      pinned = m.data[0]!;
      await writer.hold('data', pinned);
    },
  });
  t.deepEqual(r.waitingFor, []);
  t.true(r.kept >= 1, 'the pinned fragment is kept');
  t.true(r.freed >= 1, 'the rest is freed');
  t.true(await repo.store.has(repo.dataNs, pinned));
  t.true([...root.objects.keys()].some((k) => /^default\/gc\/pins\/.+\.\d+\.\d+-[0-9a-f]+$/.test(k)), 'the pin is an object of its own');
  await writer.close();
  const next = await runGc(repo, { waitMs: 10_000 });
  t.true(next.freed >= 1);
  t.false(await repo.store.has(repo.dataNs, pinned));
  t.deepEqual((await verifyStore(repo, keep)).problems, []);
});

function lease(id: string, expiresMs: number): Uint8Array {
  return Buffer.from(JSON.stringify({ id, pid: 4242, host: '', bootId: '', procStart: '', startedMs: 0, purpose: 'put', knownMark: 0, renewedMs: expiresMs - 120_000, expiresMs }));
}

test('remote: an unrenewed lease past its expiry is removed and holds nothing back; a fresh one holds the sweep', async (t) => {
  const { root, repo } = await storeWithGarbage(t);
  root.objects.set('default/gc/leases/fresh', lease('fresh', Date.now() + 60_000));
  const before = await count(repo, repo.dataNs);
  const held = await runGc(repo, { waitMs: 1500 });
  t.is(held.waitingFor.length, 1, JSON.stringify(held.waitingFor));
  t.regex(held.waitingFor[0]!, /put \(pid 4242 on another machine/);
  t.is(await count(repo, repo.dataNs), before, 'nothing deleted');
  // Its writer died: unrenewed since, it expires (the clock margin included), and the next gc goes on.
  root.objects.set('default/gc/leases/fresh', lease('fresh', Date.now() - 16_000));
  root.objects.set('default/gc/leases/torn', Buffer.from('{"id":'));
  const r = await runGc(repo, { waitMs: 10_000 });
  t.deepEqual(r.waitingFor, []);
  t.true(r.freed >= 5);
  t.false(root.objects.has('default/gc/leases/fresh'));
  t.false(root.objects.has('default/gc/leases/torn'));
});

test('remote: a read-write mount holding the write lease on another machine holds the sweep back until it releases it', async (t) => {
  const { root, repo } = await storeWithGarbage(t);
  const record = (released: boolean) => Buffer.from(JSON.stringify({ format: 1, token: 'x', startedMs: 0, expiresMs: Date.now() + 60_000, released, holder: null }));
  root.objects.set('default/lease/000000000001', record(false));
  const before = await count(repo, repo.dataNs);
  const held = await runGc(repo, { waitMs: 1000 });
  t.is(held.waitingFor.length, 1);
  t.regex(held.waitingFor[0]!, /read-write mount on another machine/);
  t.is(await count(repo, repo.dataNs), before);
  root.objects.set('default/lease/000000000001', record(true));
  const r = await runGc(repo, { waitMs: 10_000 });
  t.deepEqual(r.waitingFor, []);
  t.true(r.freed >= 5);
});

test('remote: a writer whose lease went unrenewed past its expiry fails every later write, even once the service answers again', async (t) => {
  const root = new MemoryObjectRoot();
  const objects = root.open();
  const writer = await GcGuard.start({
    place: new RemoteGcPlace(objects, 'default', { pollMs: 20, leaseMs: 200 }),
    space: 'default',
    store: new ObjectStore(objects),
    purpose: 'put',
  });
  t.teardown(() => writer.close());
  const id = 'ab'.repeat(32);
  await writer.hold('data', id);
  // The service refuses every call for longer than the lease lives: no renewal gets through.
  for (let i = 0; i < 1000; i++) root.failures.push({ op: 'put', kind: 'final' });
  await new Promise((r) => setTimeout(r, 400));
  root.failures.length = 0;
  await writer.refresh();
  const e = await t.throwsAsync(() => writer.hold('data', id));
  t.regex(e!.message, /could not renew its gc lease/);
});
