// Names are bytes, through a real mount and the commands: every byte 0x01-0xFF but '/' in names
// (create, readdir, rename, unlink, hard link, xattr names), 255-byte names and ENAMETOOLONG at 256,
// symlink targets that are not UTF-8; then put/get of such a tree comes back byte-identical, a
// snapshot mount lists the same bytes, and ls/cat show and take them (ls as `ls -b` does).

import test from 'ava';
import { join } from 'node:path';
import { CLI, ensurePatchedAddon, fragfs, fuseAvailable, initStore, makeEnv, mount, PASSPHRASE, py, sh } from './helpers.js';

const enabled = fuseAvailable();
if (enabled) test.before(ensurePatchedAddon);
const maybe = enabled ? test : test.skip;

/** A python3 script that builds the byte-name tree under `root` (bytes path) and prints nothing. */
const BUILD = String.raw`
import os, sys
root = os.fsencode(sys.argv[1])
d = os.path.join(root, b'names-\xe9')
os.mkdir(d)
for x in range(1, 256):
    if x == 0x2f: continue
    n = b'a' + bytes([x])
    with open(os.path.join(d, n), 'wb') as f: f.write(b'content of ' + n)
os.symlink(b'../\xc3\x28\xff-target', os.path.join(d, b'link-\x80'))
os.link(os.path.join(d, b'a\xff'), os.path.join(d, b'hard-\xfe'))
os.setxattr(os.path.join(d, b'a\xfe'), b'user.x\xff', b'v\x00\x01')
with open(os.path.join(d, b'L' * 255), 'wb') as f: f.write(b'long')
try:
    open(os.path.join(d, b'L' * 256), 'wb')
    print('256 accepted')
except OSError as e:
    print('256', e.errno)
os.rename(os.path.join(d, b'a\x01'), os.path.join(d, b'renamed-\xf0\x9f'))
os.unlink(os.path.join(d, b'a\x02'))
`;

/** Lists a tree under `root` as "relative path hex -> type, content or target hex, xattrs" lines. */
const LIST = String.raw`
import os, sys, hashlib
root = os.fsencode(sys.argv[1])
out = []
for dirpath, dirs, files in os.walk(root):
    for n in sorted(dirs + files):
        p = os.path.join(dirpath, n)
        rel = os.path.relpath(p, root).hex()
        if os.path.islink(p):
            out.append(rel + ' link ' + os.readlink(p).hex())
        elif os.path.isdir(p):
            out.append(rel + ' dir')
        else:
            xs = sorted((x.hex() if isinstance(x, bytes) else os.fsencode(x).hex()) + '=' + os.getxattr(p, x).hex() for x in os.listxattr(p))
            data = open(p, 'rb').read()
            out.append(rel + ' file ' + hashlib.sha256(data).hexdigest()[:16] + ' ' + ','.join(xs) + ' nlink=' + str(os.lstat(p).st_nlink))
print('\n'.join(sorted(out)))
`;

maybe('names as bytes through a mount, a snapshot mount, put/get, ls and cat', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'mnt');
  const built = await py(`${BUILD}`.replace('sys.argv[1]', JSON.stringify(m.mountpoint)));
  t.is(built.code, 0, built.stderr);
  t.is(built.stdout.trim(), '256 36', 'a 256-byte name is ENAMETOOLONG');
  const listMount = await py(LIST.replace('sys.argv[1]', JSON.stringify(m.mountpoint)));
  t.is(listMount.code, 0, listMount.stderr);
  const lines = listMount.stdout.trim().split('\n');
  t.is(lines.length, 1 + 253 + 3, 'the folder, 253 files (254 made, one unlinked), a link, a hard link, a long name');
  // a\xff and a\xfe are two files with their own contents.
  const row = (hexName: string) => lines.find((l) => l.startsWith(`${Buffer.from('names-\xe9', 'latin1').toString('hex')}2f${hexName} `));
  t.not(row('61ff')?.split(' ')[2], row('61fe')?.split(' ')[2]);
  t.regex(row('61fe') ?? '', /757365722e78ff=760001/, 'an xattr name that is not UTF-8');

  // The same bytes in a snapshot, mounted read-only.
  const snap = await fragfs(e, ['snapshot', store, '--name', 'bytes']);
  t.is(snap.code, 0, snap.stderr);
  const s = await mount(t, e, store, 'snap', ['--snapshot', 'bytes']);
  const listSnap = await py(LIST.replace('sys.argv[1]', JSON.stringify(s.mountpoint)));
  t.is(listSnap.stdout, listMount.stdout);

  // put of the mounted tree and get back: byte-identical.
  const put = await fragfs(e, ['put', store, m.mountpoint, '--name', 'tree']);
  t.is(put.code, 0, put.stderr);
  const dest = join(e.root, 'restored');
  const get = await fragfs(e, ['get', store, 'tree', dest]);
  t.is(get.code, 0, get.stderr);
  const listGot = await py(LIST.replace('sys.argv[1]', JSON.stringify(dest)));
  // Hard links inside the tree stay linked; xattrs are not restored by get (yet), so compare without them.
  const noX = (text: string) => text.replace(/ [0-9a-f=,]*( nlink=\d+)$/gm, '$1');
  t.is(noX(listGot.stdout), noX(listMount.stdout));

  // ls shows names as ls -b does; --json gives the bytes; cat takes a name's bytes on the command line
  // (bash's $'..' passes the raw byte \xe9; a typed escape is not the name).
  const cli = (args: string, expect: number | 'any' = 0) => sh(t, `FRAGFS_PASSPHRASE='${PASSPHRASE}' node ${CLI} ${args}`, { expect });
  t.is((await cli(`ls ${store} 'bytes/names-\\351'`, 'any')).code, 5);
  const ls = await cli(`ls ${store} bytes/$'names-\\xe9'`);
  t.regex(ls.stdout, / a\\377$/m);
  t.regex(ls.stdout, / link-\\200 -> \.\.\/\\303\(\\377-target$/m);
  const json = await cli(`ls ${store} bytes/$'names-\\xe9' --json`);
  const entries = JSON.parse(json.stdout) as { name: string; nameBase64?: string }[];
  t.truthy(entries.find((x) => x.nameBase64 === Buffer.from([0x61, 0xff]).toString('base64')), 'nameBase64 holds the bytes of a name that is not UTF-8');
  const cat = await cli(`cat ${store} bytes/$'names-\\xe9'/$'a\\xff' | od -An -c | tr -s ' '`);
  t.regex(cat.stdout, /c o n t e n t o f a 377/);
});
