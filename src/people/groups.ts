// Groups of people (seed 002): a group is a set of age recipients with a key pair of its own per
// epoch; access granted to a group is sealed to its current epoch's recipient. Groups nest like
// Internet domains: `research.acme` is inside `acme`, so `acme`'s epochs are also sealed to
// `research.acme`'s current recipient and its members reach what `acme` was given. Removing a member
// starts a new epoch of the group and of every group it is inside: what is shared from then on is out
// of the removed member's reach; what they could read before stays readable to them (the boxes of
// the epochs they were in still open with their identity, and the keys were theirs anyway: no store
// that cannot check anyone could undo that).

import { randomBytes } from 'node:crypto';
import { FragfsError } from '../errors.js';
import { sealAdmin, openAdmin } from './admin-seal.js';
import { checkRecipient, newIdentity, openWith, recipientOf, sealTo } from './age-box.js';
import type { GroupRecord, PeopleSpace } from './people-config.js';

/** Labels of 1..63 of [a-z0-9_-] (starting with a letter or digit), dot-separated, 253 at most. */
const GROUP_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}(\.[a-z0-9][a-z0-9_-]{0,62})*$/;
const GROUP_ADMIN = 'fragfs group admin v1';

/** What only the space's holders read of a group. `identities[i]` is epoch i + 1's. */
export interface GroupAdmin {
  name: string;
  members: string[];
  identities: string[];
}

/** What a group's box holds, for its members: every epoch's identity, oldest first. */
interface GroupBox {
  group: string;
  identities: string[];
}

export function checkGroupName(name: string): string {
  if (name.length > 253 || !GROUP_NAME_RE.test(name)) {
    throw new FragfsError('USAGE', `not a group name: ${JSON.stringify(name)} (labels of a-z, 0-9, - and _, joined by dots, like research.acme)`);
  }
  return name;
}

/** A group as its space's holder sees it. */
export interface GroupView {
  id: string;
  record: GroupRecord;
  admin: GroupAdmin;
}

/** The groups of one space, opened with its admin key; changes go back into the entry by save(). */
export class Groups {
  private constructor(
    private readonly adminKey: Uint8Array,
    private readonly byId: Map<string, GroupView>,
  ) {}

  static open(entry: PeopleSpace, adminKey: Uint8Array): Groups {
    const byId = new Map<string, GroupView>();
    for (const [id, record] of Object.entries(entry.groups ?? {})) {
      byId.set(id, { id, record, admin: openAdmin<GroupAdmin>(adminKey, GROUP_ADMIN, record.admin, `group ${id}`) });
    }
    return new Groups(adminKey, byId);
  }

  list(): GroupView[] {
    return [...this.byId.values()].sort((a, b) => (a.admin.name < b.admin.name ? -1 : 1));
  }

  find(name: string): GroupView | undefined {
    return [...this.byId.values()].find((g) => g.admin.name === name);
  }

  get(name: string): GroupView {
    const g = this.find(checkGroupName(name));
    if (g === undefined) throw new FragfsError('NOT_FOUND', `no group named ${name} in this space`);
    return g;
  }

  /** The nearest group `name` is inside (research.acme -> acme, or -> x.acme... whichever exists nearest). */
  parentOf(name: string): GroupView | undefined {
    const labels = name.split('.');
    for (let i = 1; i < labels.length; i++) {
      const g = this.find(labels.slice(i).join('.'));
      if (g !== undefined) return g;
    }
    return undefined;
  }

  childrenOf(name: string): GroupView[] {
    return this.list().filter((g) => g.admin.name !== name && this.parentOf(g.admin.name)?.admin.name === name);
  }

  async create(name: string, members: readonly string[]): Promise<GroupView> {
    checkGroupName(name);
    if (this.find(name)) throw new FragfsError('EXISTS', `a group named ${name} already exists`);
    const identity = await newIdentity();
    const id = randomBytes(16).toString('hex');
    const admin: GroupAdmin = { name, members: unique(members.map((m) => checkRecipient(m))), identities: [identity] };
    const view: GroupView = { id, admin, record: { epoch: 1, recipient: await recipientOf(identity), boxes: [], admin: '', createdMs: Date.now() } };
    this.byId.set(id, view);
    return view;
  }

