// Permission checks the live vfs makes itself (mounts without default_permissions): the mounting
// user (uid 1000 here) gets EACCES/EPERM exactly where the kernel's generic_permission would say so,
// root passes everything but executing a file without x bits, and with no accessor nothing is checked.

import test from 'ava';
import { isFragfsError, type ErrorCode } from '../../src/errors.js';
import { permits, MAY_EXEC, MAY_READ, MAY_WRITE } from '../../src/vfs/permissions.js';
import type { InodeRecord } from '../../src/vfs/inode.js';
import { ME, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, fixture, writeFile } from './vfs-helpers.js';

const ROOT = { uid: 0, gid: 0 };
const OTHER = { uid: 2000, gid: 2000 };
const who = { uid: ME.uid, gids: [ME.gid, 50] };

async function denied(t: { true(v: boolean, m?: string): void }, p: Promise<unknown>, code: ErrorCode, what: string): Promise<void> {
  try {
    await p;
    t.true(false, `${what}: expected ${code}`);
  } catch (e) {
    t.true(isFragfsError(e, code), `${what}: expected ${code}, got ${String(e)}`);
  }
}

function rec(mode: number, uid: number, gid: number): InodeRecord {
  return { mode, uid, gid, size: 0, atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n, nlink: 1, alloc: 0, parents: [] };
}

test('permits follows owner, group, other bits; root overrides all but exec without x', (t) => {
  const f = rec(0o100640, 1000, 2000);
  t.true(permits(f, who, MAY_READ | MAY_WRITE));
  t.false(permits(f, { uid: 3000, gids: [2000] }, MAY_WRITE));
  t.true(permits(f, { uid: 3000, gids: [2000] }, MAY_READ));
  t.false(permits(f, { uid: 3000, gids: [3000] }, MAY_READ));
  // The owner class decides even when it grants less than group or other.
  t.false(permits(rec(0o100077, 1000, 1000), who, MAY_READ));
  t.true(permits(rec(0o100000, 1000, 1000), { uid: 0, gids: [0] }, MAY_READ | MAY_WRITE));
  t.false(permits(rec(0o100644, 1000, 1000), { uid: 0, gids: [0] }, MAY_EXEC));
  t.true(permits(rec(0o100744, 1000, 1000), { uid: 0, gids: [0] }, MAY_EXEC));
  t.true(permits(rec(0o040000, 1000, 1000), { uid: 0, gids: [0] }, MAY_EXEC));
});

