// Sealing small secrets (a space's master key, a group epoch's identity, a share's key) to people,
// in the age format (https://age-encryption.org/v1) through the reference TypeScript implementation,
// so identities made by `age-keygen` work here and what fragfs seals to a recipient is a file `age -d`
// reads. Only X25519 recipients (`age1...`) and identities (`AGE-SECRET-KEY-1...`) are accepted: they
// are what every age release reads, and an X25519 stanza does not name its recipient.

import { readFile } from 'node:fs/promises';
import { FragfsError, fromFsError } from '../errors.js';

/**
 * age-encryption, loaded on first use: it brings its post-quantum code along, a tenth of a second
 * of every command's start, and most runs (a put, a gc) open no age box.
 */
let ageModule: Promise<typeof import('age-encryption')> | undefined;
function age(): Promise<typeof import('age-encryption')> {
  ageModule ??= import('age-encryption');
  return ageModule;
}

/** age's Bech32 forms: lowercase recipient, uppercase identity (age spec, "Native X25519 keys"). */
const RECIPIENT_RE = /^age1[02-9ac-hj-np-z]{58}$/;
const IDENTITY_RE = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/;

export function isRecipient(text: string): boolean {
  return RECIPIENT_RE.test(text);
}

export function isIdentity(text: string): boolean {
  return IDENTITY_RE.test(text);
}

/** `text` as a recipient, or USAGE naming `what`. */
export function checkRecipient(text: string, what = 'recipient'): string {
  const t = text.trim();
  if (!isRecipient(t)) throw new FragfsError('USAGE', `${what} ${JSON.stringify(text)} is not an age X25519 recipient (age1... , 62 characters)`);
  return t;
}

/** A new X25519 identity (`AGE-SECRET-KEY-1...`). */
export async function newIdentity(): Promise<string> {
  return (await age()).generateX25519Identity();
}

/** The recipient (`age1...`) of an identity. */
export async function recipientOf(identity: string): Promise<string> {
  if (!isIdentity(identity)) throw new FragfsError('INVALID', 'not an age X25519 identity');
  return (await age()).identityToRecipient(identity);
}

/**
 * The identities in an age identity file (as `age-keygen` writes it: `#` comments, one
 * `AGE-SECRET-KEY-1...` per line). A file with none, or with a line that is neither, is USAGE
 * naming the file and line number, never the line (it may hold a secret).
 */
export async function readIdentityFile(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fromFsError(e, 'reading the identity file', path);
  }
  const found: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!isIdentity(line)) {
      throw new FragfsError('USAGE', `${path} line ${i + 1} is not an age X25519 identity (AGE-SECRET-KEY-1...)`);
    }
    found.push(line);
  }
  if (found.length === 0) throw new FragfsError('USAGE', `${path} holds no age identity`);
  return found;
}

/** `payload` sealed to every recipient, as an armored age file (`-----BEGIN AGE ENCRYPTED FILE-----`). */
export async function sealTo(recipients: readonly string[], payload: Uint8Array): Promise<string> {
  if (recipients.length === 0) throw new Error('sealTo: no recipient');
  const { Encrypter, armor } = await age();
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(checkRecipient(r));
  return armor.encode(await e.encrypt(payload));
}

/**
 * The payload of an armored age file if one of `identities` opens it; undefined when none does
 * (a file sealed to others). A file that is not age at all is CORRUPT naming `what`.
 */
export async function openWith(identities: readonly string[], armored: string, what: string): Promise<Uint8Array | undefined> {
  if (identities.length === 0) return undefined;
  const { Decrypter, armor } = await age();
  let raw: Uint8Array;
  try {
    raw = armor.decode(armored);
  } catch {
    throw new FragfsError('CORRUPT', `${what} is not an armored age file`);
  }
  const d = new Decrypter();
  for (const id of identities) d.addIdentity(id);
  try {
    return await d.decrypt(raw);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    // age says "no identity matched any of the recipients" for a file sealed to others.
    if (/no identity matched/i.test(why)) return undefined;
    throw new FragfsError('CORRUPT', `${what} does not open: ${why}`);
  }
}
