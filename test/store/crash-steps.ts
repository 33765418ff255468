// How a kill -9 child tells its parent what it has done: one line per step, written to a file the
// parent opened as the child's descriptor 3 (crash-check.ts, runUntilKilled). A write to a file is in
// the kernel when it returns, so a kill at any later moment keeps the line; stdout into a full pipe
// queues the line inside the child, and the kill lost it.

import { writeSync } from 'node:fs';

export const STEP_FD = 3;

/** Writes one step line; it survives a SIGKILL that comes after this returns. */
export function writeStep(line: string): void {
  writeSync(STEP_FD, `${line}\n`);
}
