// What the reading commands (get, ls, cat, mount) share for a share link in place of STORE KEY:
// the identities to open it with, and opening it.

import { FragfsError } from '../src/errors.js';
import type { SnapshotObject } from '../src/fragment/tree-format.js';
import { readIdentityFile } from '../src/people/age-box.js';
import type { Repo } from '../src/repo/repo.js';
import { loadSnapshot, splitKeyPath } from '../src/repo/tree-reader.js';
import { argBytes } from './argv-bytes.js';
import { withRepo, type StoreOptions } from './common.js';
import { isShareLink } from '../src/people/share-link.js';
import { openShareLink, type OpenedShare } from '../src/people/shares.js';

export { isShareLink };

/** The identities given by --identity FILE or FRAGFS_IDENTITY=FILE (none: an empty list). */
export async function identitiesOf(opts: { identity?: string }): Promise<string[]> {
  const file = opts.identity ?? process.env['FRAGFS_IDENTITY'];
  return file === undefined || file === '' ? [] : readIdentityFile(file);
}

/** Opens `link` with the identities of `opts` and runs `fn`; the read-only repo is closed after. */
export async function withShare<T>(link: string, opts: { identity?: string }, fn: (s: OpenedShare) => Promise<T>): Promise<T> {
  const opened = await openShareLink(link, await identitiesOf(opts));
  try {
    return await fn(opened);
  } finally {
    await opened.repo.close();
  }
}

/**
 * Runs `fn` on the tree STORE KEY[/path] names, or (when `storeArg` is a share link, KEY left out)
 * the tree LINK[/path] names: the repo to read it with, the name of the snapshot for messages, the
 * snapshot (a share's is its folder) and the path inside it.
 */
export async function withTree<T>(
  storeArg: string,
  keyArg: string | undefined,
  opts: StoreOptions & { identity?: string },
  fn: (repo: Repo, key: string, snapshot: SnapshotObject, path: Buffer[]) => Promise<T>,
): Promise<T> {
  if (isShareLink(storeArg)) {
    if (keyArg !== undefined) throw new FragfsError('USAGE', 'a share link stands for STORE and KEY: give LINK[/path] alone');
    const spec = splitKeyPath(argBytes(storeArg));
    return withShare(spec.key, opts, (s) => fn(s.repo, s.label, s.snapshot, spec.path));
  }
  if (keyArg === undefined) throw new FragfsError('USAGE', 'give STORE KEY[/path] (or a share link alone)');
  const spec = splitKeyPath(argBytes(keyArg));
  return withRepo(storeArg, { ...opts, readOnly: true }, async (repo) => {
    const { key, snapshot } = await loadSnapshot(repo, spec.key);
    return fn(repo, key, snapshot, spec.path);
  });
}
