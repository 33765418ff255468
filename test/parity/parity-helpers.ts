// What the parity tests share: a store with parity made through the repo API (a cheap KDF), trees
// of files that give data fragments stored on their own, packs and metadata, and damage done to
// stored objects through the backend, as a disk or a remote service would do it.

import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Repo } from '../../src/repo/repo.js';
import { openKeyless } from '../../src/parity/parity-admin.js';
import type { ParitySettings } from '../../src/parity/parity-settings.js';
import { loadStripes, parityNs, type Stripe } from '../../src/parity/stripe-view.js';
import type { BackendName, FragmentKind } from '../../src/store/store.js';
import { lastLine, runCli, TEST_PASSPHRASE } from '../helpers/cli.js';
import { TEST_KDF_COST } from '../helpers/stores.js';

/** 512 KiB blocks: files over that give data fragments stored on their own even where small ones are packed. */
export const BLOCK = 512 * 1024;

export async function createParityStore(storePath: string, backend: BackendName, parity: ParitySettings | undefined): Promise<void> {
  const repo = await Repo.init({ storePath, backend, passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST, blockSize: BLOCK, ...(parity ? { parity } : {}) });
  await repo.close();
}

/** A tree of `n` files: small ones (packed), and every fifth one of 0.6-1.6 MiB (blocks of their own). */
export async function makeTree(root: string, n: number, seed: string): Promise<void> {
  await mkdir(join(root, 'sub'), { recursive: true });
  for (let i = 0; i < n; i++) {
    const size = i % 5 === 0 ? 600_000 + ((i * 7919) % 1_000_000) : 100 + ((i * 104_729) % 40_000);
    await writeFile(join(root, i % 3 === 0 ? 'sub' : '', `${seed}-${i}.bin`), randomBytes(size));
  }
}

export async function putTree(store: string, tree: string): Promise<string> {
  const r = await runCli(['put', store, tree]);
  if (r.code !== 0) throw new Error(`put: ${r.stderr}`);
  return lastLine(r.stdout);
}

export interface Damage {
  kind: FragmentKind;
  id: string;
  how: 'delete' | 'corrupt';
}

export async function stripesOf(store: string): Promise<Stripe[]> {
  const k = await openKeyless(store, 'default', { readOnly: true });
  try {
    return [...(await loadStripes(k.parityStore, 'default', undefined)).stripes.values()];
  } finally {
    await k.close();
  }
}

/** Every shard of a stripe as a stored object: its members, then its parity objects. */
export function shardsOf(s: Stripe): { kind: FragmentKind; id: string }[] {
  return [...s.record.members.map((mb) => ({ kind: mb.kind, id: mb.id })), ...[...s.parity.values()].map((id) => ({ kind: 'parity' as const, id }))];
}

/** Deletes or corrupts (one byte flipped, in place of the object) each object named. */
export async function damage(store: string, what: readonly Damage[]): Promise<void> {
  const k = await openKeyless(store, 'default', { readOnly: false });
  try {
    for (const d of what) {
      const ns = { space: 'default', kind: d.kind };
      const target = d.kind === 'parity' ? k.parityStore : k.store;
      if (d.how === 'delete') {
        await target.delete(ns, d.id);
        continue;
      }
      const bytes = Buffer.from(await target.get(ns, d.id));
      bytes[Math.floor(bytes.length / 2)]! ^= 0x40;
      await target.delete(ns, d.id);
      await target.put(ns, d.id, bytes);
    }
    await k.store.sync();
    await k.parityStore.sync();
  } finally {
    await k.close();
  }
}

export function pick<T>(items: readonly T[], n: number): T[] {
  const pool = [...items];
  const out: T[] = [];
  while (out.length < n && pool.length > 0) out.push(pool.splice(Math.floor(Math.random() * pool.length), 1)[0]!);
  return out;
}

export { parityNs };
