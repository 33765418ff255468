// Key slots of a space: the ways into it besides (and described alongside) the first passphrase that
// fragfs.json has always held in `kdf`/`masterKey`. A slot holds the space's master key sealed to one
// credential: another passphrase (scrypt), the recovery key (BLAKE3: it is random), or an age
// recipient (an armored age file). What a slot says about people (its label, its recipient) is sealed
// under a key derived from the master key, so fragfs.json names nobody. docs/FORMAT.md section 2.6.1.

import { gcmOpen, gcmSeal } from '../codec/aes-gcm.js';
import { randomBytes } from 'node:crypto';
import { blake3, blake3DeriveKey, toHex } from '../codec/blake3.js';
import { FragfsError } from '../errors.js';
import { KEY_BYTES, MASTER_KEY_AAD_V2, sealKey, sealedKeyProblem, unsealKey, type SealedKey } from '../repo/keys.js';
import { derivePassphraseKey, kdfParamsProblem, newKdfParams, passphraseBytes, type KdfParams } from '../repo/passphrase-kdf.js';
import { openWith, sealTo } from './age-box.js';
import { parseRecoveryKey, recoveryWrapKey } from './recovery-key.js';

export type SlotType = 'passphrase' | 'recovery' | 'recipient';
export const SLOT_TYPES: readonly SlotType[] = ['passphrase', 'recovery', 'recipient'];

/** A slot's description (label, recipient) sealed with AES-256-GCM under slotInfoKey(master key); hex. */
export interface SealedInfo {
  nonce: string;
  sealed: string;
}

/** What a slot's sealed description holds. */
export interface SlotInfo {
  label?: string;
  /** Recipient slots: the `age1...` the master key was sealed to (an X25519 age file does not name it). */
  recipient?: string;
}

/** Id, time and description of the first passphrase (the space's `kdf`/`masterKey`). */
export interface FirstSlot {
  /** 8 lowercase hex digits. */
  id: string;
  createdMs: number;
  info?: SealedInfo;
}

/** One more way into a space. Which fields are present depends on `type` (slotProblem checks it). */
export interface KeySlot {
  /** 8 random lowercase hex digits, unique in the space; what `key remove` takes. */
  id: string;
  type: SlotType;
  createdMs: number;
  /** passphrase: how the passphrase becomes the key that seals `masterKey`. */
  kdf?: KdfParams;
  /** passphrase (aad MASTER_KEY_AAD_V2) and recovery (aad RECOVERY_SLOT_AAD): the sealed master key. */
  masterKey?: SealedKey;
  /** recipient: the master key sealed to the recipient, an armored age file. */
  age?: string;
  /**
   * recipient: opaque to this module; set by whoever seals the slot to a group's recipient (the
   * group's name or epoch), so that group code can tell its slots apart. Authenticated like the rest.
   */
  group?: string;
  info?: SealedInfo;
}

/** The id the first passphrase of a space made before key slots shows (it has no `firstSlot`). */
export const LEGACY_FIRST_SLOT_ID = '00000000';
/** Associated data of a master key sealed under a recovery key's wrapping key. */
export const RECOVERY_SLOT_AAD = 'fragfs master key recovery slot v1';
/** BLAKE3 derive_key context of the key that seals slot descriptions. Fixed forever. */
export const SLOT_INFO_KEY_CONTEXT = 'fragfs 2026-11 key slot info key v1';
/** Sealed descriptions are padded to a multiple of this, so their length hardly tells a label's. */
const INFO_PAD_BYTES = 64;
export const MAX_LABEL_CHARS = 200;
const MAX_INFO_SEALED_BYTES = 1024;
/** An age file sealed to one recipient is about 300 characters; room for one sealed to many (a group). */
const MAX_AGE_CHARS = 65536;
export const MAX_SLOTS = 1024;
const ID_RE = /^[0-9a-f]{8}$/;
const GROUP_RE = /^[\x21-\x7e]{1,200}$/;
const AGE_RE = /^-----BEGIN AGE ENCRYPTED FILE-----\n[A-Za-z0-9+/=\n]+-----END AGE ENCRYPTED FILE-----\n?$/;

export function newSlotId(taken: readonly string[]): string {
  for (;;) {
    const id = randomBytes(4).toString('hex');
    if (!taken.includes(id) && id !== LEGACY_FIRST_SLOT_ID) return id;
  }
}

