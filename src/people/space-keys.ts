// Changing the ways into a space (`fragfs passwd` and `fragfs key`): every change rewrites only the
// space's entry of fragfs.json, atomically, with its tags made again under the master key. No
// fragment is re-encrypted: the master key stays what it was, only how it is sealed changes.

import { FragfsError } from '../errors.js';
import { MASTER_KEY_AAD_V2, sealKey } from '../repo/keys.js';
import { derivePassphraseKey, newKdfParams, passphraseBytes } from '../repo/passphrase-kdf.js';
import {
  firstSlotOf,
  readStoreConfig,
  unconfirmedField,
  unlockSpace,
  upgradeSpaceConfig,
  withMac,
  writeStoreConfig,
  type Credentials,
  type SpaceConfig,
  type StoreConfig,
  type UnlockedSpace,
} from '../repo/store-config.js';
import { checkRecipient } from './age-box.js';
import {
  checkLabel,
  makePassphraseSlot,
  makeRecipientSlot,
  makeRecoverySlot,
  newSlotId,
  openInfo,
  type KeySlot,
  type SlotType,
} from './key-slots.js';
import { newRecoveryKey } from './recovery-key.js';

/** A space opened to change its keys: MUST be used soon after (each change reads fragfs.json again). */
export interface OpenedSpace {
  storePath: string;
  space: string;
  unlocked: UnlockedSpace;
}

/** One way into a space, as `fragfs key list` shows it. */
export interface KeyListing {
  id: string;
  type: SlotType;
  createdMs: number;
  label?: string;
  /** Recipient slots: the age recipient the master key is sealed to. */
  recipient?: string;
  /** Recipient slots sealed for a group (opaque). */
  group?: string;
  /** Whether this is the key the space was opened with. */
  opened: boolean;
}

/**
 * Opens `space` of the store at `storePath` with `credentials` to change its keys. A layout 1 space
 * is made layout 2 first (slots live only in authenticated entries).
 */
export async function openSpaceKeys(storePath: string, space: string, credentials: Credentials): Promise<OpenedSpace> {
  const cfg = await readStoreConfig(storePath);
  const unlocked = await unlockSpace(cfg, space, credentials, storePath);
  if (!unlocked.authenticated) {
    const upgraded = await upgradeSpaceConfig(storePath, space, unlocked, cfg.spaces[space]!);
    if (!upgraded) throw new FragfsError('READ_ONLY', `the space ${space} of ${storePath} could not be upgraded to layout 2, which keys need`);
  }
  return { storePath, space, unlocked };
}

/** The ways into the space, the first passphrase first. */
export async function listKeys(o: OpenedSpace): Promise<KeyListing[]> {
  const entry = await freshEntry(o);
  const mk = o.unlocked.keys.masterKey;
  const first = firstSlotOf(entry);
  const firstInfo = openInfo(mk, o.space, first.id, first.info);
  const out: KeyListing[] = [
    { id: first.id, type: 'passphrase', createdMs: first.createdMs, ...labelOf(firstInfo), opened: o.unlocked.slotId === first.id },
  ];
  for (const s of entry.slots ?? []) {
    const info = openInfo(mk, o.space, s.id, s.info);
    out.push({
      id: s.id,
      type: s.type,
      createdMs: s.createdMs,
      ...labelOf(info),
      ...(info.recipient === undefined ? {} : { recipient: info.recipient }),
      ...(s.group === undefined ? {} : { group: s.group }),
      opened: o.unlocked.slotId === s.id,
    });
  }
  return out;
}

function labelOf(info: { label?: string }): { label?: string } {
  return info.label === undefined ? {} : { label: info.label };
}

/** Adds a passphrase (scrypt at the cost of the space's first passphrase); returns its id. */
export async function addPassphraseKey(o: OpenedSpace, passphrase: string, label?: string): Promise<string> {
  passphraseBytes(passphrase);
  const l = label === undefined ? undefined : checkLabel(label);
  const entry = await freshEntry(o);
  const id = newSlotId(takenIds(entry));
  const slot = await makePassphraseSlot({
    masterKey: o.unlocked.keys.masterKey,
    space: o.space,
    id,
    passphrase,
    kdfCost: Math.log2(entry.kdf.N),
    ...(l === undefined ? {} : { label: l }),
  });
  await changeEntry(o, (e) => ({ ...e, slots: [...(e.slots ?? []), slot] }));
  return id;
}

/**
 * Adds a slot that `recipient` (age1...) opens; returns its id. `group` is stored as it is (opaque),
 * for slots sealed to a group's recipient.
 */
export async function addRecipientKey(o: OpenedSpace, recipient: string, opts: { label?: string; group?: string } = {}): Promise<string> {
  const r = checkRecipient(recipient, '--recipient');
  const l = opts.label === undefined ? undefined : checkLabel(opts.label);
  const id = newSlotId(takenIds(await freshEntry(o)));
  const slot = await makeRecipientSlot({
    masterKey: o.unlocked.keys.masterKey,
    space: o.space,
    id,
    recipient: r,
    ...(l === undefined ? {} : { label: l }),
    ...(opts.group === undefined ? {} : { group: opts.group }),
  });
  await changeEntry(o, (e) => ({ ...e, slots: [...(e.slots ?? []), slot] }));
  return id;
}

/** Adds a recovery key; returns its id and the key, which is shown once and kept nowhere. */
export async function addRecoveryKey(o: OpenedSpace): Promise<{ id: string; recoveryKey: string }> {
  const recoveryKey = newRecoveryKey();
  const id = newSlotId(takenIds(await freshEntry(o)));
  const slot = makeRecoverySlot({ masterKey: o.unlocked.keys.masterKey, space: o.space, id, recoveryKey });
  await changeEntry(o, (e) => ({ ...e, slots: [...(e.slots ?? []), slot] }));
  return { id, recoveryKey };
}

