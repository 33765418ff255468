// Ordinary tools on a real read-write mount: cp -a, tar, rsync, git, an editor-style save, sqlite3,
// xattrs, links, and the errno each failure must give. One mount serves every test of this file;
// each test works in its own folder.

import test from 'ava';
import { join } from 'node:path';
import {
  ensurePatchedAddon,
  type Env,
  fuseAvailable,
  hasTool,
  initStore,
  makeEnv,
  mount,
  type Mounted,
  py,
  sh,
  sharedCtx,
} from './helpers.js';

const enabled = fuseAvailable();
const shared = sharedCtx();
let env: Env;
let m: Mounted;
/** A real tree with many files, symlinks and permissions: TypeScript's lib folder. */
const SOURCE = join(process.cwd(), 'node_modules', 'typescript', 'lib');

if (enabled) {
  test.before(async () => {
    await ensurePatchedAddon();
    env = await makeEnv(shared);
    const store = await initStore(shared, env);
    m = await mount(shared, env, store, 'mnt');
  });
  test.after.always(async () => {
    await shared.cleanup();
  });
}
const maybe = enabled ? test : test.skip;
const withTool = (tool: string) => {
  if (enabled && !hasTool(tool)) console.warn(`!!! ${tool} is not installed: its mount test is skipped (scripts/setup.sh installs it)`);
  return enabled && hasTool(tool) ? test : test.skip;
};

maybe('cp -a of a real tree then diff -r shows no difference; modes, sizes and mtimes kept', async (t) => {
  const dst = join(m.mountpoint, 'cp');
  await sh(t, `mkdir ${dst} && cp -a ${SOURCE} ${dst}/lib`);
  await sh(t, `diff -r ${SOURCE} ${dst}/lib`);
  // Directory sizes are the filesystem's own business; file sizes are not.
  const list = (root: string) => sh(t, `cd ${root} && find . -type d -printf '%y %m %T@ %p\\n' -o -printf '%y %m %s %T@ %p\\n' | sort`);
  const [a, b] = await Promise.all([list(SOURCE), list(`${dst}/lib`)]);
  // %T@ prints the nanoseconds: every time is kept whole.
  t.is(b.stdout, a.stdout);
  t.true(a.stdout.split('\n').length > 50);
});

maybe('times set to the nanosecond read back exactly (files, folders, symlinks, before 1970), also after a remount', async (t) => {
  // Its own store and mount: the remount must not disturb the other tests' shared mount.
  const store = await initStore(t, env, 'times-store');
  const first = await mount(t, env, store, 'times-mnt');
  const dst = join(first.mountpoint, 'times');
  await sh(t, `mkdir ${dst} && echo x > ${dst}/f && echo y > ${dst}/old && ln -s f ${dst}/l`);
  await sh(t, `touch -d @1600000000.123456789 ${dst}/f && touch -d @-1000000.250000007 ${dst}/old && touch -h -d @1650000000.000000003 ${dst}/l`);
  await sh(t, `touch -d @1700000000.999999999 ${dst}`);
  const stat = (dir: string) =>
    py(`
import os, json
print(json.dumps({n: str(os.lstat(os.path.join(${JSON.stringify(dir)}, n)).st_mtime_ns) for n in ['f', 'old', 'l', '.']}))
`);
  const want = { f: '1600000000123456789', old: '-1000000250000007', l: '1650000000000000003', '.': '1700000000999999999' };
  t.deepEqual(JSON.parse((await stat(dst)).stdout), want);
  t.is((await first.umount()).code, 0);
  const again = await mount(t, env, store, 'times-mnt2');
  t.deepEqual(JSON.parse((await stat(join(again.mountpoint, 'times'))).stdout), want, 'after a remount (read from the live state)');
});

maybe('tar x into the mount and tar c out of it round-trip names, modes, sizes and mtimes', async (t) => {
  const dst = join(m.mountpoint, 'tar');
  const tmp = join(env.root, 'tar-work');
  await sh(t, `mkdir -p ${dst} ${tmp} && tar --sort=name -cf ${tmp}/src.tar -C ${SOURCE} .`);
  await sh(t, `tar -xf ${tmp}/src.tar -C ${dst}`);
  await sh(t, `diff -r ${SOURCE} ${dst}`);
  await sh(t, `tar --sort=name -cf ${tmp}/back.tar -C ${dst} .`);
  const [a, b] = await Promise.all([sh(t, `tar -tvf ${tmp}/src.tar`), sh(t, `tar -tvf ${tmp}/back.tar`)]);
  t.is(b.stdout, a.stdout);
});

