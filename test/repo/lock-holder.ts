// A process that takes a store's lock and keeps it until it is killed: the holder that
// test/repo/store-lock.test.ts kills with SIGKILL. Prints "locked <pid>" once it holds the lock.

import { StoreLock } from '../../src/repo/store-lock.js';

const storePath = process.argv[2]!;
await StoreLock.acquire({ storePath, space: 'default', purpose: 'test holder' });
process.stdout.write(`locked ${process.pid}\n`);
setInterval(() => undefined, 60_000);
