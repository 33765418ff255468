// `fragfs id new [FILE]` and `fragfs id show [FILE]`: a user's age identity (an X25519 key pair), in
// age-keygen's file format; its recipient (age1...) is what others give to `fragfs key add --recipient`.

import type { Command } from 'commander';
import { defaultIdentityPath, recipientsOfFile, writeNewIdentity } from '../src/people/identity-file.js';
import { action } from './common.js';

export function registerId(program: Command): void {
  const id = program.command('id').description('your age identity (key pair): make one, show its recipient');
  id.command('new')
    .description('write a new X25519 identity (mode 0600) and print its recipient')
    .argument('[file]', 'where to write it (default $XDG_CONFIG_HOME/fragfs/identity, else ~/.config/fragfs/identity)')
    .action(
      action(async (file: string | undefined) => {
        const path = file ?? defaultIdentityPath();
        const recipient = await writeNewIdentity(path);
        process.stderr.write(`fragfs: wrote an identity to ${path}; keep it private, it opens every space sealed to it\n`);
        process.stdout.write(`${recipient}\n`);
      }),
    );
  id.command('show')
    .description('print the recipient (age1...) of an identity file')
    .argument('[file]', 'the identity file (default $XDG_CONFIG_HOME/fragfs/identity, else ~/.config/fragfs/identity)')
    .action(
      action(async (file: string | undefined) => {
        for (const r of await recipientsOfFile(file ?? defaultIdentityPath())) process.stdout.write(`${r}\n`);
      }),
    );
}