/**
 * Removes key `id`. NOT_FOUND for an id the space does not have; USAGE when it is the last way in,
 * or the first passphrase while no other passphrase could take its place (a space always keeps one
 * passphrase in `kdf`/`masterKey`, the fields every fragfs reads).
 */
export async function removeKey(o: OpenedSpace, id: string): Promise<void> {
  await changeEntry(o, (e) => {
    const slots = e.slots ?? [];
    const first = firstSlotOf(e);
    if (id === first.id) {
      const next = slots.find((s) => s.type === 'passphrase');
      if (next === undefined) {
        if (slots.length === 0) throw new FragfsError('USAGE', `key ${id} is the last way into space ${o.space}: it stays`);
        throw new FragfsError(
          'USAGE',
          `key ${id} is the space's only passphrase and stays (add another passphrase first, or change it with fragfs passwd)`,
        );
      }
      // Another passphrase becomes the first: its sealed master key moves, nothing is sealed again.
      const { slots: _s, firstSlot: _f, ...rest } = e;
      const others = slots.filter((s) => s !== next);
      return {
        ...rest,
        kdf: next.kdf!,
        masterKey: next.masterKey!,
        firstSlot: { id: next.id, createdMs: next.createdMs, ...(next.info ? { info: next.info } : {}) },
        ...(others.length > 0 ? { slots: others } : {}),
      };
    }
    if (!slots.some((s) => s.id === id)) throw new FragfsError('NOT_FOUND', `space ${o.space} has no key ${id} (fragfs key list shows them)`);
    const others = slots.filter((s) => s.id !== id);
    const { slots: _s, ...rest } = e;
    return { ...rest, firstSlot: firstSlotOf(e), ...(others.length > 0 ? { slots: others } : {}) };
  });
}

/**
 * Replaces the passphrase the space was opened with by `passphrase` (same id and label, scrypt at
 * the same cost, a fresh salt). USAGE when the space was opened by something else.
 */
export async function changePassphrase(o: OpenedSpace, passphrase: string): Promise<string> {
  passphraseBytes(passphrase);
  if (o.unlocked.slotType !== 'passphrase') {
    throw new FragfsError(
      'USAGE',
      `passwd changes the passphrase the space was opened with, and it was opened by a ${o.unlocked.slotType === 'recovery' ? 'recovery key' : 'identity'}: add a passphrase with fragfs key add`,
    );
  }
  const mk = o.unlocked.keys.masterKey;
  const id = o.unlocked.slotId;
  const entry = await freshEntry(o);
  const first = firstSlotOf(entry);
  if (id === first.id) {
    const kdf = newKdfParams(Math.log2(entry.kdf.N));
    const sealed = sealKey(await derivePassphraseKey(passphrase, kdf), mk, MASTER_KEY_AAD_V2);
    await changeEntry(o, (e) => {
      if (firstSlotOf(e).id !== id) throw gone(o, id);
      return { ...e, kdf, masterKey: sealed, firstSlot: { ...firstSlotOf(e), createdMs: Date.now() } };
    });
    return id;
  }
  const old = (entry.slots ?? []).find((s) => s.id === id);
  if (old === undefined) throw gone(o, id);
  const fresh = await makePassphraseSlot({ masterKey: mk, space: o.space, id, passphrase, kdfCost: Math.log2(old.kdf!.N) });
  const replacement: KeySlot = { ...fresh, ...(old.info ? { info: old.info } : {}) };
  await changeEntry(o, (e) => {
    const slots = e.slots ?? [];
    if (!slots.some((s) => s.id === id)) throw gone(o, id);
    return { ...e, slots: slots.map((s) => (s.id === id ? replacement : s)) };
  });
  return id;
}

function gone(o: OpenedSpace, id: string): FragfsError {
  return new FragfsError('NOT_FOUND', `key ${id} of space ${o.space} was removed meanwhile`);
}

function takenIds(e: SpaceConfig): string[] {
  return [firstSlotOf(e).id, ...(e.slots ?? []).map((s) => s.id)];
}

/** The space's entry as it is now, checked to be the same space (its tags confirm the master key). */
async function freshEntry(o: OpenedSpace): Promise<SpaceConfig> {
  return (await freshConfig(o)).spaces[o.space]!;
}

async function freshConfig(o: OpenedSpace): Promise<StoreConfig> {
  const cfg = await readStoreConfig(o.storePath);
  const entry = cfg.spaces[o.space];
  if (entry === undefined) throw new FragfsError('NO_STORE', `the store at ${o.storePath} has no space ${o.space}`, { path: o.storePath });
  if (entry.mac === undefined) throw new FragfsError('BAD_STORE', `space ${o.space} of ${o.storePath} is not authenticated (layout 1)`);
  const changed = unconfirmedField(entry, o.space, o.unlocked.keys.masterKey, cfg);
  if (changed !== undefined) {
    throw new FragfsError('BAD_STORE', `fragfs.json was changed outside fragfs (field ${changed}, space ${o.space}) in the store at ${o.storePath}`);
  }
  return cfg;
}

/** Reads fragfs.json again, applies `change` to the space's entry, tags it again and writes it atomically. */
async function changeEntry(o: OpenedSpace, change: (entry: SpaceConfig) => SpaceConfig): Promise<void> {
  const cfg = await freshConfig(o);
  cfg.spaces[o.space] = withMac(change(cfg.spaces[o.space]!), o.space, o.unlocked.keys.masterKey, cfg);
  await writeStoreConfig(o.storePath, cfg);
}
