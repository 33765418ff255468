// Creates real stores for tests: a temp folder, a real backend, and a cheap passphrase KDF so tests
// stay fast (the CLI's own `init` uses the documented default cost).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Repo } from '../../src/repo/repo.js';
import type { BackendName } from '../../src/store/store.js';
import { TEST_PASSPHRASE } from './cli.js';

export const TEST_KDF_COST = 10;

export async function tempDir(prefix = 'fragfs-test-'): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** A new store at `storePath` on `backend`, closed again: tests then drive it through the CLI. */
export async function createStore(storePath: string, backend: BackendName, o: { blockSize?: number } = {}): Promise<void> {
  const repo = await Repo.init({
    storePath,
    backend,
    passphrase: TEST_PASSPHRASE,
    kdfCost: TEST_KDF_COST,
    ...(o.blockSize === undefined ? {} : { blockSize: o.blockSize }),
  });
  await repo.close();
}

export async function openStore(storePath: string): Promise<Repo> {
  return Repo.open({ storePath, passphrase: TEST_PASSPHRASE });
}
