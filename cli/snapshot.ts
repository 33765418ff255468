// `fragfs snapshot STORE [--name N]`: freezes the live tree of a store space into one meta key,
// printed as the last line of standard output. With a read-write mount up, the mount process takes it
// (it owns the live state); otherwise this command takes the store lock and opens the live state itself.

import { leaseSealerOf } from '../src/remote/lease-sealer.js';
import { openLiveAtHead } from '../src/remote/remote-head.js';
import { RemoteLease } from '../src/remote/remote-lease.js';
import { isRemoteLocation, remoteBackendOf, storeLocation } from '../src/remote/store-site.js';
import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { controlRequest } from '../src/fuse/control.js';
import { recordForStore } from '../src/fuse/mount-registry.js';
import { DEFAULT_SPACE, Repo } from '../src/repo/repo.js';
import { claimingName } from '../src/repo/snapshot-claim.js';
import { checkSnapshotName, tagList } from '../src/repo/snapshot-name.js';
import { liveDir, StoreLock } from '../src/repo/store-lock.js';
import { LiveVfs } from '../src/vfs/live-vfs.js';
import { action, addStoreOptions, collect, openRepoForCli, printJson, type StoreOptions } from './common.js';

interface SnapshotOptions extends StoreOptions {
  name?: string;
  tag?: string[];
  replace?: boolean;
  json?: boolean;
}

export function registerSnapshot(program: Command): void {
  addStoreOptions(
    program
      .command('snapshot')
      .description('freeze the live tree of a store (mounted or not) and print its meta key')
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
      .option('--name <name>', 'a name to find the snapshot by later (refused when another snapshot has it)')
      .option('--replace', 'with --name: move the name from the snapshot that has it to this one')
      .option('--tag <tag>', 'tag the snapshot (repeatable, or tags separated by commas): `snapshots --tag` lists by it', collect, [])
      .option('--json', 'print {key, name, via, seconds} as JSON'),
  ).action(
    action(async (store: string, opts: SnapshotOptions) => {
      // Before anything is written, and before asking a mount process to write it.
      if (opts.name !== undefined) checkSnapshotName(opts.name);
      const tags = tagList(opts.tag);
      const storePath = storeLocation(store);
      const space = opts.space ?? DEFAULT_SPACE;
      // Before the lock, which would make STORE/live/ in a folder that holds no store.
      await Repo.checkExists(storePath, space);
      const startMs = Date.now();
      const { key, via } = (await takeSnapshot(storePath, space, opts.name, { opts, tags, claim: true, replace: opts.replace === true }))!;
      const seconds = (Date.now() - startMs) / 1000;
      if (opts.json) {
        printJson({ key, ...(opts.name === undefined ? {} : { name: opts.name }), ...(tags.length === 0 ? {} : { tags }), via, seconds });
        return;
      }
      process.stderr.write(`fragfs: snapshot of ${storePath} (${space}) taken in ${seconds.toFixed(2)} s${opts.name ? ` as ${opts.name}` : ''}\n`);
      process.stdout.write(`${key}\n`);
    }),
  );
}

/**
 * Takes a snapshot of the live tree of `space`: through the read-write mount when one is up (it owns
 * the live state), else by opening the live state under the store lock (and, for a remote store,
 * the write lease), with `o.repo` when the caller has it open read-write. With `unlessRoot`, none is
 * taken (undefined) when the tree's root is still that dir: `sync` carries a local store's live tree
 * as its head this way.
 */
export async function takeSnapshot(
  storePath: string,
  space: string,
  name: string | undefined,
  o: { opts: StoreOptions; repo?: Repo; unlessRoot?: string; tags?: string[]; claim?: boolean; replace?: boolean },
): Promise<{ key: string; via: string } | undefined> {
  let key: string | undefined;
  let via = 'mount';
  const rec = await recordForStore(storePath, space);
  if (rec) {
    const reply = await controlRequest(rec.socket, {
      op: 'snapshot',
      ...(name === undefined ? {} : { name }),
      ...(o.unlessRoot === undefined ? {} : { unlessRoot: o.unlessRoot }),
      ...(o.tags === undefined || o.tags.length === 0 ? {} : { tags: o.tags }),
      ...(o.claim ? { claim: true, replace: o.replace === true } : {}),
    });
    if (reply?.ok) {
      if (reply.key === undefined) return undefined;
      key = reply.key;
    }
    // The mount answered and failed (a full disk, a concurrent gc that collected what it
    // needed): its reason, not a LOCKED from trying to take its place. A read-only mount
    // cannot write a snapshot: then this process takes it, as without a mount.
    else if (reply && reply.code !== 'READ_ONLY') throw new FragfsError(reply.code, `the mount could not take the snapshot: ${reply.message}`);
  }
  if (key === undefined) {
    via = 'store';
    // No live mount: be the one writer of the live state for the time of the snapshot.
    const lock = await StoreLock.acquire({ storePath, space, purpose: 'snapshot' });
    try {
      const repo = o.repo ?? (await openRepoForCli(storePath, o.opts));
      repo.purpose = 'snapshot';
      let lease: RemoteLease | undefined;
      try {
        const statePath = liveDir(storePath, space);
        const open = () => LiveVfs.open({ repo, statePath, source: Buffer.from(storePath) });
        let vfs: LiveVfs;
        if (isRemoteLocation(storePath)) {
          // The live tree of a remote store is its head: taken under the write lease, so no
          // mount on another machine moves it meanwhile.
          lease = await RemoteLease.acquire({ objects: await remoteBackendOf(storePath), space, purpose: 'snapshot', sealer: leaseSealerOf(repo) });
          vfs = (await openLiveAtHead({ repo, statePath, open, log: (l) => process.stderr.write(`${l}\n`) })).vfs;
        } else {
          vfs = await open();
        }
        try {
          const tags = o.tags === undefined || o.tags.length === 0 ? undefined : o.tags;
          const made = await claimingName(
            repo,
            name,
            { ...(o.claim ? { claim: true } : {}), ...(o.replace ? { replace: true } : {}), onMoved: (old) => process.stderr.write(`fragfs: snapshot ${old.slice(0, 12)} is no longer named ${JSON.stringify(name)}\n`) },
            () => vfs.snapshotUnless(name, o.unlessRoot, tags),
          );
          if (!made) return undefined;
          key = made.key;
        } finally {
          await vfs.close();
        }
      } finally {
        if (!o.repo) await repo.close();
        await lease?.release();
      }
    } finally {
      await lock.release();
    }
  }
  return { key: key!, via };
}
