// A user's age identity on disk: where it lives by default and how `fragfs id new` writes it, in
// age-keygen's own format (two comment lines, then the secret key), so `age -d -i FILE` reads it and
// an identity made by `age-keygen` is read by fragfs the same way (age-box.ts readIdentityFile).

import { open } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { FragfsError, fromFsError } from '../errors.js';
import { PRIVATE_FILE_MODE, mkdirPrivate } from '../store/private-modes.js';
import { newIdentity, readIdentityFile, recipientOf } from './age-box.js';

/** $XDG_CONFIG_HOME/fragfs/identity, else ~/.config/fragfs/identity. */
export function defaultIdentityPath(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_CONFIG_HOME'];
  const base = xdg !== undefined && xdg.startsWith('/') ? xdg : join(homedir(), '.config');
  return join(base, 'fragfs', 'identity');
}

/** The file age-keygen writes for `identity`: `# created: <RFC 3339>`, `# public key: age1...`, the key. */
export async function identityFileText(identity: string, created: Date = new Date()): Promise<string> {
  const when = created.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return `# created: ${when}\n# public key: ${await recipientOf(identity)}\n${identity}\n`;
}

/**
 * Writes a new X25519 identity to `path` (mode 0600; missing folders 0700) and returns its
 * recipient. EXISTS when the file is there: an identity is never overwritten.
 */
export async function writeNewIdentity(path: string): Promise<string> {
  const identity = await newIdentity();
  const text = await identityFileText(identity);
  try {
    await mkdirPrivate(dirname(path));
    const fh = await open(path, 'wx', PRIVATE_FILE_MODE);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new FragfsError('EXISTS', `${path} already exists; fragfs never overwrites an identity (give another FILE)`, { path });
    }
    throw fromFsError(e, 'writing the identity', path);
  }
  return recipientOf(identity);
}

/** The recipients of the identities in the file at `path`. */
export async function recipientsOfFile(path: string): Promise<string[]> {
  return Promise.all((await readIdentityFile(path)).map((i) => recipientOf(i)));
}
