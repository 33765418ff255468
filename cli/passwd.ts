// `fragfs passwd STORE`: replaces the passphrase that opens a space by a new one. Only fragfs.json
// changes (the master key is sealed again); no fragment is re-encrypted, and a running mount goes on.

import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { changePassphrase, openSpaceKeys } from '../src/people/space-keys.js';
import { DEFAULT_SPACE, Repo } from '../src/repo/repo.js';
import { storeLocation } from '../src/remote/store-site.js';
import { action, addStoreOptions, identityFileOf, readNewPassphrase, readPassphrase, type StoreOptions } from './common.js';

interface PasswdOptions extends StoreOptions {
  newPassphraseFile?: string;
}

export function registerPasswd(program: Command): void {
  addStoreOptions(
    program
      .command('passwd')
      .description('change the passphrase of a space (asks the current one, then the new one twice)')
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
      .option('--new-passphrase-file <file>', 'read the new passphrase from this file (first line); else FRAGFS_NEW_PASSPHRASE or a prompt'),
  ).action(
    action(async (store: string, opts: PasswdOptions) => {
      const storePath = storeLocation(store);
      const space = opts.space ?? DEFAULT_SPACE;
      await Repo.checkExists(storePath, space);
      if (identityFileOf(opts) !== undefined) {
        throw new FragfsError('USAGE', 'passwd changes a passphrase and opens the space with it, not with an identity (unset FRAGFS_IDENTITY)');
      }
      const current = await readPassphrase(opts, { prompt: 'Current passphrase' });
      const opened = await openSpaceKeys(storePath, space, { passphrase: current });
      const next = await readNewPassphrase(opts);
      if (next === current) throw new FragfsError('USAGE', 'the new passphrase is the current one');
      const id = await changePassphrase(opened, next);
      process.stderr.write(`fragfs: changed the passphrase ${id} of ${storePath} (space ${space})\n`);
    }),
  );
}
