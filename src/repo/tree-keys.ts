// Gives every folder and manifest page of a tree its own key (metadata version 3, docs/FORMAT.md
// 2.2.1), writing again only what a store of an earlier version sealed under the space's key.
// Writers keep one invariant (docs/DESIGN.md, "Folders that can be handed on"): a dir entry that
// carries a key names a tree whose every folder and page carries one, so a share needs to look at the
// top only, and a tree written before keys costs one rewrite of its folders and pages, never of data.

import { META_VERSION, type Entry } from '../fragment/tree-format.js';
import type { Repo } from './repo.js';
import { childPath, readDirEntries } from './tree-reader.js';
import { setDir, writeDir, type DirRef, type FileContent } from './tree-writer.js';

/** Manifest pages with their keys: pages written before keys are written again (same extents, version 3). */
export async function keyedPages(repo: Repo, pages: readonly string[], pageKeys: readonly Uint8Array[] | undefined, where?: string): Promise<Required<Pick<FileContent, 'pages' | 'pageKeys'>>> {
  if (pageKeys !== undefined && pageKeys.length === pages.length) return { pages: [...pages], pageKeys: [...pageKeys] };
  const outPages: string[] = [];
  const outKeys: Uint8Array[] = [];
  for (const id of pages) {
    const page = await repo.getMeta(id, 'manifest', where);
    const put = await repo.putMetaKeyed({ kind: 'manifest', v: META_VERSION, blocks: page.blocks });
    if (put.key === undefined) throw new Error('keyedPages: a version 3 manifest came back without a key');
    outPages.push(put.id);
    outKeys.push(put.key);
  }
  return { pages: outPages, pageKeys: outKeys };
}

/**
 * `entry` with a key on every folder and page below it. Folders already keyed are kept as they are
 * (the invariant above); a folder reached twice (equal folders dedup to one fragment) is rewritten once.
 */
export async function keyedTree(repo: Repo, entry: Entry, where = '/', memo = new Map<string, DirRef>()): Promise<Entry> {
  if (entry.type === 'file' && entry.pages !== undefined && entry.pageKeys === undefined) {
    return { ...entry, ...(await keyedPages(repo, entry.pages, undefined, where)) };
  }
  if (entry.type !== 'dir' || entry.dir === undefined || entry.dirKey !== undefined) return entry;
  const done = memo.get(entry.dir);
  if (done !== undefined) return setDir({ ...entry }, done);
  const children: Entry[] = [];
  for (const c of await readDirEntries(repo, entry, where)) children.push(await keyedTree(repo, c, childPath(where, c.name), memo));
  const d = await writeDir(repo, children);
  memo.set(entry.dir, d);
  return setDir({ ...entry }, d);
}
