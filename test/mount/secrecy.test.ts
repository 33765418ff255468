// What a copy of the store folder shows after a mounted session, on every backend: no name, content,
// symlink target, xattr, block key or passphrase in any file of it (nor in the mount's log), and every
// file 0600, every folder 0700.

import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { ensurePatchedAddon, fragfs, fuseAvailable, initStore, makeEnv, mount, PASSPHRASE, sh } from './helpers.js';
import { testIf } from '../helpers/capabilities.js';

const maybe = testIf(fuseAvailable(), 'the store-secrecy mount test needs /dev/fuse');
if (fuseAvailable()) maybe.before(ensurePatchedAddon);

async function everything(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...(await everything(p)));
  }
  return out;
}

const SECRETS: [string, string][] = [
  ['folder name', 'private-folder-of-ada'],
  ['file name', 'salaries-2026-final.xlsx'],
  ['symlink name', 'shortcut-to-plans'],
  ['symlink target', 'secret-target-in-the-plans'],
  ['xattr name', 'secret-attribute-name'],
  ['xattr value', 'secret-attribute-value'],
  ['text content', 'THE-BOARD-MINUTES-TEXT'],
  ['passphrase', PASSPHRASE],
];

for (const backend of ['lmdb', 'dir', 'split'] as const) {
  maybe(`${backend}: after a mounted session the store folder holds no name, content, key or passphrase; files 0600, folders 0700`, async (t: ExecutionContext) => {
    const e = await makeEnv(t);
    const store = await initStore(t, e, 'store', ['--backend', backend]);
    const m = await mount(t, e, store, 'mnt');
    const [, folder] = SECRETS[0]!;
    const [, file] = SECRETS[1]!;
    await sh(
      t,
      `cd ${m.mountpoint} && mkdir ${folder} && for i in $(seq 200); do echo "THE-BOARD-MINUTES-TEXT line $i"; done > ${folder}/${file} ` +
        `&& head -c 300000 /dev/urandom > ${folder}/noise.bin && ln -s secret-target-in-the-plans ${folder}/shortcut-to-plans ` +
        `&& setfattr -n user.secret-attribute-name -v secret-attribute-value ${folder}/${file}`,
    );
    const random = await readFile(join(m.mountpoint, folder, 'noise.bin'));
    const snap = await fragfs(e, ['snapshot', store, '--name', 'session']);
    t.is(snap.code, 0, snap.stderr);
    t.is((await m.umount()).code, 0);

    const paths = await everything(store);
    const files: string[] = [];
    for (const p of paths) {
      const st = await stat(p);
      if (st.isDirectory()) t.is(st.mode & 0o777, 0o700, `${p} is ${(st.mode & 0o777).toString(8)}`);
      else {
        t.is(st.mode & 0o777, 0o600, `${p} is ${(st.mode & 0o777).toString(8)}`);
        files.push(p);
      }
    }
    t.is((await stat(store)).mode & 0o777, 0o700, 'the store folder itself');
    const needles: [string, Buffer][] = [...SECRETS.map(([what, s]) => [what, Buffer.from(s)] as [string, Buffer]), ['random content', random.subarray(5000, 5032)]];
    const haystacks = [...files, ...(m.logFile ? [m.logFile] : [])];
    for (const f of haystacks) {
      const bytes = await readFile(f);
      for (const [what, needle] of needles) t.false(bytes.includes(needle), `${what} is readable in ${f}`);
    }
    t.true(files.length >= 3, `${files.length} files checked`);
  });
}
