// How V8 tiers a command's code up while the command starts: imported by cli/main.ts before the
// program's modules load.
//
// Most fragfs commands (stats, ls, cat, snapshot, a put of a few files) end within half a second,
// and in that time V8 optimized a dozen functions (`fragfs stats`, `node --trace-opt`: 12, mostly
// node's path and URL helpers and the CommonJS lexer that reads the dependencies' modules),
// compiled on background threads for code the command never runs long enough to use, paid in CPU
// time. For the first START_UP_MS the interrupt budget (the bytecode a function runs between two of
// V8's tiering checks) is 16 times V8's default, so only code that is really hot is optimized (4
// functions there); after that the default returns and a long put, get or gc tiers up as V8
// intends. Measured on a small store, both builds interleaved, 8 runs each (median user+system
// CPU): `stats` 0.59 -> 0.46 s, `cat` of a small file 0.52 -> 0.42, `put` of one file 0.57 -> 0.49,
// `ls` 0.48 -> 0.46, `--version` 0.64 -> 0.56; a get of 12,000 files (about 9 CPU-s) and a verify
// no different. The mount keeps V8's default: untar into a mount ran 5-18 % slower with the
// start-up budget (three interleaved pairs), its request path being many functions that are each
// only moderately hot.

import { setFlagsFromString } from 'node:v8';

/** V8 11.3's (Node 20's) default `--interrupt-budget`, in bytes of bytecode. */
export const V8_DEFAULT_INTERRUPT_BUDGET = 67_584;
/** The budget while a command starts. */
export const START_UP_INTERRUPT_BUDGET = 16 * V8_DEFAULT_INTERRUPT_BUDGET;
/** How long a command runs with the start-up budget. */
export const START_UP_MS = 500;

/**
 * Raises the interrupt budget for the first START_UP_MS of the command `argv` runs (process.argv's
 * shape), and returns true; false, changing nothing, for `mount` and under a V8 whose default budget
 * is not the one restored here (another Node than 20).
 */
export function tierLaterWhileStarting(argv: readonly string[]): boolean {
  if (!process.versions.v8.startsWith('11.3.') || argv[2] === 'mount') return false;
  setFlagsFromString(`--interrupt-budget=${START_UP_INTERRUPT_BUDGET}`);
  setTimeout(() => setFlagsFromString(`--interrupt-budget=${V8_DEFAULT_INTERRUPT_BUDGET}`), START_UP_MS).unref();
  return true;
}

tierLaterWhileStarting(process.argv);
