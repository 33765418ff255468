// `fragfs key list|add|remove STORE`: the ways into a space (passphrases, age recipients, recovery
// keys). Each change rewrites the space's entry of fragfs.json only; removing the last way in is refused.

import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { addPassphraseKey, addRecipientKey, addRecoveryKey, listKeys, openSpaceKeys, removeKey, type OpenedSpace } from '../src/people/space-keys.js';
import { checkRecipient } from '../src/people/age-box.js';
import { checkLabel } from '../src/people/key-slots.js';
import { addGroupKey, groupNames } from '../src/people/group-access.js';
import { checkGroupName } from '../src/people/groups.js';
import { DEFAULT_SPACE, Repo } from '../src/repo/repo.js';
import { storeLocation } from '../src/remote/store-site.js';
import { action, addStoreOptions, printJson, readCredentials, readNewPassphrase, type StoreOptions } from './common.js';

interface KeyOptions extends StoreOptions {
  json?: boolean;
  label?: string;
  recipient?: string;
  recoveryKey?: boolean;
  newPassphraseFile?: string;
}

async function openKeys(store: string, opts: KeyOptions): Promise<OpenedSpace> {
  const storePath = storeLocation(store);
  const space = opts.space ?? DEFAULT_SPACE;
  await Repo.checkExists(storePath, space);
  return openSpaceKeys(storePath, space, await readCredentials(opts));
}

export function registerKey(program: Command): void {
  const key = program.command('key').description('the keys of a space: passphrases, age recipients, recovery keys');
  addStoreOptions(
    key
      .command('list')
      .description('list the ways into a space: id, type, label, created')
      .argument('<store>', 'the store: a folder, or a URL')
      .option('--json', 'print them as JSON'),
  ).action(
    action(async (store: string, opts: KeyOptions) => {
      const opened = await openKeys(store, opts);
      const names = await groupNames(opened);
      // A slot sealed to a group shows the group's name (the slot itself holds only its opaque id).
      const keys = (await listKeys(opened)).map((k) => (k.group === undefined ? k : { ...k, group: names.get(k.group) ?? k.group }));
      if (opts.json) return printJson(keys.map((k) => ({ ...k, created: new Date(k.createdMs).toISOString() })));
      for (const k of keys) {
        const who = [k.label, k.recipient, k.group === undefined ? undefined : `@${k.group}`].filter((x) => x !== undefined).join('  ');
        process.stdout.write(`${k.opened ? '*' : ' '} ${k.id}  ${k.type.padEnd(10)}  ${new Date(k.createdMs).toISOString()}  ${who}`.trimEnd() + '\n');
      }
    }),
  );
  addStoreOptions(
    key
      .command('add')
      .description('add a passphrase (asked twice), an age recipient (--recipient) or a recovery key (--recovery-key); prints its id')
      .argument('<store>', 'the store: a folder, or a URL')
      .option('--recipient <recipient>', 'let the holder of the identity of this age recipient (age1...), or every member of @group, open the space (with --identity)')
      .option('--recovery-key', 'make a new recovery key and print it once')
      .option('--label <text>', 'a note to tell the key apart (sealed: fragfs.json does not show it)')
      .option('--new-passphrase-file <file>', 'read the new passphrase from this file (first line); else FRAGFS_NEW_PASSPHRASE or a prompt'),
  ).action(
    action(async (store: string, opts: KeyOptions) => {
      if (opts.recipient !== undefined && opts.recoveryKey) throw new FragfsError('USAGE', 'give --recipient or --recovery-key, not both');
      if (opts.recoveryKey && opts.label !== undefined) throw new FragfsError('USAGE', 'a recovery key takes no label');
      // Said before the store is opened: a mistyped recipient or label costs no passphrase.
      if (opts.recipient !== undefined && !opts.recipient.startsWith('@')) checkRecipient(opts.recipient, '--recipient');
      if (opts.recipient?.startsWith('@')) checkGroupName(opts.recipient.slice(1));
      if (opts.label !== undefined) checkLabel(opts.label);
      const opened = await openKeys(store, opts);
      if (opts.recipient !== undefined) {
        const id = opts.recipient.startsWith('@')
          ? await addGroupKey(opened, opts.recipient.slice(1), opts.label)
          : await addRecipientKey(opened, opts.recipient, opts.label === undefined ? {} : { label: opts.label });
        process.stdout.write(`${id}\n`);
      } else if (opts.recoveryKey) {
        const { id, recoveryKey } = await addRecoveryKey(opened);
        process.stderr.write(`fragfs: recovery key ${id}; keep it safe and offline: it opens the space like a passphrase and is not shown again\n`);
        process.stdout.write(`${recoveryKey}\n`);
      } else {
        const id = await addPassphraseKey(opened, await readNewPassphrase(opts), opts.label);
        process.stdout.write(`${id}\n`);
      }
    }),
  );
  addStoreOptions(
    key
      .command('remove')
      .description('remove a way into a space (never the last one); data is not re-encrypted')
      .argument('<store>', 'the store: a folder, or a URL')
      .argument('<id>', 'the key id (fragfs key list)'),
  ).action(
    action(async (store: string, id: string, opts: KeyOptions) => {
      const opened = await openKeys(store, opts);
      await removeKey(opened, id.trim().toLowerCase());
      process.stderr.write(`fragfs: removed key ${id} of ${opened.storePath} (space ${opened.space})\n`);
    }),
  );
}