  add(name: string, members: readonly string[]): GroupView {
    const g = this.get(name);
    g.admin.members = unique([...g.admin.members, ...members.map((m) => checkRecipient(m))]);
    return g;
  }

  /** Removes members and starts a new epoch of the group and of every group it is inside. */
  async remove(name: string, members: readonly string[]): Promise<GroupView[]> {
    const g = this.get(name);
    const gone = new Set(members.map((m) => checkRecipient(m)));
    const missing = [...gone].filter((m) => !g.admin.members.includes(m));
    if (missing.length > 0) throw new FragfsError('NOT_FOUND', `${missing[0]} is not a member of ${name}`);
    g.admin.members = g.admin.members.filter((m) => !gone.has(m));
    const rotated: GroupView[] = [];
    for (let at: GroupView | undefined = g; at !== undefined; at = this.parentOf(at.admin.name)) {
      const identity = await newIdentity();
      at.admin.identities.push(identity);
      at.record.epoch = at.admin.identities.length;
      at.record.recipient = await recipientOf(identity);
      rotated.push(at);
    }
    return rotated;
  }

  /**
   * Seals every group's current box again (members and subgroups as they are now; earlier epochs'
   * boxes stay as they were sealed) and writes the groups into `entry`.
   */
  async save(entry: PeopleSpace): Promise<void> {
    const out: Record<string, GroupRecord> = {};
    for (const g of this.list()) {
      const recipients = unique([...g.admin.members, ...this.childrenOf(g.admin.name).map((c) => c.record.recipient)]);
      const box: GroupBox = { group: g.id, identities: g.admin.identities };
      // A group with nobody in it yet is sealed to itself: nobody opens it until someone is added.
      const sealed = await sealTo(recipients.length > 0 ? recipients : [g.record.recipient], Buffer.from(JSON.stringify(box), 'utf8'));
      g.record.boxes = [...g.record.boxes.slice(0, g.record.epoch - 1), sealed];
      g.record.admin = sealAdmin(this.adminKey, GROUP_ADMIN, g.admin);
      out[g.id] = g.record;
    }
    entry.groups = out;
  }

  /** `@name` -> the group's current recipient; an age recipient as it is. */
  resolveRecipient(text: string): { recipient: string; group?: string } {
    if (text.startsWith('@')) {
      const g = this.get(text.slice(1));
      return { recipient: g.record.recipient, group: g.admin.name };
    }
    return { recipient: checkRecipient(text) };
  }
}

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}

/**
 * `identities` and every group epoch identity they reach through the groups' boxes (a member of
 * research.acme opens its box, whose identities open acme's box, and so on). For readers without the
 * space's keys: what opens a share or a key slot granted to a group.
 */
export async function reachableIdentities(entry: PeopleSpace, identities: readonly string[]): Promise<string[]> {
  const have = [...identities];
  const opened = new Set<string>();
  const groups = Object.entries(entry.groups ?? {});
  for (let changed = true; changed; ) {
    changed = false;
    for (const [id, g] of groups) {
      // The newest box this set of identities opens holds every identity the older ones do.
      for (let epoch = g.boxes.length; epoch >= 1; epoch--) {
        const at = `${id}/${epoch}`;
        if (opened.has(at)) break;
        const plain = await openWith(have, g.boxes[epoch - 1]!, `the box of epoch ${epoch} of group ${id}`);
        if (plain === undefined) continue;
        for (let e = epoch; e >= 1; e--) opened.add(`${id}/${e}`);
        const box = parseBox(plain, id);
        for (const x of box.identities) if (!have.includes(x)) have.push(x);
        changed = true;
        break;
      }
    }
  }
  return have;
}

function parseBox(plain: Uint8Array, id: string): GroupBox {
  try {
    const box = JSON.parse(Buffer.from(plain).toString('utf8')) as GroupBox;
    if (box.group !== id || !Array.isArray(box.identities) || !box.identities.every((x) => typeof x === 'string')) throw new Error('shape');
    return box;
  } catch {
    throw new FragfsError('BAD_STORE', `the box of group ${id} in fragfs.json is damaged or belongs to another group`);
  }
}
