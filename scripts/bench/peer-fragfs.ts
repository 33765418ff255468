// fragfs as a peer: a read-write mount (workloads a-d) and, through `fragfs put` and a snapshot mount, a
// backup tool (e, f). Every store is new per step, so nothing is deduplicated across steps. The same peers
// can drive another build's CLI (`--baseline`), so a change is measured against the commit before it.

import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FRAGFS_MAIN, fragfs as fragfsOf, fragfsPresent, fragfsSettings, metaKey } from './fragfs-cli.js';
import { q, run, type CmdOptions, type CmdResult } from './proc.js';
import { adoptMount, allocatedBytes, apparentBytes, dropCaches, fuseUnmount, isMounted, waitMounted } from './fs-util.js';
import type { Availability, BackupInstance, BackupPeer, MountInstance, MountPeer, SnapshotView, StepContext, StoreFacts } from './peer.js';

type Cli = (args: string[], o?: CmdOptions) => Promise<CmdResult>;

async function initStore(fragfs: Cli, ctx: StepContext): Promise<string> {
  const store = join(ctx.workDir, 'store');
  await fragfs(['init', store, '--backend', fragfsSettings.backend], { signal: ctx.signal });
  return store;
}

/**
 * On lmdb, fragments and refs from `fragfs stats` (each would be an object on an object-store
 * backend); on dir and split, the files the store folder holds (packs, their indexes, single
 * fragments, refs, config; the live state's files left out), as restic's are counted.
 */
async function storeFacts(fragfs: Cli, ctx: StepContext, store: string): Promise<StoreFacts> {
  if (fragfsSettings.backend !== 'lmdb') {
    const r = await run([`find ${q(store)} -path ${q(`${store}/live`)} -prune -o -type f -print | wc -l`], { shell: true, signal: ctx.signal });
    return { objects: Number(r.stdout.trim()), objectsAre: 'files in the store folder', apparentBytes: await apparentBytes(store) };
  }
  const r = await fragfs(['stats', store, '--json'], { signal: ctx.signal });
  const s = JSON.parse(r.stdout) as { dataFragments: number; metaFragments: number; refs: number };
  return { objects: s.dataFragments + s.metaFragments + s.refs, objectsAre: 'fragments (data and meta) and refs', apparentBytes: await apparentBytes(store) };
}

/** A background fragfs mount of store at mountpoint; the server pid from /proc (or what the CLI printed). */
class FragfsMount {
  private pidNow: number | undefined;
  private mounted = false;
  constructor(
    private readonly fragfs: Cli,
    private readonly ctx: StepContext,
    private readonly store: string,
    readonly root: string,
    private readonly extra: string[],
  ) {}

  pid(): number | undefined {
    return this.pidNow;
  }

  async mount(): Promise<void> {
    const r = await this.fragfs(['mount', this.store, this.root, '--background', ...this.extra], { signal: this.ctx.signal });
    await waitMounted(this.root, 30_000);
    this.mounted = true;
    this.pidNow = adoptMount(this.root);
    if (this.pidNow === undefined) {
      const m = /pid\D{0,3}(\d+)/i.exec(r.stdout + r.stderr);
      if (m) this.pidNow = Number(m[1]);
    }
  }

  async unmount(): Promise<void> {
    if (!this.mounted) return;
    this.mounted = false;
    // fragfs umount flushes first; fusermount is the fallback so a failing umount cannot leave a mount behind.
    await this.fragfs(['umount', this.root], { allowFail: true });
    await fuseUnmount(this.root, this.pidNow);
  }
}

/** The mount and backup peers of the build whose CLI is `main`, reported under `name`. */
export function fragfsPeers(name: string, main: string): { mount: MountPeer; backup: BackupPeer } {
  const fragfs: Cli = (args, o) => fragfsOf(args, o, main);
  const mount: MountPeer = {
    name,
    get setup() {
      return `fragfs mount --background, ${fragfsSettings.backend} backend, default options`;
    },
    async check(): Promise<Availability> {
      const missing = await fragfsPresent(main);
      if (missing) return { ok: false, reason: missing };
      // No trial mount: a store's KDF makes it cost seconds, and a failing mount shows in every step anyway.
      const r = await fragfs(['mount', '--help'], { allowFail: true });
      if (r.code !== 0) return { ok: false, reason: `fragfs has no mount command yet (${(r.stderr.trim().split('\n')[0] ?? '').slice(0, 100)})` };
      return { ok: true, version: `fragfs (${main})` };
    },
    async create(ctx: StepContext): Promise<MountInstance> {
      const store = await initStore(fragfs, ctx);
      const root = join(ctx.workDir, 'mnt');
      await mkdir(root);
      const m = new FragfsMount(fragfs, ctx, store, root, []);
      await m.mount();
      return {
        root,
        pid: () => m.pid(),
        async snapshot() {
          // Through the mount's control socket: the mount itself takes it, as a user's `fragfs snapshot` would.
          return metaKey((await fragfs(['snapshot', store], { signal: ctx.signal })).stdout, 'snapshot');
        },
        async remount() {
          await m.unmount();
          if (ctx.dropCaches) dropCaches();
          await m.mount();
        },
        dispose: () => m.unmount(),
      };
    },
  };

  const backup: BackupPeer = {
    name,
    setup: 'fragfs put (new store), read back through mount --snapshot KEY',
    async check(): Promise<Availability> {
      const missing = await fragfsPresent(main);
      if (missing) return { ok: false, reason: missing };
      const r = await fragfs(['--help'], { allowFail: true });
      if (!/put/.test(r.stdout + r.stderr)) return { ok: false, reason: 'fragfs has no put command yet' };
      return { ok: true, version: `fragfs (${main})` };
    },
    async create(ctx: StepContext): Promise<BackupInstance> {
      const store = await initStore(fragfs, ctx);
      let lastKey: string | undefined;
      let snap: FragfsMount | undefined;
      return {
        async backup(parent, name) {
          const r = await fragfs(['put', store, name], { cwd: parent, signal: ctx.signal, rss: ctx.rss });
          lastKey = metaKey(r.stdout, 'put');
        },
        storeBytes: () => allocatedBytes(store),
        storeFacts: () => storeFacts(fragfs, ctx, store),
        async openLatest(name): Promise<SnapshotView> {
          if (!lastKey) throw new Error('no snapshot yet');
          const mp = join(ctx.workDir, 'snap');
          await mkdir(mp, { recursive: true });
          const m = new FragfsMount(fragfs, ctx, store, mp, ['--snapshot', lastKey]);
          snap = m;
          await m.mount();
          // put of a folder may make the folder the root or put it inside the root
          let root = mp;
          try {
            if ((await stat(join(mp, name))).isDirectory()) root = join(mp, name);
          } catch {
            /* the folder is the root */
          }
          return { root, how: 'mount --snapshot', pid: () => m.pid(), close: () => m.unmount() };
        },
        async dispose() {
          await snap?.unmount();
          const mp = join(ctx.workDir, 'snap');
          if (isMounted(mp)) await fuseUnmount(mp, undefined);
        },
      };
    },
  };
  return { mount, backup };
}

const own = fragfsPeers('fragfs', FRAGFS_MAIN);
export const fragfsMountPeer: MountPeer = own.mount;
export const fragfsBackupPeer: BackupPeer = own.backup;
