#!/usr/bin/env node
// mount.fragfs: the mount helper mount(8) runs for `mount -t fuse.fragfs STORE DIR -o OPTIONS` and
// for fstab lines of type fuse.fragfs (installed as /sbin/mount.fuse.fragfs, see the README). It
// takes mount(8)'s helper arguments, `SOURCE DIR [-sfnv] [-N NS] [-o OPTIONS] [-t TYPE]`, and runs
// `fragfs mount SOURCE DIR --background -o OPTIONS`: mount(8) waits for the helper, so it returns
// once the mount is up (or has failed, with fragfs's exit code) and the mount process stays.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function usage(message: string): never {
  process.stderr.write(`mount.fragfs: ${message}\nusage: mount.fragfs STORE MOUNTPOINT [-o ro,allow_other,passphrase_file=FILE,...]\n`);
  process.exit(2);
}

const positional: string[] = [];
const options: string[] = [];
let fake = false;
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '-o') options.push(args[++i] ?? usage('-o needs a list of options'));
  else if (a.startsWith('-o') && a.length > 2) options.push(a.slice(2));
  else if (a === '-t' || a === '-N') i++; // the type is ours; a namespace is entered by mount(8)
  else if (a === '-f') fake = true; // "fake": do everything but the mount
  else if (a === '-n' || a === '-s' || a === '-v') continue; // no mtab to write; sloppy and verbose change nothing here
  else if (a === '-h' || a === '--help') usage('the mount helper of fragfs');
  else if (a.startsWith('-')) usage(`unknown option ${a}`);
  else positional.push(a);
}
if (positional.length !== 2) usage('give a store and a mount point');
if (fake) process.exit(0);

// main.js re-runs itself for --background from process.argv[1]: it must be that file, not this one.
const main = join(dirname(fileURLToPath(import.meta.url)), 'main.js');
process.argv = [process.argv[0]!, main, 'mount', positional[0]!, positional[1]!, '--background', ...options.flatMap((o) => ['-o', o])];
// A mount helper says nothing on success (mount(8) prints its own -v lines); `mount --background`
// would print the mount point. Errors go to stderr as ever.
process.stdout.write = ((_chunk: unknown, ...rest: unknown[]) => {
  const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
  done?.();
  return true;
}) as typeof process.stdout.write;
await import('./main.js');
