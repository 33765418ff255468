// `-o` lists as mount(8) and fstab give them: fragfs's options mapped onto `fragfs mount`'s, the
// usual mount options accepted and left alone, later options winning, anything else refused.

import test from 'ava';
import { parseMountOptions } from '../../cli/mount-options.js';

test('fragfs options map onto the mount command; mount(8) and systemd options pass', (t) => {
  t.deepEqual(parseMountOptions(['ro,allow_other,passphrase_file=/etc/v.pass,space=work', 'snapshot=monday,cache_size=256M,_netdev,nofail,x-systemd.automount,noauto,nosuid,nodev,defaults']), {
    readOnly: true,
    allowOther: true,
    passphraseFile: '/etc/v.pass',
    space: 'work',
    snapshot: 'monday',
    cacheSize: '256M',
  });
  t.deepEqual(parseMountOptions(['ro,rw']), {}, 'rw after ro: read-write');
  t.deepEqual(parseMountOptions(['all,meta_cache_size=64M,commit_interval=10,cache_dir=/var/cache/f,cache_max=2G']), {
    all: true,
    metaCacheSize: '64M',
    commitInterval: '10',
    cacheDir: '/var/cache/f',
    cacheMax: '2G',
  });
});

test('an unknown option, a value where none is taken or none where one is needed, is refused', (t) => {
  for (const bad of ['bogus', 'ro=1', 'passphrase_file', 'passphrase_file=', 'allow_other=yes']) {
    t.throws(() => parseMountOptions([bad]), { code: 'USAGE', message: new RegExp(`^-o ${bad.replace(/[=]/g, '=')}: not a fragfs mount option`) }, bad);
  }
});
