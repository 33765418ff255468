// What a store space still needs: every fragment named, directly or through other fragments, by a
// root: a snapshot (through its ref; a damaged ref still names its snapshot by its id), a shared
// folder (src/people/shares.ts), or the live
// tree a read-write mount keeps (file extents, files open but unlinked, and the meta ids the live
// state caches for the next snapshot). gc deletes only what this does not reach, so anything it
// cannot read is an error, never a gap.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FragfsError } from '../errors.js';
import { showName } from '../fragment/names.js';
import type { Entry } from '../fragment/tree-format.js';
import type { Repo } from '../repo/repo.js';
import { Semaphore, settleAll } from '../repo/semaphore.js';
import { loadSnapshot, readDirEntries } from '../repo/tree-reader.js';
import { shareRoots } from '../people/shares.js';
import { ROOT_INO, S_IFDIR, S_IFMT, S_IFREG } from '../vfs/inode.js';
import { liveKeysOf } from '../vfs/live-keys.js';
import { LiveState } from '../vfs/live-state.js';
import { stateDirOf } from '../vfs/live-vfs.js';

/** Metadata fragments read at once: a walk is a chain of small reads, each waiting on the disk. */
const READS_IN_FLIGHT = 32;

export interface Reachable {
  data: Set<string>;
  meta: Set<string>;
  /** The data blocks the snapshots name (the live tree's aside) and their plaintext sizes: for stats. */
  snapshotBlocks: Map<string, number>;
  snapshots: number;
  liveFiles: number;
}

/** Every fragment the space's roots reach. Fails (naming the fragment) when any of them cannot be read. */
export async function reachable(repo: Repo, liveStatePath: string | undefined, known?: Reachable): Promise<Reachable> {
  const w = new Walk(repo);
  // A fragment is never changed, so what an earlier walk reached below a folder is reached again:
  // a second look (gc's sweep) reads only the folders that are new since (a ref written meanwhile,
  // the live tree's latest), not every snapshot again.
  if (known) {
    for (const id of known.meta) w.out.meta.add(id);
    for (const id of known.data) w.out.data.add(id);
  }
  // Refs and fragments another process (a mount, a put) wrote a moment ago must be seen.
  repo.store.refresh?.();
  const keys = new Set<string>();
  const refs = await repo.listRefs({ onError: (_e, id) => keys.add(id) });
  for (const r of refs) keys.add(r.snapshot);
  await settleAll(
    [...keys].map(async (key) => {
      if (known?.meta.has(key)) {
        w.out.snapshots++;
        return;
      }
      let root: Entry;
      try {
        root = (await w.limit.run(() => loadSnapshot(repo, key))).snapshot.root;
      } catch (e) {
        throw unreadable(e, key, `snapshot ${key.slice(0, 12)}`);
      }
      w.out.meta.add(key);
      w.out.snapshots++;
      await w.entry(root, `${key.slice(0, 12)}:/`);
    }),
  );
  // A shared folder is kept as long as its share is in the store, its snapshot forgotten or not.
  // (The memory backend has no fragfs.json: nothing is shared there.)
  if (repo.storePath !== '') {
    await settleAll((await shareRoots(repo)).map(({ id, root }) => w.entry(root, `share ${id.slice(0, 12)}:/`)));
  }
  if (liveStatePath !== undefined) await walkLive(w, liveStatePath);
  return w.out;
}

/** One walk: what it reached, and the bound on reads in flight shared by all its branches. */
class Walk {
  readonly out: Reachable = { data: new Set(), meta: new Set(), snapshotBlocks: new Map(), snapshots: 0, liveFiles: 0 };
  readonly limit = new Semaphore(READS_IN_FLIGHT);
  /** Set once the snapshots are walked: what comes after is the live tree's. */
  live = false;

  private block(id: string, plainSize: number): void {
    this.out.data.add(id);
    if (!this.live) this.out.snapshotBlocks.set(id, plainSize);
  }

  constructor(readonly repo: Repo) {}

  async entry(e: Entry, path: string): Promise<void> {
    if (e.type === 'file') {
      for (const b of e.blocks ?? []) this.block(b.id, b.plainSize);
      await this.pages(e.pages ?? [], path);
      return;
    }
    if (e.type !== 'dir' || e.dir === undefined || this.out.meta.has(e.dir)) return;
    // Marked before its children: no fragment is read twice, and a cycle (a hash collision away)
    // cannot walk forever.
    this.out.meta.add(e.dir);
    let entries: Entry[];
    try {
      entries = await this.limit.run(() => readDirEntries(this.repo, e, path));
    } catch (err) {
      throw unreadable(err, e.dir, path);
    }
    const base = path.endsWith('/') ? path : `${path}/`;
    await settleAll(entries.map((c) => this.entry(c, `${base}${showName(c.name)}`)));
  }

  async pages(pages: readonly string[], path: string): Promise<void> {
    const fresh = pages.filter((id) => !this.out.meta.has(id));
    for (const id of fresh) this.out.meta.add(id);
    await settleAll(
      fresh.map(async (id) => {
        try {
          const page = await this.limit.run(() => this.repo.getMeta(id, 'manifest', path));
          for (const b of page.blocks) this.block(b.id, b.plainSize);
        } catch (err) {
          throw unreadable(err, id, path);
        }
      }),
    );
  }
}

/** The live tree, read through one read transaction of its state (a mount may be writing beside it). */
async function walkLive(w: Walk, liveStatePath: string): Promise<void> {
  const { out } = w;
  w.live = true;
  const dir = stateDirOf(liveStatePath);
  if (!existsSync(join(dir, 'data.mdb'))) return;
  const state = new LiveState({ path: dir, readOnly: true, owner: { uid: 0, gid: 0 }, keys: liveKeysOf(w.repo) });
  const rtx = state.readTxn();
  // The live state is seen as of now: the fragments it names were written before, so the store's
  // reads must be at least as recent (its cached trees may be from a snapshot of a moment ago).
  w.repo.store.refresh?.();
  try {
    const cachedDirs: string[] = [];
    const cachedPages: string[] = [];
    const file = (ino: number): void => {
      out.liveFiles++;
      for (const { ref } of state.extentsFrom(ino, 0, rtx)) out.data.add(ref.id);
      const c = state.getContentCache(ino, rtx);
      if (c) cachedPages.push(...c.pages);
    };
    const walk = (ino: number): void => {
      const d = state.getDirCache(ino, rtx);
      if (d) cachedDirs.push(d.id);
      for (const e of [...state.listDir(ino, rtx)]) {
        const type = e.typeBits & S_IFMT;
        if (type === S_IFDIR) walk(e.ino);
        else if (type === S_IFREG) file(e.ino);
      }
    };
    walk(ROOT_INO);
    // Open files whose last name is gone still read their blocks.
    for (const ino of state.listOrphans()) file(ino);
    // The next snapshot reuses these as they are: everything below them is needed too.
    await settleAll(cachedDirs.map((id) => w.entry({ type: 'dir', dir: id, name: Buffer.alloc(0) } as Entry, 'live:/')));
    await w.pages(cachedPages, 'live:/');
  } catch (e) {
    throw e instanceof FragfsError ? e : new FragfsError('IO', `reading the live state at ${dir}: ${(e as Error).message}`);
  } finally {
    rtx.done();
    await state.close();
  }
}

function unreadable(e: unknown, id: string, where: string): FragfsError {
  const why = e instanceof Error ? e.message : String(e);
  return new FragfsError('CORRUPT', `gc cannot tell what fragment ${id} (at ${where}) refers to, so it deletes nothing: ${why}; run fragfs verify`, {
    fragmentId: id,
  });
}
