// `put --one-file-system` of a tree that holds a live fragfs mount: the mount point is stored as an
// empty folder and not entered (without the option, put walks into the mount as into any folder).

import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensurePatchedAddon, fragfs, fuseAvailable, initStore, makeEnv, mount } from './helpers.js';

const maybe = fuseAvailable() ? test : test.skip;

maybe('put --one-file-system does not walk into a fragfs mount inside the tree', async (t) => {
  await ensurePatchedAddon();
  const e = await makeEnv(t);
  const inner = await initStore(t, e, 'inner');
  const outer = await initStore(t, e, 'outer');
  const tree = join(e.root, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'here.txt'), 'here\n');
  const m = await mount(t, e, inner, 'tree/mnt');
  await writeFile(join(m.mountpoint, 'inside.txt'), 'inside the mount\n');

  const put = await fragfs(e, ['put', outer, tree, '--one-file-system', '--no-progress', '-q']);
  t.is(put.code, 0, put.stderr);
  const key = put.stdout.trim();
  t.regex((await fragfs(e, ['ls', outer, key])).stdout, /here\.txt[\s\S]*mnt|mnt[\s\S]*here\.txt/);
  t.is((await fragfs(e, ['ls', outer, `${key}/mnt`])).stdout, '');

  const all = await fragfs(e, ['put', outer, tree, '--no-progress', '-q']);
  t.is(all.code, 0, all.stderr);
  t.regex((await fragfs(e, ['ls', outer, `${all.stdout.trim()}/mnt`])).stdout, /inside\.txt/);
  t.is((await m.umount()).code, 0);
});
