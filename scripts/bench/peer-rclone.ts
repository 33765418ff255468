// rclone mount over a local folder (`:local:` remote, no config file) with --vfs-cache-mode writes.
// --vfs-write-back 0s starts each upload at close; without it an unmount right after a write drops the
// pending upload (seen here with rclone 1.60), which would make rclone look faster by losing data.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { adoptMount, dropCaches, fuseUnmount, waitMounted } from './fs-util.js';
import type { Availability, MountInstance, MountPeer, StepContext } from './peer.js';
import { run, which } from './proc.js';
import { trialMount } from './trial.js';

export const rclonePeer: MountPeer = {
  name: 'rclone',
  setup: 'rclone mount :local:DIR --vfs-cache-mode writes --vfs-write-back 0s (cache on the same disk)',
  async check(): Promise<Availability> {
    if (!(await which('rclone'))) return { ok: false, reason: 'rclone is not installed (--install-peers)' };
    if (!(await which('fusermount')) && !(await which('fusermount3')))
      return { ok: false, reason: 'neither fusermount nor fusermount3 is installed' };
    const v = await run(['rclone', 'version'], { allowFail: true });
    return trialMount(this, v.stdout.trim().split('\n')[0] ?? 'rclone');
  },
  async create(ctx: StepContext): Promise<MountInstance> {
    const remote = join(ctx.workDir, 'remote');
    const root = join(ctx.workDir, 'mnt');
    const cache = join(ctx.workDir, 'cache');
    await mkdir(remote);
    await mkdir(root);
    let pid: number | undefined;
    let mounted = false;
    const mount = async (): Promise<void> => {
      await run(
        ['rclone', 'mount', `:local:${remote}`, root, '--vfs-cache-mode', 'writes', '--vfs-write-back', '0s',
          '--cache-dir', cache, '--daemon', '-q'],
        { signal: ctx.signal, env: { ...process.env, RCLONE_CONFIG: '/dev/null' } },
      );
      await waitMounted(root, 15_000);
      mounted = true;
      pid = adoptMount(root);
    };
    const unmount = async (): Promise<void> => {
      if (!mounted) return;
      mounted = false;
      await fuseUnmount(root, pid);
    };
    await mount();
    return {
      root,
      pid: () => pid,
      async remount() {
        await unmount();
        if (ctx.dropCaches) dropCaches();
        await mount();
      },
      dispose: unmount,
    };
  },
};
