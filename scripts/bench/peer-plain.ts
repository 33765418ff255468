// The limit: a plain folder on the same disk, read and written directly with no FUSE layer in between.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { dropCaches } from './fs-util.js';
import type { Availability, MountInstance, MountPeer, StepContext } from './peer.js';

export const plainPeer: MountPeer = {
  name: 'plain',
  setup: 'a folder on the same disk, no FUSE (the limit)',
  async check(): Promise<Availability> {
    return { ok: true, version: 'kernel ' + (await import('node:os')).release() };
  },
  async create(ctx: StepContext): Promise<MountInstance> {
    const root = join(ctx.workDir, 'plain');
    await mkdir(root);
    return {
      root,
      pid: () => undefined,
      async remount() {
        if (ctx.dropCaches) dropCaches();
      },
      async dispose() {},
    };
  },
};
