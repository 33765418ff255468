// The authentication of a space's entry in fragfs.json (layout 2): one tag per field, keyed by a key
// derived from the space's master key, over a canonical text of the field's value, the store's
// global fields and the space's name, so that a field changed outside fragfs is found and named
// once the passphrase has opened the master key. docs/FORMAT.md section 2.6 specifies the bytes.

import { blake3DeriveKey, blake3Keyed, toHex } from '../codec/blake3.js';
import type { SealedKey } from './keys.js';
import type { KdfParams } from './passphrase-kdf.js';

/** BLAKE3 derive_key context of the config MAC key. Fixed forever. */
export const CONFIG_MAC_KEY_CONTEXT = 'fragfs 2026-11 store config mac key v2';
/** First line of every text a tag covers. */
export const CONFIG_MAC_HEADER = 'fragfs.json mac v2';
/** Bytes of a tag (a truncated keyed BLAKE3), written as 32 hex digits. */
export const CONFIG_TAG_BYTES = 16;

/** The fields of a space entry a tag covers, in the order they are listed; `fragfs` and `backend` are the store's. */
export const AUTHENTICATED_FIELDS = [
  'fragfs',
  'backend',
  'createdMs',
  'blockSize',
  'kdf',
  'masterKey',
  'convergenceSecret',
  'storeId',
  'convergenceId',
] as const;
export type AuthenticatedField = (typeof AUTHENTICATED_FIELDS)[number];

/** What the tags of one space cover: the store's global fields and the space's own. */
export interface AuthenticatedValues {
  fragfs: number;
  backend: string;
  createdMs: number;
  blockSize: number;
  kdf: KdfParams;
  masterKey: SealedKey;
  convergenceSecret: SealedKey;
  storeId: string;
  convergenceId: string;
}

/**
 * Field -> 32 hex digits. `slots` is there exactly when the entry has key slots (`firstSlot` or
 * `slots`, src/people/key-slots.ts): entries made before slots have no such tag and stay valid.
 */
export type ConfigMac = Record<AuthenticatedField, string> & { slots?: string };

/** The tag that covers a space's key slots (`firstSlot` and `slots`). */
export const SLOTS_TAG = 'slots';

export function configMacKey(masterKey: Uint8Array): Uint8Array {
  return blake3DeriveKey(CONFIG_MAC_KEY_CONTEXT, masterKey);
}

/**
 * The `name=value` lines of one field. Values are the validated JSON values (integers in decimal,
 * strings as they are: hex, names and the fixed algorithm names hold no newline and no '='), and an
 * object's members appear as `field.member` lines in a fixed order.
 */
function fieldLines(field: AuthenticatedField, v: AuthenticatedValues): string[] {
  switch (field) {
    case 'kdf':
      return [`kdf.name=${v.kdf.name}`, `kdf.N=${v.kdf.N}`, `kdf.r=${v.kdf.r}`, `kdf.p=${v.kdf.p}`, `kdf.salt=${v.kdf.salt}`];
    case 'masterKey':
    case 'convergenceSecret': {
      const k = v[field];
      return [`${field}.alg=${k.alg}`, `${field}.nonce=${k.nonce}`, `${field}.sealed=${k.sealed}`];
    }
    default:
      return [`${field}=${String(v[field])}`];
  }
}

/** The exact text one tag covers (UTF-8, every line ending in "\n"). */
export function canonicalFieldText(space: string, field: AuthenticatedField, v: AuthenticatedValues): string {
  return [CONFIG_MAC_HEADER, `space=${space}`, ...fieldLines(field, v)].map((l) => `${l}\n`).join('');
}

export function fieldTag(macKey: Uint8Array, space: string, field: AuthenticatedField, v: AuthenticatedValues): string {
  const full = blake3Keyed(macKey, new TextEncoder().encode(canonicalFieldText(space, field, v)));
  return toHex(full.subarray(0, CONFIG_TAG_BYTES));
}

/** The tag of a text of `lines` (each without a newline) for `space`: how the key slots are covered. */
export function tagOfLines(masterKey: Uint8Array, space: string, lines: readonly string[]): string {
  const text = [CONFIG_MAC_HEADER, `space=${space}`, ...lines].map((l) => `${l}\n`).join('');
  return toHex(blake3Keyed(configMacKey(masterKey), new TextEncoder().encode(text)).subarray(0, CONFIG_TAG_BYTES));
}

/** Whether tag `a` is `b`, in a time that does not depend on where they differ. */
export function sameTag(a: unknown, b: string): boolean {
  return typeof a === 'string' && timingSafeEqualHex(a, b);
}

/** The tags of every authenticated field of a space. */
export function computeConfigMac(masterKey: Uint8Array, space: string, v: AuthenticatedValues): ConfigMac {
  const key = configMacKey(masterKey);
  const mac = {} as ConfigMac;
  for (const field of AUTHENTICATED_FIELDS) mac[field] = fieldTag(key, space, field, v);
  return mac;
}

/** The first authenticated field whose tag is missing or does not match, or undefined when all match. */
export function changedField(masterKey: Uint8Array, space: string, v: AuthenticatedValues, mac: Partial<Record<string, unknown>>): AuthenticatedField | undefined {
  const key = configMacKey(masterKey);
  for (const field of AUTHENTICATED_FIELDS) {
    const tag = mac[field];
    if (typeof tag !== 'string' || !timingSafeEqualHex(tag, fieldTag(key, space, field, v))) return field;
  }
  return undefined;
}

/** Compares two hex strings without an early exit on the first difference. */
function timingSafeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
