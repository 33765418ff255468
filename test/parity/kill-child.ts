// Child of kill.test.ts: runs a protect pass or a repair on a store without its keys and kills
// itself with SIGKILL once `after` stripes are done, as a crash or kill -9 would stop it.
// Usage: node kill-child.js protect|repair STORE AFTER

import { openKeyless } from '../../src/parity/parity-admin.js';
import { protectStore } from '../../src/parity/protect.js';
import { repairStore } from '../../src/parity/repair.js';

const [mode, store, after] = process.argv.slice(2) as [string, string, string];
const k = await openKeyless(store, 'default', { readOnly: false });
const afterStripe = (n: number): void => {
  if (n >= Number(after)) process.kill(process.pid, 'SIGKILL');
};
if (mode === 'protect') await protectStore(k.store, 'default', k.settings!, { parityStore: k.parityStore, cachePath: k.cachePath, afterStripe });
else await repairStore(k.store, 'default', { parityStore: k.parityStore, cachePath: k.cachePath, afterStripe });
await k.close();
process.stdout.write('finished without being killed\n');
