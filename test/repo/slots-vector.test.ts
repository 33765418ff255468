// fixtures/vectors/config/fragfs-json-v2-slots.json: today's code builds the same fragfs.json byte
// for byte from the vector's inputs, an independent BLAKE3 and AES-GCM agree with the `slots` tag and
// the sealed labels, and each of the four ways in opens the vector's space to its master key.

import test from 'ava';
import { gcm } from '@noble/ciphers/aes.js';
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3.js';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SLOT_INFO_KEY_CONTEXT, slotLines } from '../../src/people/key-slots.js';
import { CONFIG_MAC_HEADER, CONFIG_MAC_KEY_CONTEXT } from '../../src/repo/config-mac.js';
import { STORE_CONFIG_FILE, readStoreConfig, unlockSpace, type StoreConfig } from '../../src/repo/store-config.js';
import { hasTool } from '../mount/helpers.js';
import { tempDir } from '../helpers/stores.js';
import { IDS, RECOVERY_KEY, SECOND_PASSPHRASE, SPACE, buildSlotsConfig } from './slots-vector-inputs.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const enc = (s: string) => new TextEncoder().encode(s);
const dir = new URL('../../../fixtures/vectors/config/', import.meta.url);
const base = JSON.parse(readFileSync(new URL('fragfs-json-v2.json', dir), 'utf8'));
const vector = JSON.parse(readFileSync(new URL('fragfs-json-v2-slots.json', dir), 'utf8'));
const cfg = JSON.parse(vector.fragfsJson) as StoreConfig;
const entry = cfg.spaces[SPACE]!;

test('the vector: today\'s code writes the same fragfs.json, byte for byte', async (t) => {
  t.is(vector.secondPassphrase, SECOND_PASSPHRASE);
  t.is(vector.recoveryKey, RECOVERY_KEY);
  const age = entry.slots!.find((s) => s.type === 'recipient')!.age!;
  const built = await buildSlotsConfig({ base: JSON.parse(base.fragfsJson), masterKey: unhex(vector.masterKey), recipient: vector.recipient, age });
  t.is(`${JSON.stringify(built.config, null, 2)}\n`, vector.fragfsJson);
  t.deepEqual(built.lines, vector.slotsLines);
  t.is(built.tag, vector.slotsTag);
  t.is(entry.mac!.slots, vector.slotsTag);
});

test('the vector: the slots tag and the sealed labels by an independent BLAKE3 and AES-GCM', (t) => {
  const mk = unhex(vector.masterKey);
  t.deepEqual(slotLines(entry.firstSlot, entry.slots), vector.slotsLines);
  const macKey = nobleBlake3(mk, { context: enc(CONFIG_MAC_KEY_CONTEXT) });
  const text = [CONFIG_MAC_HEADER, `space=${SPACE}`, ...vector.slotsLines].map((l: string) => `${l}\n`).join('');
  t.is(hex(nobleBlake3(enc(text), { key: macKey }).subarray(0, 16)), vector.slotsTag);
  const infoKey = nobleBlake3(mk, { context: enc(SLOT_INFO_KEY_CONTEXT) });
  const open = (id: string, info: { nonce: string; sealed: string }) =>
    JSON.parse(new TextDecoder().decode(gcm(infoKey, unhex(info.nonce), enc(`fragfs key slot info v1\nspace=${SPACE}\nslot=${id}\n`)).decrypt(unhex(info.sealed))).trimEnd());
  t.deepEqual(open(IDS.first, entry.firstSlot!.info!), { label: 'first passphrase' });
  t.deepEqual(open(IDS.passphrase, entry.slots![0]!.info!), { label: 'Ada at home' });
  t.deepEqual(open(IDS.recipient, entry.slots![2]!.info!), { recipient: vector.recipient, label: 'Grace' });
});

test('the vector: each way in opens the space to its master key', async (t) => {
  const work = await tempDir('fragfs-slots-vector-');
  t.teardown(work.remove);
  await writeFile(join(work.path, STORE_CONFIG_FILE), vector.fragfsJson);
  const read = await readStoreConfig(work.path);
  const ways: [string, Parameters<typeof unlockSpace>[2], string][] = [
    ['first passphrase', vector.passphrase, IDS.first],
    ['second passphrase', vector.secondPassphrase, IDS.passphrase],
    ['recovery key', vector.recoveryKey, IDS.recovery],
    ['identity', { identities: [vector.identity] }, IDS.recipient],
  ];
  for (const [what, creds, slotId] of ways) {
    const u = await unlockSpace(read, SPACE, creds, work.path);
    t.is(hex(u.keys.masterKey), vector.masterKey, what);
    t.is(u.slotId, slotId, what);
  }
  if (hasTool('age')) {
    const id = join(work.path, 'id');
    const sealed = join(work.path, 'slot.age');
    await writeFile(id, `${vector.identity}\n`);
    await writeFile(sealed, entry.slots![2]!.age!);
    const { stdout } = await promisify(execFile)('age', ['-d', '-i', id, sealed], { encoding: 'buffer' });
    t.is(hex(stdout), vector.masterKey);
  }
});
