// The local-fs addon for tests that need it: built here, or the test fails saying why (the test
// machines have a compiler, so a missing addon is a defect, not a reason to skip).

import { localFs, type LocalFs } from '../../src/local/local-fs.js';

export async function localAddon(t: { fail: (m: string) => void }): Promise<LocalFs> {
  const l = await localFs();
  if (l instanceof Error) {
    t.fail(`the local-fs addon did not build: ${l.message}`);
    throw l;
  }
  return l;
}
