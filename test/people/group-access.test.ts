// A key slot sealed to a group: every member (of the group, or of a group inside it) opens the whole
// space with their own identity; removing a member seals the slot to the new epoch, and the removed
// member's identity opens the space no more, with one clear refusal.

import test from 'ava';
import { join } from 'node:path';
import { isFragfsError } from '../../src/errors.js';
import { newIdentity, recipientOf } from '../../src/people/age-box.js';
import { addGroupKey, changeGroups, groupNames } from '../../src/people/group-access.js';
import { listKeys, openSpaceKeys } from '../../src/people/space-keys.js';
import { Repo } from '../../src/repo/repo.js';
import { TEST_PASSPHRASE } from '../helpers/cli.js';
import { TEST_KDF_COST, tempDir } from '../helpers/stores.js';

test('a slot sealed to @acme opens for members of acme and research.acme; a removed member is refused, the others still open', async (t) => {
  const work = await tempDir('fragfs-group-keys-');
  t.teardown(work.remove);
  const storePath = join(work.path, 'store');
  await (await Repo.init({ storePath, backend: 'dir', passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST })).close();
  const [alice, bob, carol, dave] = await Promise.all([newIdentity(), newIdentity(), newIdentity(), newIdentity()]);
  const [A, B, C] = await Promise.all([alice, bob, carol].map((i) => recipientOf(i!)));
  const owner = await openSpaceKeys(storePath, 'default', { passphrase: TEST_PASSPHRASE });
  await changeGroups(owner, (g) => g.create('acme', [A!]));
  await changeGroups(owner, (g) => g.create('research.acme', [B!, C!]));
  const slot = await addGroupKey(owner, 'acme', 'staff');
  const names = await groupNames(owner);
  const listed = (await listKeys(owner)).find((k) => k.id === slot)!;
  t.is(names.get(listed.group!), 'acme');
  t.is(listed.label, 'staff');

  const opens = async (identity: string): Promise<boolean> => {
    try {
      await (await Repo.open({ storePath, identities: [identity], readOnly: true })).close();
      return true;
    } catch (e) {
      t.true(isFragfsError(e, 'BAD_IDENTITY'), String(e));
      return false;
    }
  };
  t.deepEqual(await Promise.all([alice, bob, carol, dave].map((i) => opens(i!))), [true, true, true, false]);

  await changeGroups(owner, (g) => g.remove('research.acme', [C!]));
  t.deepEqual(await Promise.all([alice, bob, carol].map((i) => opens(i!))), [true, true, false]);
  const after = (await listKeys(owner)).filter((k) => k.group !== undefined);
  t.is(after.length, 1, 'the old slot is gone, one slot sealed to the new epoch');
  t.not(after[0]!.id, slot);
  t.not(after[0]!.recipient, listed.recipient);
  t.is(after[0]!.label, 'staff');
});
