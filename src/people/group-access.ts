// Groups as ways into a whole space: a key slot sealed to a group's current recipient (`fragfs key
// add STORE --recipient @group`) opens for every member, and follows the group's epochs: when a
// member is removed, each such slot is sealed again to the new epoch and the old one goes, so the
// removed member's identity opens the space no more (what they read while a member stays read).

import { blake3DeriveKey } from '../codec/blake3.js';
import { PEOPLE_ADMIN_KEY_CONTEXT } from './admin-seal.js';
import { Groups } from './groups.js';
import { readPeople, updatePeople } from './people-config.js';
import { addRecipientKey, listKeys, removeKey, type OpenedSpace } from './space-keys.js';

export function adminKeyOf(o: OpenedSpace): Uint8Array {
  return blake3DeriveKey(PEOPLE_ADMIN_KEY_CONTEXT, o.unlocked.keys.masterKey);
}

/**
 * Runs `change` on the space's groups and writes them back; then seals the key slots of every group
 * whose recipient changed (a new epoch) to its new recipient. Returns what `change` returned.
 */
export async function changeGroups<T>(o: OpenedSpace, change: (g: Groups) => Promise<T>): Promise<T> {
  const adminKey = adminKeyOf(o);
  let moved = new Map<string, string>();
  const out = await updatePeople(o.storePath, o.space, async (entry) => {
    const groups = Groups.open(entry, adminKey);
    const before = new Map(groups.list().map((g) => [g.id, g.record.recipient]));
    const r = await change(groups);
    await groups.save(entry);
    moved = new Map(groups.list().filter((g) => before.has(g.id) && before.get(g.id) !== g.record.recipient).map((g) => [g.id, g.record.recipient]));
    return r;
  });
  for (const k of await listKeys(o)) {
    const to = k.group === undefined ? undefined : moved.get(k.group);
    if (to === undefined) continue;
    // The new slot first: the space is never left without this way in.
    await addRecipientKey(o, to, { group: k.group!, ...(k.label === undefined ? {} : { label: k.label }) });
    await removeKey(o, k.id);
  }
  return out;
}

/** Adds a key slot sealed to group `name`'s current recipient; returns its id. */
export async function addGroupKey(o: OpenedSpace, name: string, label?: string): Promise<string> {
  const g = Groups.open(await readPeople(o.storePath, o.space), adminKeyOf(o)).get(name);
  return addRecipientKey(o, g.record.recipient, { group: g.id, ...(label === undefined ? {} : { label }) });
}

/** Group ids -> names, for showing slots sealed to groups. */
export async function groupNames(o: OpenedSpace): Promise<Map<string, string>> {
  return new Map(Groups.open(await readPeople(o.storePath, o.space), adminKeyOf(o)).list().map((g) => [g.id, g.admin.name]));
}
