// Module hooks of suite-cpu-probe.ts (they run on Node's hooks thread, in the worker's process):
// note the first test file the worker resolves, with the worker's pid, in FRAGFS_SUITE_CPU's log.

import { appendFileSync } from 'node:fs';

type Resolved = { url: string };
type NextResolve = (specifier: string, context: unknown) => Promise<Resolved>;

let noted = false;

export async function resolve(specifier: string, context: unknown, next: NextResolve): Promise<Resolved> {
  const r = await next(specifier, context);
  const log = process.env['FRAGFS_SUITE_CPU'];
  if (!noted && log && /\/dist\/test\/.*\.test\.js$/.test(r.url)) {
    noted = true;
    appendFileSync(log, `file ${process.pid} ${r.url.replace(/^.*\/dist\/test\//, '')}\n`, { mode: 0o600 });
  }
  return r;
}
