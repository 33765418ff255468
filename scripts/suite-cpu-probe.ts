// The per-test-file CPU of a suite run (`FRAGFS_SUITE_CPU=LOG bash scripts/test.sh`): test.sh loads
// this with --import into every node process of the ava step. In an ava worker (one process per test
// file) it registers suite-cpu-hooks.ts, which notes the test file the worker loads, and at exit
// appends the worker's own CPU and that of the children it waited for (/proc/self/stat: utime,
// stime, cutime, cstime) to LOG. Not counted: the servers, and mounts, which run detached.
// scripts/suite-cpu-report.ts sums LOG up.

import { appendFileSync, readFileSync } from 'node:fs';
import { register } from 'node:module';

const log = process.env['FRAGFS_SUITE_CPU'];
const startedMs = Date.now();
/** Linux's USER_HZ: /proc times are in 1/100 s. */
const TICKS_PER_S = 100;

if (log && /[/\\]ava[/\\]lib[/\\]worker[/\\]/.test(process.argv[1] ?? '')) {
  register(new URL('./suite-cpu-hooks.js', import.meta.url));
  process.on('exit', () => {
    // Fields after the command name's closing parenthesis (the last one: a name may hold ") "):
    // state is [0], utime [11] ... cstime [14] (proc(5)).
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ').map(Number);
    const selfS = (f[11]! + f[12]!) / TICKS_PER_S;
    const childrenS = (f[13]! + f[14]!) / TICKS_PER_S;
    appendFileSync(log, `exit ${process.pid} ${startedMs} ${Date.now()} ${selfS} ${childrenS}\n`, { mode: 0o600 });
  });
}
