// Where a space keeps its groups and shares: two fields of its fragfs.json entry (docs/FORMAT.md
// 2.7), read by anyone who holds the store (members open what is sealed to them there) and changed
// only by a holder of the space's keys. Older fragfs ignores the fields (unknown keys are kept).

import { FragfsError } from '../errors.js';
import { readStoreConfig, writeStoreConfig, type SpaceConfig } from '../repo/store-config.js';

/** One group (docs/FORMAT.md 2.7.1), under a random id. */
export interface GroupRecord {
  /** The current epoch, 1 on creation, one more at each removal of a member (of it or a subgroup). */
  epoch: number;
  /** The current epoch's age recipient: what access is granted to. */
  recipient: string;
  /**
   * One armored age file per epoch, oldest first, holding the identities of that epoch and every
   * earlier one, sealed to the members and the subgroups' recipients of that epoch. Only the current
   * one is ever sealed again (when members or subgroups are added): a member removed keeps opening
   * the boxes of the epochs they were in, and no later one.
   */
  boxes: string[];
  /** sealAdmin: name, members, the epochs' identities. */
  admin: string;
  createdMs: number;
}

/** One shared folder (docs/FORMAT.md 2.7.2), under a random id. */
export interface ShareRecord {
  createdMs: number;
  /** base64(nonce || AES-256-GCM(share key, nonce, body)): the folder's entry and what reading it needs. */
  body: string;
  /** Armored age file of the share key, sealed to the recipients; absent when the link carries the key. */
  grants?: string;
  /** sealAdmin: what was shared, from which snapshot, to whom. */
  admin: string;
}

export interface PeopleFields {
  groups?: Record<string, GroupRecord>;
  shares?: Record<string, ShareRecord>;
}

export type PeopleSpace = SpaceConfig & PeopleFields;

const ID_RE = /^[0-9a-f]{32}$/;

/** The space entry with its people fields, checked for shape (BAD_STORE naming the field). */
export async function readPeople(storePath: string, space: string): Promise<PeopleSpace> {
  const config = await readStoreConfig(storePath);
  const entry = config.spaces[space] as PeopleSpace | undefined;
  if (entry === undefined) throw new FragfsError('NO_STORE', `the store at ${storePath} has no space ${space}`);
  checkRecords(entry.groups, 'groups', ['epoch', 'recipient', 'boxes', 'admin', 'createdMs']);
  checkRecords(entry.shares, 'shares', ['createdMs', 'body', 'admin']);
  return entry;
}

function checkRecords(v: unknown, field: string, required: string[]): void {
  if (v === undefined) return;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FragfsError('BAD_STORE', `fragfs.json: ${field} is not an object`);
  for (const [id, r] of Object.entries(v)) {
    if (!ID_RE.test(id)) throw new FragfsError('BAD_STORE', `fragfs.json: ${field} has an id that is not 32 hex digits`);
    if (typeof r !== 'object' || r === null) throw new FragfsError('BAD_STORE', `fragfs.json: ${field}.${id} is not an object`);
    for (const k of required) {
      if ((r as Record<string, unknown>)[k] === undefined) throw new FragfsError('BAD_STORE', `fragfs.json: ${field}.${id} has no ${k}`);
    }
  }
}

/**
 * Reads fragfs.json, lets `change` edit this space's entry, and writes the file back atomically.
 * Two changes at once from two machines may lose one (the last write wins), as for every change of
 * fragfs.json; commands that change people are run by the space's holders, one at a time.
 */
export async function updatePeople<T>(storePath: string, space: string, change: (entry: PeopleSpace) => Promise<T> | T): Promise<T> {
  const config = await readStoreConfig(storePath);
  const entry = config.spaces[space] as PeopleSpace | undefined;
  if (entry === undefined) throw new FragfsError('NO_STORE', `the store at ${storePath} has no space ${space}`);
  const out = await change(entry);
  await writeStoreConfig(storePath, config);
  return out;
}
