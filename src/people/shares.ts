// Sharing one folder of a snapshot (seed 002: "point at a directory and get a link"): a share is the
// folder's entry, whose dir object and everything below it open with the keys the entries carry
// (metadata version 3), plus the key of the space's pack indexes, sealed under a random share key.
// The link carries that key, or the key is sealed to people and groups (age) in the store. Nothing
// else of the space opens with it: no parent or sibling, not the convergence secret. Sharing costs a
// count of the folder (each distinct folder read once) and one fragfs.json write, whatever its size.

import { randomBytes } from 'node:crypto';
import { gcmOpen, gcmSeal } from '../codec/aes-gcm.js';
import { FragfsError } from '../errors.js';
import { checkMetaObject, failWith, metaFromWire, metaToWire } from '../fragment/meta-schema.js';
import { packPlain, plainUnpackr } from '../fragment/solmet.js';
import { META_VERSION, type Entry, type SnapshotObject } from '../fragment/tree-format.js';
import { showName } from '../fragment/names.js';
import { storeLocation } from '../remote/store-site.js';
import { Repo } from '../repo/repo.js';
import { loadSnapshot, readDirEntries, resolveEntry, showTreePath } from '../repo/tree-reader.js';
import { keyedTree } from '../repo/tree-keys.js';
import { PEOPLE_ADMIN_KEY_CONTEXT, openAdmin, sealAdmin } from './admin-seal.js';
import { openWith, sealTo } from './age-box.js';
import { Groups, reachableIdentities } from './groups.js';
import { readPeople, updatePeople, type ShareRecord } from './people-config.js';
import { formatShareLink, parseShareLink } from './share-link.js';

const SHARE_ADMIN = 'fragfs share admin v1';
const SHARE_BODY_AAD = Buffer.from('fragfs share body v1', 'utf8');
const NONCE_BYTES = 12;

/** What a space's holder sees of a share. */
export interface ShareAdmin {
  /** The snapshot the folder was taken from. */
  snapshot: string;
  /** The folder inside it, as `ls -b` shows it. */
  path: string;
  /** Recipients and @groups it was sealed to (empty: the link is the capability). */
  to: string[];
  /** The share key (base64): gc opens the share with it to keep what the folder needs. */
  key?: string;
}

/** A share as `fragfs shares` lists it. */
export interface ShareListing extends Omit<ShareAdmin, 'key'> {
  id: string;
  createdMs: number;
  /** Its link: for a link share, with its key (the space's holders may hand it out again). */
  link: string;
}

export interface ShareInfo extends ShareListing {
  files: number;
  dirs: number;
  logicalBytes: number;
}

/** Counts a tree the way a mount snapshot declares it (every name; each distinct folder read once). */
async function countTree(repo: Repo, root: Entry): Promise<{ files: number; dirs: number; logicalBytes: number }> {
  const memo = new Map<string, { files: number; dirs: number; logicalBytes: number }>();
  const visit = async (e: Entry, where: string): Promise<{ files: number; dirs: number; logicalBytes: number }> => {
    if (e.type === 'file') return { files: 1, dirs: 0, logicalBytes: e.size };
    if (e.type !== 'dir' || e.dir === undefined) return { files: 0, dirs: 0, logicalBytes: 0 };
    const hit = memo.get(e.dir);
    if (hit) return hit;
    const t = { files: 0, dirs: 0, logicalBytes: 0 };
    for (const c of await readDirEntries(repo, e, where)) {
      const s = await visit(c, `${where}/${showName(c.name)}`);
      t.files += s.files;
      t.dirs += s.dirs + (c.type === 'dir' ? 1 : 0);
      t.logicalBytes += s.logicalBytes;
    }
    memo.set(e.dir, t);
    return t;
  };
  return visit(root, '');
}

function sealBody(shareKey: Uint8Array, snapshot: SnapshotObject, packIndexKey: Uint8Array): string {
  const plain = packPlain([1, metaToWire(snapshot), packIndexKey]);
  const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
  return Buffer.concat([nonce, gcmSeal(shareKey, nonce, plain, SHARE_BODY_AAD)]).toString('base64');
}

