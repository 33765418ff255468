// restic as a backup peer: a local repository (default compression), `restic backup`, and read-back
// through `restic mount` (snapshots/latest/...), or `restic restore` when mounting fails here.

import { spawn } from 'node:child_process';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ownPid } from './cleanup.js';
import { adoptMount, allocatedBytes, apparentBytes, fuseUnmount, isMounted } from './fs-util.js';
import type { Availability, BackupInstance, BackupPeer, SnapshotView, StepContext, StoreFacts } from './peer.js';
import { isAlive, killGroup, run, sleep, which } from './proc.js';

export const resticPeer: BackupPeer = {
  name: 'restic',
  setup: 'restic backup into a local repository; read back through restic mount',
  async check(): Promise<Availability> {
    if (!(await which('restic'))) return { ok: false, reason: 'restic is not installed (--install-peers)' };
    const v = await run(['restic', 'version'], { allowFail: true });
    return { ok: true, version: v.stdout.trim().split('\n')[0] ?? 'restic' };
  },
  async create(ctx: StepContext): Promise<BackupInstance> {
    const repo = join(ctx.workDir, 'repo');
    const env = {
      ...process.env,
      RESTIC_REPOSITORY: repo,
      RESTIC_PASSWORD: 'bench-passphrase',
      RESTIC_CACHE_DIR: join(ctx.workDir, 'cache'),
    };
    await run(['restic', 'init', '-q'], { env, signal: ctx.signal });
    const mp = join(ctx.workDir, 'snap');
    let server: number | undefined;
    const close = async (): Promise<void> => {
      if (server === undefined) return;
      const pid = server;
      server = undefined;
      await fuseUnmount(mp, pid, 20_000);
      if (isAlive(pid)) killGroup(pid);
    };
    return {
      async backup(parent, name) {
        await run(['restic', 'backup', '-q', '--host', 'bench', name], { env, cwd: parent, signal: ctx.signal, rss: ctx.rss });
      },
      storeBytes: () => allocatedBytes(repo),
      async storeFacts(): Promise<StoreFacts> {
        const files = (await readdir(repo, { recursive: true, withFileTypes: true })).filter((d) => d.isFile()).length;
        return { objects: files, objectsAre: 'files in the repository (packs, indexes, snapshots, keys, config)', apparentBytes: await apparentBytes(repo) };
      },
      async openLatest(name): Promise<SnapshotView> {
        await mkdir(mp, { recursive: true });
        const child = spawn('restic', ['mount', mp], { env, detached: true, stdio: 'ignore' });
        if (child.pid === undefined) throw new Error('restic mount did not start');
        server = child.pid;
        ownPid(server);
        const root = join(mp, 'snapshots', 'latest', name);
        const until = Date.now() + 30_000;
        for (;;) {
          if (ctx.signal.aborted) throw new Error('aborted');
          try {
            if (isMounted(mp) && (await stat(root)).isDirectory()) break;
          } catch {
            /* not yet */
          }
          if (!isAlive(server) || Date.now() > until) {
            await close();
            return restore(name);
          }
          await sleep(50);
        }
        adoptMount(mp);
        const pid = server;
        return { root, how: 'restic mount', pid: () => pid, close };
      },
      dispose: close,
    };

    /** Fallback when restic mount cannot run: restore into the work folder (its time is counted by the caller). */
    async function restore(name: string): Promise<SnapshotView> {
      const target = join(ctx.workDir, 'restore');
      await run(['restic', 'restore', 'latest', '--target', target], { env, signal: ctx.signal, rss: ctx.rss });
      return { root: join(target, name), how: 'restic restore (mount failed)', pid: () => undefined, close: async () => {} };
    }
  },
};
