// Durability of the live state: a reopen shows the same tree, and kill -9 after fsync loses nothing
// fsynced (real LMDB store, real child process, SIGKILL).

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { Repo } from '../../src/repo/repo.js';
import { LiveVfs } from '../../src/vfs/live-vfs.js';
import { PathVfs } from './path-vfs.js';
import { ME, O_RDWR, fixture, pseudoRandom, readFile, walk, writeFile } from './vfs-helpers.js';

test('reopen of the state after close shows the same tree', async (t) => {
  const fx = await fixture({ backend: 'lmdb' });
  try {
    const v = fx.vfs;
    await v.mkdir('/a', 0o750, ME);
    await v.mkdir('/a/b', 0o755, ME);
    await writeFile(v, '/a/b/f', pseudoRandom(200_000, 3));
    await writeFile(v, '/a/empty', Buffer.alloc(0));
    await v.symlink('b/f', '/a/l', ME);
    await v.link('/a/b/f', '/hard');
    await v.setxattr('/a', 'user.k', Buffer.from('v'), 0);
    const fh = await v.create('/open-at-close', 0o600, O_RDWR, ME);
    await v.write('/open-at-close', fh, Buffer.from('buffered'), 8, 0);
    const before = await walk(v);
    await v.close(); // flushes the still-open handle's data
    const w = await fx.reopen();
    t.deepEqual(await walk(w), before);
    t.is((await w.getattr('/hard')).nlink, 2);
    t.is((await readFile(w, '/open-at-close')).toString(), 'buffered');
  } finally {
    await fx.done();
  }
});

test('kill -9 after fsync: fsynced data and committed metadata survive', async (t) => {
  const fx = await fixture({ backend: 'lmdb' });
  try {
    const storePath = join(fx.dir, 'store');
    await fx.vfs.close();
    await fx.repo.close();
    const child = spawn(process.execPath, [fileURLToPath(new URL('./crash-child.js', import.meta.url)), storePath, fx.statePath, 'vfs test'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    fx.repo = await Repo.open({ storePath, passphrase: 'vfs test' });
    const v = new PathVfs(await LiveVfs.open({ repo: fx.repo, statePath: fx.statePath }));
    fx.vfs = v;
    const want = Buffer.alloc(300_000);
    for (let i = 0; i < want.length; i++) want[i] = (i * 31 + 7) & 0xff;
    t.true((await readFile(v, '/dir/synced')).equals(want));
    t.is(await v.readlink('/dir/link'), 'synced');
    // The unsynced file's name was committed (metadata ops are one transaction each); its data was not promised.
    t.true((await v.readdir('/dir')).includes('unsynced'));
  } finally {
    await fx.done();
  }
});