withTool('rsync')('rsync -a twice: the second run transfers nothing', async (t) => {
  const dst = join(m.mountpoint, 'rsync');
  await sh(t, `rsync -a ${SOURCE}/ ${dst}/`);
  await sh(t, `diff -r ${SOURCE} ${dst}`);
  const second = await sh(t, `rsync -a --stats ${SOURCE}/ ${dst}/`);
  t.regex(second.stdout, /Number of regular files transferred: 0\b/);
});

withTool('git')('git init, add, commit, status, clone and fsck inside the mount', async (t) => {
  const repo = join(m.mountpoint, 'git', 'repo');
  const id = `-c user.name=t -c user.email=t@example.com`;
  await sh(t, `mkdir -p ${repo} && cd ${repo} && git init -q && cp -a ${SOURCE}/lib.d.ts ${SOURCE}/tsc.js . && mkdir sub && echo hello > sub/a.txt && git add -A && git ${id} commit -q -m first`);
  await sh(t, `cd ${repo} && echo more >> sub/a.txt && git ${id} commit -q -am second`);
  const status = await sh(t, `cd ${repo} && git status --porcelain`);
  t.is(status.stdout, '');
  await sh(t, `cd ${repo} && git fsck --strict 2>&1`);
  await sh(t, `git clone -q ${repo} ${m.mountpoint}/git/clone && git clone -q ${m.mountpoint}/git/clone ${env.root}/git-out`);
  const log = await sh(t, `cd ${env.root}/git-out && git log --format=%s && cat sub/a.txt`);
  t.is(log.stdout, 'second\nfirst\nhello\nmore\n');
});

maybe('editor-style save: write a temp file, fsync, rename over the original', async (t) => {
  const dir = join(m.mountpoint, 'editor');
  const r = await py(`
import os
d = ${JSON.stringify(dir)}
os.mkdir(d)
p = os.path.join(d, 'doc.txt')
with open(p, 'w') as f: f.write('version 1\\n')
for v in range(2, 6):
    tmp = os.path.join(d, '.doc.txt.swp')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, ('version %d\\n' % v).encode() * 1000)
    os.fsync(fd)
    os.close(fd)
    os.rename(tmp, p)
    dfd = os.open(d, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
print(sorted(os.listdir(d)))
print(open(p).read().count('version 5'))
`);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, "['doc.txt']\n1000\n");
  await sh(t, `cd ${dir} && sed -i 's/version 5/version 6/' doc.txt && grep -c 'version 6' doc.txt | grep -qx 1000`);
});

withTool('sqlite3')('sqlite3 creates, inserts and passes PRAGMA integrity_check', async (t) => {
  const db = join(m.mountpoint, 'sqlite', 'test.db');
  await sh(t, `mkdir -p ${join(m.mountpoint, 'sqlite')}`);
  const sql = `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 20000) INSERT INTO t(v) SELECT hex(randomblob(50)) FROM c; COMMIT;
CREATE INDEX tv ON t(v);
DELETE FROM t WHERE id % 3 = 0;
VACUUM;`;
  await sh(t, `sqlite3 ${db} "${sql}"`);
  const r = await sh(t, `sqlite3 ${db} "PRAGMA integrity_check; SELECT count(*) FROM t;"`);
  t.is(r.stdout, 'ok\n13334\n');
  const wal = await sh(t, `sqlite3 ${db} "PRAGMA journal_mode=WAL; INSERT INTO t(v) VALUES('x'); PRAGMA integrity_check;"`);
  t.is(wal.stdout, 'wal\nok\n');
});