function sealedInfoProblem(s: unknown, where: string): string | undefined {
  const i = s as Partial<SealedInfo> | null;
  if (typeof i !== 'object' || i === null || Array.isArray(i)) return `${where} is not an object`;
  if (typeof i.nonce !== 'string' || !/^[0-9a-f]{24}$/.test(i.nonce)) return `${where}.nonce is not 12 bytes of hex`;
  if (typeof i.sealed !== 'string' || !/^(?:[0-9a-f]{2})+$/.test(i.sealed) || i.sealed.length > 2 * MAX_INFO_SEALED_BYTES) {
    return `${where}.sealed is not up to ${MAX_INFO_SEALED_BYTES} bytes of hex`;
  }
  return undefined;
}

/** Why `s` is not a slot fragfs could have written, naming the field, or undefined. */
export function slotProblem(s: unknown, where: string): string | undefined {
  const k = s as Partial<KeySlot> | null;
  if (typeof k !== 'object' || k === null || Array.isArray(k)) return `${where} is not an object`;
  if (typeof k.id !== 'string' || !ID_RE.test(k.id)) return `${where}.id is not 8 hex digits`;
  if (!SLOT_TYPES.includes(k.type as SlotType)) return `${where}.type ${JSON.stringify(k.type)} is not one of ${SLOT_TYPES.join(', ')}`;
  if (!Number.isSafeInteger(k.createdMs) || (k.createdMs as number) < 0) return `${where}.createdMs is not a time`;
  if (k.info !== undefined) {
    const p = sealedInfoProblem(k.info, `${where}.info`);
    if (p !== undefined) return p;
  }
  const allowed: Record<SlotType, string[]> = {
    passphrase: ['kdf', 'masterKey'],
    recovery: ['masterKey'],
    recipient: ['age', 'group'],
  };
  for (const f of ['kdf', 'masterKey', 'age', 'group'] as const) {
    if (k[f] !== undefined && !allowed[k.type as SlotType].includes(f)) return `${where}.${f} does not belong to a ${k.type} slot`;
  }
  if (k.type === 'passphrase') {
    const p = kdfParamsProblem(k.kdf);
    if (p !== undefined) return `${where}.${p}`;
  }
  if (k.type === 'passphrase' || k.type === 'recovery') {
    const p = sealedKeyProblem(k.masterKey);
    if (p !== undefined) return `${where}.masterKey: ${p}`;
  }
  if (k.type === 'recipient') {
    if (typeof k.age !== 'string' || k.age.length > MAX_AGE_CHARS || !AGE_RE.test(k.age)) return `${where}.age is not an armored age file`;
    if (k.group !== undefined && (typeof k.group !== 'string' || !GROUP_RE.test(k.group))) return `${where}.group is not 1..200 printable characters`;
  }
  return undefined;
}

/** Why the key slot fields of a space entry are not valid, or undefined. */
export function slotsProblem(firstSlot: unknown, slots: unknown): string | undefined {
  if (firstSlot !== undefined) {
    const f = firstSlot as Partial<FirstSlot> | null;
    if (typeof f !== 'object' || f === null || Array.isArray(f)) return 'firstSlot is not an object';
    if (typeof f.id !== 'string' || !ID_RE.test(f.id)) return 'firstSlot.id is not 8 hex digits';
    if (!Number.isSafeInteger(f.createdMs) || (f.createdMs as number) < 0) return 'firstSlot.createdMs is not a time';
    if (f.info !== undefined) {
      const p = sealedInfoProblem(f.info, 'firstSlot.info');
      if (p !== undefined) return p;
    }
  }
  if (slots === undefined) return undefined;
  if (!Array.isArray(slots)) return 'slots is not an array';
  if (slots.length > MAX_SLOTS) return `more than ${MAX_SLOTS} slots`;
  const ids = new Set<string>([(firstSlot as FirstSlot | undefined)?.id ?? LEGACY_FIRST_SLOT_ID]);
  for (let i = 0; i < slots.length; i++) {
    const p = slotProblem(slots[i], `slots[${i}]`);
    if (p !== undefined) return p;
    const id = (slots[i] as KeySlot).id;
    if (ids.has(id)) return `slots[${i}].id ${id} is not unique`;
    ids.add(id);
  }
  return undefined;
}

/**
 * The `name=value` lines the `slots` tag covers (config-mac.ts tagOfLines), in a fixed order. An
 * age file (several lines) is covered by its BLAKE3 hash.
 */
