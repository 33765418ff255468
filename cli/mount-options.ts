// `-o` options of `fragfs mount` and of the mount helper (mount.fragfs, run by mount(8) and fstab):
// comma-separated, as mount(8) passes them, mapped onto the command's own options. Options that
// mount(8), systemd or the kernel handle (noauto, _netdev, x-systemd.*, nosuid...) are accepted and
// left alone; anything else unknown is refused, so a typo in fstab is said, not ignored.

import { FragfsError } from '../src/errors.js';

/** The `fragfs mount` options an `-o` list can set (MountCliOptions' names). */
export interface MountOptionValues {
  readOnly?: boolean;
  allowOther?: boolean;
  passphraseFile?: string;
  space?: string;
  snapshot?: string;
  all?: boolean;
  cacheSize?: string;
  metaCacheSize?: string;
  cacheDir?: string;
  cacheMax?: string;
  commitInterval?: string;
}

/** name -> the option it sets; `true` for flags, a string key for `name=value`. */
const FLAGS: Record<string, keyof MountOptionValues> = { ro: 'readOnly', allow_other: 'allowOther', all: 'all' };
const VALUES: Record<string, keyof MountOptionValues> = {
  passphrase_file: 'passphraseFile',
  space: 'space',
  snapshot: 'snapshot',
  cache_size: 'cacheSize',
  meta_cache_size: 'metaCacheSize',
  cache_dir: 'cacheDir',
  cache_max: 'cacheMax',
  commit_interval: 'commitInterval',
};
/** Handled by mount(8), systemd, the kernel or FUSE itself (fragfs mounts are always nosuid,nodev). */
const PASSED_OVER = new Set([
  'rw', 'defaults', 'auto', 'noauto', 'user', 'nouser', 'users', 'owner', 'group', '_netdev', 'nofail',
  'suid', 'nosuid', 'dev', 'nodev', 'exec', 'noexec', 'atime', 'noatime', 'relatime', 'norelatime',
  'strictatime', 'diratime', 'nodiratime', 'lazytime', 'nolazytime', 'async', 'silent', 'loud',
  'default_permissions',
]);

/** Parses `-o` lists (several may be given); later options win, as in mount(8). */
export function parseMountOptions(lists: readonly string[]): MountOptionValues {
  const out: MountOptionValues = {};
  for (const list of lists) {
    for (const item of list.split(',')) {
      if (item.length === 0) continue;
      const eq = item.indexOf('=');
      const name = eq < 0 ? item : item.slice(0, eq);
      const value = eq < 0 ? undefined : item.slice(eq + 1);
      if (PASSED_OVER.has(name) || name.startsWith('x-') || name === 'comment') {
        if (name === 'rw') delete out.readOnly;
        continue;
      }
      const flag = FLAGS[name];
      if (flag !== undefined && value === undefined) {
        (out as Record<string, unknown>)[flag] = true;
        continue;
      }
      const key = VALUES[name];
      if (key !== undefined && value !== undefined && value.length > 0) {
        (out as Record<string, unknown>)[key] = value;
        continue;
      }
      const known = [...Object.keys(FLAGS), ...Object.keys(VALUES).map((k) => `${k}=...`)].join(', ');
      throw new FragfsError('USAGE', `-o ${item}: not a fragfs mount option (fragfs takes ${known}, and the usual mount options)`);
    }
  }
  return out;
}