function openBody(shareKey: Uint8Array, body: string, id: string): { snapshot: SnapshotObject; packIndexKey: Uint8Array } {
  let plain: Uint8Array;
  try {
    const raw = Buffer.from(body, 'base64');
    const opened = gcmOpen(shareKey, raw.subarray(0, NONCE_BYTES), raw.subarray(NONCE_BYTES), SHARE_BODY_AAD);
    if (opened === undefined) throw new Error('the share body does not open');
    plain = opened;
  } catch {
    throw new FragfsError('BAD_PASSPHRASE', `share ${id}: the key does not open it (a wrong or damaged link)`);
  }
  const fail = failWith('CORRUPT', `share ${id}`);
  let value: unknown[] = [];
  try {
    value = plainUnpackr.unpack(plain) as unknown[];
  } catch (e) {
    fail(`its body is not msgpack (${(e as Error).message})`);
  }
  if (!Array.isArray(value) || value[0] !== 1 || value.length !== 3) fail('not a version 1 share body');
  const snapshot = metaFromWire(fail, (why) => fail(`written by a newer fragfs: ${why}`), value[1]);
  checkMetaObject(fail, snapshot);
  if (snapshot.kind !== 'snapshot') fail('its body is not a tree');
  const packIndexKey = value[2];
  if (!(packIndexKey instanceof Uint8Array) || packIndexKey.length !== 32) fail('its pack index key is not 32 bytes');
  return { snapshot: snapshot as SnapshotObject, packIndexKey: new Uint8Array(packIndexKey as Uint8Array) };
}

/**
 * Shares `path` of snapshot `keyOrName`: to `to` (age recipients, `@group`s) or, with none, to
 * whoever holds the link. A tree written before folders had keys is written again first (its
 * folders only). Returns the link.
 */
export async function createShare(repo: Repo, o: { snapshot: string; path: Buffer[]; to: string[] }): Promise<ShareInfo> {
  const { key, snapshot } = await loadSnapshot(repo, o.snapshot);
  const found = o.path.length > 0 ? await resolveEntry(repo, snapshot.root, o.path) : snapshot.root;
  const keyed = await keyedTree(repo, found, showTreePath(o.path));
  if (keyed !== found) await repo.sync();
  // Held against a gc running now (src/gc/gc-guard.ts): the share names this tree from now on, even
  // if its snapshot is forgotten before the share is in fragfs.json.
  if (keyed.type === 'dir' && keyed.dir !== undefined) await (await repo.writerGuard())?.hold('meta', keyed.dir, true);
  const totals = o.path.length > 0 || keyed !== found ? await countTree(repo, keyed) : { files: snapshot.files, dirs: snapshot.dirs, logicalBytes: snapshot.logicalBytes };
  const createdMs = Date.now();
  // The folder's own name stays behind: a share reveals nothing above the folder.
  const root: Entry = { ...keyed, name: Buffer.alloc(0) };
  const body: SnapshotObject = { kind: 'snapshot', v: META_VERSION, createdMs, source: [], hostname: '', blockSize: repo.blockSize, root, ...totals };
  const shareKey = new Uint8Array(randomBytes(32));
  const id = randomBytes(16).toString('hex');
  const adminKey = repo.deriveKey(PEOPLE_ADMIN_KEY_CONTEXT);
  const path = showTreePath(o.path);
  await updatePeople(repo.storePath, repo.space, async (entry) => {
    const groups = Groups.open(entry, adminKey);
    const recipients = o.to.map((t) => groups.resolveRecipient(t).recipient);
    const record: ShareRecord = {
      createdMs,
      body: sealBody(shareKey, body, repo.packIndexKey()),
      ...(recipients.length > 0 ? { grants: await sealTo(recipients, shareKey) } : {}),
      admin: sealAdmin(adminKey, SHARE_ADMIN, { snapshot: key, path, to: o.to, key: Buffer.from(shareKey).toString('base64') } satisfies ShareAdmin),
    };
    entry.shares = { ...(entry.shares ?? {}), [id]: record };
  });
  const link = formatShareLink({ location: storeLocation(repo.storePath), space: repo.space, id, ...(o.to.length === 0 ? { key: shareKey } : {}) });
  return { id, createdMs, link, snapshot: key, path, to: o.to, ...totals };
}