maybe('xattrs: set, get, list, remove, and ENODATA for a missing one', async (t) => {
  const f = join(m.mountpoint, 'xattr-file');
  await sh(t, `echo data > ${f}`);
  if (hasTool('setfattr') && hasTool('getfattr')) {
    await sh(t, `setfattr -n user.color -v blue ${f} && setfattr -n user.big -v 0x${'ab'.repeat(3000)} ${f}`);
    const got = await sh(t, `getfattr --only-values -n user.color ${f}`);
    t.is(got.stdout, 'blue');
    const dump = await sh(t, `getfattr -d -m - ${f}`);
    t.regex(dump.stdout, /user\.color="blue"/);
    t.regex(dump.stdout, /user\.big=/);
    await sh(t, `setfattr -x user.color ${f}`);
    const missing = await sh(t, `getfattr -n user.color ${f} 2>&1`, { expect: 1 });
    t.regex(missing.stdout, /No such attribute/);
  }
  const r = await py(`
import os, errno
f = ${JSON.stringify(f)}
os.setxattr(f, 'user.k', b'v' * 100)
assert os.getxattr(f, 'user.k') == b'v' * 100
assert 'user.k' in os.listxattr(f)
try:
    os.setxattr(f, 'user.k', b'x', os.XATTR_CREATE); print('no EEXIST')
except OSError as e: print(errno.errorcode[e.errno])
os.removexattr(f, 'user.k')
try:
    os.getxattr(f, 'user.k'); print('no ENODATA')
except OSError as e: print(errno.errorcode[e.errno])
# nosuid mount: file capabilities never apply, so they are not kept (like a filesystem without them)
try:
    os.setxattr(f, 'security.capability', b'\\x01\\x00\\x00\\x02' + b'\\x00' * 16); print('capability kept')
except OSError as e: print(errno.errorcode[e.errno])
try:
    os.getxattr(f, 'security.capability'); print('capability read')
except OSError as e: print(errno.errorcode[e.errno])
`);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'EEXIST\nENODATA\nENOTSUP\nENODATA\n');
});

maybe('hard links share the inode and count nlink; symlinks read back', async (t) => {
  const d = join(m.mountpoint, 'links');
  await sh(t, `mkdir ${d} && cd ${d} && echo one > a && ln a b && ln -s a s && echo two >> b`);
  const r = await sh(t, `cd ${d} && stat -c '%h %i' a b && readlink s && cat s`);
  const [la, lb, target, ...content] = r.stdout.trim().split('\n');
  t.is(la, lb);
  t.true(la!.startsWith('2 '));
  t.is(target, 'a');
  t.deepEqual(content, ['one', 'two']);
  await sh(t, `cd ${d} && rm a && stat -c %h b | grep -qx 1 && cat b | wc -l | grep -qx 2`);
});

maybe('failures give the errno programs expect', async (t) => {
  const d = join(m.mountpoint, 'errno');
  await sh(t, `mkdir -p ${d}/full/sub ${d}/empty && echo x > ${d}/file`);
  const r = await py(`
import os, errno
d = ${JSON.stringify(d)}
def code(f):
    try:
        f(); return 'ok'
    except OSError as e: return errno.errorcode[e.errno]
print(code(lambda: os.mkdir(d + '/full')))
print(code(lambda: os.rmdir(d + '/full')))
print(code(lambda: os.rmdir(d + '/file')))
print(code(lambda: os.unlink(d + '/empty')))
print(code(lambda: open(d + '/nope')))
print(code(lambda: open(d + '/file/x', 'w')))
print(code(lambda: os.mkdir(d + '/' + 'n' * 256)))
print(code(lambda: os.rename(d + '/empty', d + '/full')))
print(code(lambda: os.rename(d + '/full', d + '/file')))
print(code(lambda: os.open(d + '/file', os.O_CREAT | os.O_EXCL | os.O_WRONLY)))
print(code(lambda: os.readlink(d + '/file')))
print(code(lambda: os.mkdir(d + '/' + 'n' * 255)))
`);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.stdout.trim().split('\n'), [
    'EEXIST',
    'ENOTEMPTY',
    'ENOTDIR',
    'EISDIR',
    'ENOENT',
    'ENOTDIR',
    'ENAMETOOLONG',
    'ENOTEMPTY',
    'ENOTDIR',
    'EEXIST',
    'EINVAL',
    'ok',
  ]);
});