test('the mounting user gets EACCES and EPERM where the kernel would give them', async (t) => {
  const fx = await fixture();
  try {
    // Files owned by others, made by an unchecked vfs as their creators would.
    const setup = fx.vfs;
    t.false(setup.checksPermissions);
    await setup.mkdir('/closed', 0o700, OTHER);
    await setup.mkdir('/open', 0o755, OTHER);
    await setup.mkdir('/sticky', 0o1777, OTHER);
    await setup.mkdir('/mine', 0o755, ME);
    await writeFile(setup, '/mine/f', Buffer.from('x'));
    const fh = await setup.create('/open/secret', 0o600, O_WRONLY, OTHER);
    await setup.release('/open/secret', fh);
    const fh2 = await setup.create('/sticky/theirs', 0o666, O_WRONLY, OTHER);
    await setup.release('/sticky/theirs', fh2);
    await setup.close();
    const v = await fx.reopen({ permissionsFor: who });
    t.true(v.checksPermissions);

    // Search permission on every directory of a path.
    t.is((await v.getattr('/closed')).uid, OTHER.uid);
    await v.mkdir('/mine/sub', 0o755, ME);
    await v.chmod('/mine', 0o600);
    await denied(t, v.getattr('/mine/sub'), 'PERMISSION', 'stat below a dir without x');
    await v.chmod('/mine', 0o755);

    // Read and write by open flags.
    await denied(t, v.open('/open/secret', O_RDONLY), 'PERMISSION', 'read of 0600 owned by another');
    await denied(t, v.open('/open/secret', O_WRONLY), 'PERMISSION', 'write of 0600 owned by another');
    await denied(t, v.truncate('/open/secret', 0), 'PERMISSION', 'truncate without write');
    await v.chmod('/mine/f', 0o400);
    await v.release('/mine/f', await v.open('/mine/f', O_RDONLY));
    await denied(t, v.open('/mine/f', O_RDWR), 'PERMISSION', 'write of my own 0400 file');
    await denied(t, v.open('/mine/f', O_RDONLY | O_TRUNC), 'PERMISSION', 'O_TRUNC needs write');
    await denied(t, v.access('/mine/f', 2), 'PERMISSION', 'access W_OK');
    await v.access('/mine/f', 4);
    await v.chmod('/mine/f', 0o644);

    // Directory changes need write and search on the directory.
    await denied(t, v.create('/open/new', 0o644, O_WRONLY, ME), 'PERMISSION', 'create in a dir of another');
    await denied(t, v.mkdir('/open/d', 0o755, ME), 'PERMISSION', 'mkdir in a dir of another');
    await denied(t, v.unlink('/open/secret'), 'PERMISSION', 'unlink in a dir of another');
    await denied(t, v.rename('/mine/f', '/open/f'), 'PERMISSION', 'rename into a dir of another');
    await denied(t, v.link('/mine/f', '/open/f'), 'PERMISSION', 'link into a dir of another');
    await denied(t, v.symlink('f', '/open/l', ME), 'PERMISSION', 'symlink in a dir of another');
    await denied(t, v.readdir('/closed'), 'PERMISSION', 'readdir of a 0700 dir of another');

    // Sticky directory: others' entries stay.
    await denied(t, v.unlink('/sticky/theirs'), 'NOT_PERMITTED', 'unlink of another user entry in a sticky dir');
    await denied(t, v.rename('/sticky/theirs', '/sticky/mine'), 'NOT_PERMITTED', 'rename of it');
    await writeFile(v, '/sticky/mine', Buffer.from('y'));
    await v.unlink('/sticky/mine');

    // Owner-only attribute changes.
    await denied(t, v.chmod('/open/secret', 0o644), 'NOT_PERMITTED', 'chmod of another user file');
    await denied(t, v.chown('/mine/f', OTHER.uid, ME.gid), 'NOT_PERMITTED', 'give a file away');
    await denied(t, v.chown('/mine/f', ME.uid, OTHER.gid), 'NOT_PERMITTED', 'chgrp to a group not mine');
    await v.chown('/mine/f', ME.uid, 50);
    t.is((await v.getattr('/mine/f')).gid, 50);
    await denied(t, v.utimens('/open/secret', 0n, 0n), 'NOT_PERMITTED', 'utimens of another user read-only file');

    // xattrs: user.* follows read/write permission, trusted.* is root's.
    await denied(t, v.setxattr('/open/secret', 'user.k', Buffer.from('v'), 0), 'PERMISSION', 'setxattr without write');
    await denied(t, v.getxattr('/open/secret', 'user.k'), 'PERMISSION', 'getxattr without read');
    await denied(t, v.setxattr('/mine/f', 'trusted.k', Buffer.from('v'), 0), 'NOT_PERMITTED', 'trusted.* as a user');
    await v.setxattr('/mine/f', 'user.k', Buffer.from('v'), 0);

    // Moving a directory to another parent needs write on it ('..' changes).
    await v.mkdir('/mine/ro', 0o555, ME);
    await v.mkdir('/mine/dst', 0o755, ME);
    await denied(t, v.rename('/mine/ro', '/mine/dst/ro'), 'PERMISSION', 'move a dir without write on it');
    await v.rename('/mine/ro', '/mine/ro2');
  } finally {
    await fx.done();
  }
});

test('root as the accessor passes every check; without an accessor nothing is checked', async (t) => {
  for (const permissionsFor of [{ uid: 0, gids: [0] }, undefined]) {
    const fx = await fixture({ vfs: permissionsFor ? { permissionsFor } : {} });
    const v = fx.vfs;
    try {
      t.is(v.checksPermissions, permissionsFor !== undefined);
      await v.mkdir('/closed', 0o000, OTHER);
      const fh = await v.create('/closed/f', 0o000, O_WRONLY, OTHER);
      await v.release('/closed/f', fh);
      await v.release('/closed/f', await v.open('/closed/f', O_RDWR));
      await v.chmod('/closed/f', 0o600);
      await v.chown('/closed/f', ROOT.uid, ROOT.gid);
      t.deepEqual(await v.readdir('/closed'), ['f']);
      await v.unlink('/closed/f');
    } finally {
      await fx.done();
    }
  }
});
