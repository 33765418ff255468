// borg as a backup peer: a local repokey repository (default lz4), `borg create`, and read-back through
// `borg mount REPO::ARCHIVE`, or `borg extract` when mounting fails here.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { adoptMount, allocatedBytes, fuseUnmount, isMounted, waitMounted } from './fs-util.js';
import type { Availability, BackupInstance, BackupPeer, SnapshotView, StepContext } from './peer.js';
import { run, which } from './proc.js';

export const borgPeer: BackupPeer = {
  name: 'borg',
  setup: 'borg create into a local repokey repository; read back through borg mount',
  async check(): Promise<Availability> {
    if (!(await which('borg'))) return { ok: false, reason: 'borg is not installed (--install-peers)' };
    const v = await run(['borg', '--version'], { allowFail: true });
    return { ok: true, version: v.stdout.trim() || 'borg' };
  },
  async create(ctx: StepContext): Promise<BackupInstance> {
    const repo = join(ctx.workDir, 'repo');
    const env = {
      ...process.env,
      BORG_PASSPHRASE: 'bench-passphrase',
      BORG_BASE_DIR: join(ctx.workDir, 'borg-base'),
      BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
    };
    await run(['borg', 'init', '-e', 'repokey', repo], { env, signal: ctx.signal });
    const mp = join(ctx.workDir, 'snap');
    let archives = 0;
    let server: number | undefined;
    let mounted = false;
    const close = async (): Promise<void> => {
      if (!mounted) return;
      mounted = false;
      await fuseUnmount(mp, server, 20_000);
    };
    return {
      async backup(parent, name) {
        archives++;
        await run(['borg', 'create', `${repo}::s${archives}`, name], { env, cwd: parent, signal: ctx.signal, rss: ctx.rss });
      },
      storeBytes: () => allocatedBytes(repo),
      async openLatest(name): Promise<SnapshotView> {
        await mkdir(mp, { recursive: true });
        try {
          await run(['borg', 'mount', `${repo}::s${archives}`, mp], { env, signal: ctx.signal });
          await waitMounted(mp, 30_000);
        } catch (e) {
          if (isMounted(mp)) await fuseUnmount(mp, undefined);
          const target = join(ctx.workDir, 'extract');
          await mkdir(target);
          await run(['borg', 'extract', `${repo}::s${archives}`], { env, cwd: target, signal: ctx.signal, rss: ctx.rss });
          return { root: join(target, name), how: `borg extract (mount failed: ${(e as Error).message.slice(0, 80)})`, pid: () => undefined, close: async () => {} };
        }
        mounted = true;
        server = adoptMount(mp);
        const pid = server;
        return { root: join(mp, name), how: 'borg mount', pid: () => pid, close };
      },
      dispose: close,
    };
  },
};