export function slotLines(firstSlot: FirstSlot | undefined, slots: readonly KeySlot[] | undefined): string[] {
  const lines: string[] = [];
  const info = (p: string, i: SealedInfo | undefined) => (i ? [`${p}.info.nonce=${i.nonce}`, `${p}.info.sealed=${i.sealed}`] : []);
  if (firstSlot) lines.push(`firstSlot.id=${firstSlot.id}`, `firstSlot.createdMs=${firstSlot.createdMs}`, ...info('firstSlot', firstSlot.info));
  const list = slots ?? [];
  lines.push(`slots.count=${list.length}`);
  list.forEach((s, i) => {
    const p = `slots.${i}`;
    lines.push(`${p}.id=${s.id}`, `${p}.type=${s.type}`, `${p}.createdMs=${s.createdMs}`);
    if (s.kdf) lines.push(`${p}.kdf.name=${s.kdf.name}`, `${p}.kdf.N=${s.kdf.N}`, `${p}.kdf.r=${s.kdf.r}`, `${p}.kdf.p=${s.kdf.p}`, `${p}.kdf.salt=${s.kdf.salt}`);
    if (s.masterKey) lines.push(`${p}.masterKey.alg=${s.masterKey.alg}`, `${p}.masterKey.nonce=${s.masterKey.nonce}`, `${p}.masterKey.sealed=${s.masterKey.sealed}`);
    if (s.age !== undefined) lines.push(`${p}.age.blake3=${toHex(blake3(new TextEncoder().encode(s.age)))}`);
    if (s.group !== undefined) lines.push(`${p}.group=${s.group}`);
    lines.push(...info(p, s.info));
  });
  return lines;
}

export function slotInfoKey(masterKey: Uint8Array): Uint8Array {
  return blake3DeriveKey(SLOT_INFO_KEY_CONTEXT, masterKey);
}

/** Binds a sealed description to its space and slot, so it cannot be moved to another. */
function infoAad(space: string, slotId: string): Uint8Array {
  return new TextEncoder().encode(`fragfs key slot info v1\nspace=${space}\nslot=${slotId}\n`);
}

/** `info` sealed for slot `slotId` of `space`; `nonce` only for vectors (random otherwise). */
export function sealInfo(masterKey: Uint8Array, space: string, slotId: string, info: SlotInfo, nonce?: Uint8Array): SealedInfo {
  const text = new TextEncoder().encode(JSON.stringify(info));
  const padded = new Uint8Array(Math.ceil((text.length + 1) / INFO_PAD_BYTES) * INFO_PAD_BYTES).fill(0x20);
  padded.set(text);
  const n = nonce ?? new Uint8Array(randomBytes(12));
  const sealed = gcmSeal(slotInfoKey(masterKey), n, padded, infoAad(space, slotId));
  return { nonce: toHex(n), sealed: toHex(sealed) };
}

/** The description of a slot; BAD_STORE when it does not open (the tags were checked before, so only a bug gets here). */
export function openInfo(masterKey: Uint8Array, space: string, slotId: string, info: SealedInfo | undefined): SlotInfo {
  if (info === undefined) return {};
  try {
    const plain = gcmOpen(slotInfoKey(masterKey), Buffer.from(info.nonce, 'hex'), Buffer.from(info.sealed, 'hex'), infoAad(space, slotId));
    if (plain === undefined) throw new Error('the slot description does not open');
    const v = JSON.parse(new TextDecoder().decode(plain).trimEnd()) as SlotInfo;
    return {
      ...(typeof v.label === 'string' ? { label: v.label } : {}),
      ...(typeof v.recipient === 'string' ? { recipient: v.recipient } : {}),
    };
  } catch {
    throw new FragfsError('BAD_STORE', `the description of key ${slotId} in space ${space} does not open`);
  }
}

/** A label as typed: trimmed, 1..MAX_LABEL_CHARS characters, no control characters; USAGE otherwise. */
export function checkLabel(label: string): string {
  const t = label.trim();
  if (t.length === 0 || t.length > MAX_LABEL_CHARS || /\p{Cc}/u.test(t)) {
    throw new FragfsError('USAGE', `a key label is 1 to ${MAX_LABEL_CHARS} characters without control characters`);
  }
  return t;
}

function describe(masterKey: Uint8Array, space: string, id: string, info: SlotInfo): { info?: SealedInfo } {
  return info.label === undefined && info.recipient === undefined ? {} : { info: sealInfo(masterKey, space, id, info) };
}