/** The space's shares as its holder sees them (link shares with their keys). */
export async function listShares(repo: Repo): Promise<ShareListing[]> {
  const entry = await readPeople(repo.storePath, repo.space);
  const adminKey = repo.deriveKey(PEOPLE_ADMIN_KEY_CONTEXT);
  const out: ShareListing[] = [];
  for (const [id, r] of Object.entries(entry.shares ?? {})) {
    const { key, ...admin } = openAdmin<ShareAdmin>(adminKey, SHARE_ADMIN, r.admin, `share ${id}`);
    const linkKey = r.grants === undefined && key !== undefined ? { key: new Uint8Array(Buffer.from(key, 'base64')) } : {};
    out.push({ id, createdMs: r.createdMs, link: formatShareLink({ location: storeLocation(repo.storePath), space: repo.space, id, ...linkKey }), ...admin });
  }
  return out.sort((a, b) => a.createdMs - b.createdMs);
}

/**
 * The folder every share of the space names, for gc (a share keeps what it names, as a snapshot
 * does, until it is removed). Opened with the space's keys.
 */
export async function shareRoots(repo: Repo): Promise<{ id: string; root: Entry }[]> {
  const entry = await readPeople(repo.storePath, repo.space);
  const adminKey = repo.deriveKey(PEOPLE_ADMIN_KEY_CONTEXT);
  const out: { id: string; root: Entry }[] = [];
  for (const [id, r] of Object.entries(entry.shares ?? {})) {
    const admin = openAdmin<ShareAdmin>(adminKey, SHARE_ADMIN, r.admin, `share ${id}`);
    if (admin.key === undefined) throw new FragfsError('BAD_STORE', `share ${id} in fragfs.json has no key for this space`);
    out.push({ id, root: openBody(new Uint8Array(Buffer.from(admin.key, 'base64')), r.body, id).snapshot.root });
  }
  return out;
}

/** Removes a share from the store: its link stops opening (what was read through it stays read). */
export async function removeShare(repo: Repo, id: string): Promise<void> {
  await updatePeople(repo.storePath, repo.space, (entry) => {
    if (entry.shares?.[id] === undefined) throw new FragfsError('NOT_FOUND', `no share ${id} in this space`);
    const { [id]: _gone, ...rest } = entry.shares;
    entry.shares = rest;
  });
}

/** What a link opens: a read-only repo without the space's keys, and the shared tree as a snapshot. */
export interface OpenedShare {
  repo: Repo;
  snapshot: SnapshotObject;
  /** Stands for a meta key in messages. */
  label: string;
}

/**
 * Opens a share link: with the key it carries, or with `identities` (and the group identities they
 * reach) for a share sealed to people. Refusals are one line, exit 4; a link to a share no longer
 * in the store is NOT_FOUND.
 */
export async function openShareLink(text: string, identities: readonly string[], o: { threads?: number } = {}): Promise<OpenedShare> {
  const link = parseShareLink(text);
  const entry = await readPeople(link.location, link.space);
  const record = entry.shares?.[link.id];
  if (record === undefined) throw new FragfsError('NOT_FOUND', `share ${link.id} is not in the store at ${link.location} (removed, or a wrong link)`);
  let shareKey = link.key;
  if (shareKey === undefined) {
    if (record.grants === undefined) throw new FragfsError('BAD_KEY', `share ${link.id} is a link share: its link carries its key`);
    if (identities.length === 0) {
      throw new FragfsError('NO_PASSPHRASE', `share ${link.id} is sealed to people: give your identity with --identity FILE or FRAGFS_IDENTITY`);
    }
    const reach = await reachableIdentities(entry, identities);
    shareKey = await openWith(reach, record.grants, `share ${link.id}`);
    if (shareKey === undefined || shareKey.length !== 32) {
      throw new FragfsError('BAD_PASSPHRASE', `share ${link.id}: none of the identities given can open it (not shared to them, or removed before it was shared)`);
    }
  }
  const { snapshot, packIndexKey } = openBody(shareKey, record.body, link.id);
  const repo = await Repo.openShare({ storePath: link.location, space: link.space, packIndexKey, ...(o.threads === undefined ? {} : { threads: o.threads }) });
  return { repo, snapshot, label: `share ${link.id}` };
}
