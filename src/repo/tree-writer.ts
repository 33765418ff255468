// Turns entries and extents into metadata fragments and back: the one place that decides when a
// manifest is inline or paged, how directories are ordered, and what a snapshot object holds.
// Both `put` and mount snapshots go through here, so a tree written either way has the same bytes.

import { hostname } from 'node:os';
import { FragfsError } from '../errors.js';
import { checkExtents } from '../fragment/meta-schema.js';
import {
  MANIFEST_INLINE_MAX,
  MANIFEST_PAGE_MAX,
  META_VERSION,
  type Entry,
  type Extent,
  type RefObject,
  type SnapshotObject,
} from '../fragment/tree-format.js';
import { compareNames, showName } from '../fragment/names.js';
import type { Repo } from './repo.js';

/** Content fields of a file entry for these extents: inline when few, else manifest pages. */
export async function fileContent(repo: Repo, extents: Extent[]): Promise<FileContent> {
  if (extents.length <= MANIFEST_INLINE_MAX) return { blocks: extents };
  const pages: string[] = [];
  const pageKeys: Uint8Array[] = [];
  for (let i = 0; i < extents.length; i += MANIFEST_PAGE_MAX) {
    const { id, key } = await repo.putMetaKeyed({ kind: 'manifest', v: META_VERSION, blocks: extents.slice(i, i + MANIFEST_PAGE_MAX) });
    pages.push(id);
    if (key !== undefined) pageKeys.push(key);
  }
  return pageKeys.length === pages.length ? { pages, pageKeys } : { pages };
}

/** The content fields of a file entry: inline extents, or manifest pages with their keys. */
export type FileContent = Pick<Entry, 'blocks' | 'pages' | 'pageKeys'>;

/** A folder's dir object as its parent entry names it: the id and (metadata version 3) its key. */
export interface DirRef {
  id: string;
  key?: Uint8Array;
}

/** Sets `e`'s dir fields to name `d`. */
export function setDir(e: Entry, d: DirRef): Entry {
  e.dir = d.id;
  if (d.key === undefined) delete e.dirKey;
  else e.dirKey = d.key;
  return e;
}

/**
 * All extents of a file entry, in file order, checked as a whole: sorted, not overlapping and within
 * the entry's size (FORMAT.md 2.3.7), across manifest pages too (each page alone passed the schema).
 * get, cat, verify and snapshot mounts all read files through here, so they agree on every file or
 * all refuse it: CORRUPT naming the manifest page (or, for inline extents, the file) and `where`.
 */
export async function readExtents(repo: Repo, entry: Entry, where?: string): Promise<Extent[]> {
  const at = where === undefined ? '' : ` (in ${where})`;
  if (entry.blocks) {
    checkExtents(
      (why) => {
        throw new FragfsError('CORRUPT', `file ${where ?? entry.name} is corrupt: ${why}`, where === undefined ? {} : { path: where });
      },
      () => 'blocks',
      entry.blocks,
      entry.size,
    );
    return entry.blocks;
  }
  if (!entry.pages) return [];
  const out: Extent[] = [];
  let end = 0;
  for (const [i, id] of entry.pages.entries()) {
    const page = await repo.getMeta(id, 'manifest', where, entry.pageKeys?.[i]);
    for (const x of page.blocks) {
      const bad =
        x.offset < end
          ? `its extent at offset ${x.offset} overlaps or precedes the one before it (ends at ${end})`
          : x.offset + x.plainSize > entry.size
            ? `its extent at offset ${x.offset} ends at ${x.offset + x.plainSize}, past the file's size ${entry.size}`
            : undefined;
      if (bad !== undefined) {
        throw new FragfsError('CORRUPT', `manifest page ${id} is corrupt: ${bad}${at}`, {
          fragmentId: id,
          ...(where === undefined ? {} : { path: where }),
        });
      }
      end = x.offset + x.plainSize;
      out.push(x);
    }
  }
  return out;
}

/** Stores a directory (entries sorted by the bytes of their names) and returns its meta id and key. */
export async function writeDir(repo: Repo, entries: Entry[]): Promise<DirRef> {
  const sorted = [...entries].sort((a, b) => compareNames(a.name, b.name));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i - 1]!.name.equals(sorted[i]!.name)) {
      throw new FragfsError('EXISTS', `two entries named ${showName(sorted[i]!.name)} in one directory`);
    }
  }
  return repo.putMetaKeyed({ kind: 'dir', v: META_VERSION, entries: sorted });
}

export interface SnapshotInfo {
  source: Buffer[];
  name?: string;
  files: number;
  dirs: number;
  logicalBytes: number;
  createdMs?: number;
}

/** Stores the snapshot object for `root` and a ref naming it; returns the meta key. */
export async function writeSnapshot(repo: Repo, root: Entry, info: SnapshotInfo): Promise<string> {
  const createdMs = info.createdMs ?? Date.now();
  const snap: SnapshotObject = {
    kind: 'snapshot',
    v: META_VERSION,
    createdMs,
    source: info.source,
    hostname: hostname(),
    blockSize: repo.blockSize,
    root,
    files: info.files,
    dirs: info.dirs,
    logicalBytes: info.logicalBytes,
  };
  // Write ordering: everything the tree names is durable before the object that names the tree,
  // and the snapshot before the ref that lists it.
  await repo.sync();
  const key = await repo.putMeta(snap);
  await repo.sync();
  const ref: RefObject = { kind: 'ref', v: META_VERSION, snapshot: key, createdMs, logicalBytes: info.logicalBytes };
  if (info.name !== undefined) ref.name = info.name;
  await repo.putRef(ref);
  await repo.sync();
  return key;
}