/** A passphrase slot: the master key sealed under scrypt(passphrase) with cost 2^`kdfCost`. */
export async function makePassphraseSlot(
  o: { masterKey: Uint8Array; space: string; id: string; passphrase: string; kdfCost: number; label?: string },
): Promise<KeySlot> {
  passphraseBytes(o.passphrase); // INVALID on an empty passphrase, before the slow KDF
  const kdf = newKdfParams(o.kdfCost);
  const kek = await derivePassphraseKey(o.passphrase, kdf);
  return {
    id: o.id,
    type: 'passphrase',
    createdMs: Date.now(),
    kdf,
    masterKey: sealKey(kek, o.masterKey, MASTER_KEY_AAD_V2),
    ...describe(o.masterKey, o.space, o.id, o.label === undefined ? {} : { label: o.label }),
  };
}

/** A recovery slot for `recoveryKey` (as formatRecoveryKey shows it). */
export function makeRecoverySlot(o: { masterKey: Uint8Array; space: string; id: string; recoveryKey: string; label?: string }): KeySlot {
  const key = parseRecoveryKey(o.recoveryKey);
  if (key === undefined) throw new FragfsError('INVALID', 'not a recovery key');
  return {
    id: o.id,
    type: 'recovery',
    createdMs: Date.now(),
    masterKey: sealKey(recoveryWrapKey(key), o.masterKey, RECOVERY_SLOT_AAD),
    ...describe(o.masterKey, o.space, o.id, o.label === undefined ? {} : { label: o.label }),
  };
}

/** A recipient slot: the master key sealed to `recipient` (age1...), optionally marked as a group's. */
export async function makeRecipientSlot(
  o: { masterKey: Uint8Array; space: string; id: string; recipient: string; label?: string; group?: string },
): Promise<KeySlot> {
  return {
    id: o.id,
    type: 'recipient',
    createdMs: Date.now(),
    age: await sealTo([o.recipient], o.masterKey),
    ...(o.group === undefined ? {} : { group: o.group }),
    ...describe(o.masterKey, o.space, o.id, { recipient: o.recipient, ...(o.label === undefined ? {} : { label: o.label }) }),
  };
}

/** A master key a slot gave up. It is only a candidate: the caller checks it against the space's tags. */
export interface SlotCandidate {
  slot: KeySlot;
  masterKey: Uint8Array;
}

/**
 * The master keys that `identities` (AGE-SECRET-KEY-1...) open from the recipient slots among
 * `slots`, in slot order; `only` narrows the slots tried (e.g. to one group's). Unverified: anyone
 * can seal a file to a recipient, so the caller MUST check each against the space's tags (unlockSpace
 * does). A slot sealed to others is skipped; an age file that is not one is CORRUPT.
 */
export async function tryIdentities(
  slots: readonly KeySlot[],
  identities: readonly string[],
  only: (slot: KeySlot) => boolean = () => true,
): Promise<SlotCandidate[]> {
  const found: SlotCandidate[] = [];
  if (identities.length === 0) return found;
  for (const slot of slots) {
    if (slot.type !== 'recipient' || slot.age === undefined || !only(slot)) continue;
    const key = await openWith(identities, slot.age, `key ${slot.id}`);
    if (key !== undefined && key.length === KEY_BYTES) found.push({ slot, masterKey: key });
  }
  return found;
}

/** The master keys a typed recovery key opens from the recovery slots (none when it is not one). */
export function tryRecoveryKey(slots: readonly KeySlot[], text: string): SlotCandidate[] {
  const key = parseRecoveryKey(text);
  if (key === undefined) return [];
  const wrap = recoveryWrapKey(key);
  const found: SlotCandidate[] = [];
  for (const slot of slots) {
    if (slot.type !== 'recovery' || slot.masterKey === undefined) continue;
    const mk = unsealKey(wrap, slot.masterKey, RECOVERY_SLOT_AAD);
    if (mk !== undefined) found.push({ slot, masterKey: mk });
  }
  return found;
}

/** The master keys `passphrase` opens from the passphrase slots: one scrypt per slot, in order. */
export async function tryPassphrase(slots: readonly KeySlot[], passphrase: string): Promise<SlotCandidate[]> {
  const found: SlotCandidate[] = [];
  for (const slot of slots) {
    if (slot.type !== 'passphrase' || slot.kdf === undefined || slot.masterKey === undefined) continue;
    const mk = unsealKey(await derivePassphraseKey(passphrase, slot.kdf), slot.masterKey, MASTER_KEY_AAD_V2);
    if (mk !== undefined) found.push({ slot, masterKey: mk });
  }
  return found;
}
