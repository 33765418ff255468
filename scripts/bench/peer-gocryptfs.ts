// gocryptfs: an encrypted FUSE overlay on a folder of the same disk (default options, scrypt passfile).

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { adoptMount, dropCaches, fuseUnmount, waitMounted } from './fs-util.js';
import type { Availability, MountInstance, MountPeer, StepContext } from './peer.js';
import { run, which } from './proc.js';
import { trialMount } from './trial.js';

export const gocryptfsPeer: MountPeer = {
  name: 'gocryptfs',
  setup: 'gocryptfs (default options) over a folder on the same disk',
  async check(): Promise<Availability> {
    if (!(await which('gocryptfs'))) return { ok: false, reason: 'gocryptfs is not installed (--install-peers)' };
    const v = await run(['gocryptfs', '-version'], { allowFail: true });
    return trialMount(this, v.stdout.trim().split('\n')[0] ?? 'gocryptfs');
  },
  async create(ctx: StepContext): Promise<MountInstance> {
    const cipher = join(ctx.workDir, 'cipher');
    const root = join(ctx.workDir, 'mnt');
    const pass = join(ctx.workDir, 'passfile');
    await mkdir(cipher);
    await mkdir(root);
    await writeFile(pass, 'bench-passphrase\n');
    await run(['gocryptfs', '-init', '-q', '-passfile', pass, cipher], { signal: ctx.signal });
    let pid: number | undefined;
    let mounted = false;
    const mount = async (): Promise<void> => {
      await run(['gocryptfs', '-q', '-passfile', pass, cipher, root], { signal: ctx.signal });
      await waitMounted(root, 10_000);
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
