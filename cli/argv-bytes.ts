// The exact bytes of command-line arguments. Node decodes argv as UTF-8 and replaces bytes that are
// not valid UTF-8 with U+FFFD, so `fragfs put STORE $'caf\xe9'` would name another file. On Linux
// /proc/self/cmdline holds the bytes the shell passed; an argument Node could not decode is taken
// from there, matched by position from the end (the script's own arguments come last).

import { readFileSync } from 'node:fs';

let raw: Buffer[] | null | undefined;

function rawArgs(): Buffer[] | null {
  if (raw !== undefined) return raw;
  try {
    const all = readFileSync('/proc/self/cmdline');
    const parts: Buffer[] = [];
    let start = 0;
    for (let i = 0; i < all.length; i++) {
      if (all[i] === 0) {
        parts.push(all.subarray(start, i));
        start = i + 1;
      }
    }
    if (start < all.length) parts.push(all.subarray(start));
    raw = parts;
  } catch {
    raw = null;
  }
  return raw;
}

/**
 * The bytes of `arg`, one of process.argv's user arguments: its UTF-8 encoding when that is exact,
 * else the matching raw argument from /proc/self/cmdline (when there is one that decodes to it).
 */
export function argBytes(arg: string): Buffer {
  const utf8 = Buffer.from(arg, 'utf8');
  if (!arg.includes('\uFFFD')) return utf8;
  const args = rawArgs();
  const user = process.argv.slice(2);
  const at = user.lastIndexOf(arg);
  if (!args || at < 0) return utf8;
  // process.argv ends with the same arguments as the command line (node's own flags come first).
  const fromEnd = user.length - at;
  const candidate = args[args.length - fromEnd];
  if (candidate !== undefined && candidate.toString('utf8') === arg) return Buffer.from(candidate);
  return utf8;
}
