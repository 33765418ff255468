// `fragfs mount STORE MOUNTPOINT`: serves the live tree (or one snapshot) of a store on a folder until
// Ctrl-C, SIGTERM, `fragfs umount` or an outside unmount; always flushes and unmounts on the way out.
// `--background` re-runs this command detached and returns once the mount is ready or has failed;
// the passphrase (or the identities) travel to the child over the IPC pipe, never on its command line
// or environment.

import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { resolve } from 'node:path';
import type { Server } from 'node:net';
import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { startControlServer } from '../src/fuse/control.js';
import { fusermountUnmount } from '../src/fuse/fusermount.js';
import { mountVfs, type MountHandle, type UnmountOptions } from '../src/fuse/mount.js';
import {
  ensureRuntimeDir,
  logPathFor,
  type MountRecord,
  recordForMountpoint,
  removeRecords,
  socketPathFor,
  writeRecords,
} from '../src/fuse/mount-registry.js';
import { leaseSealerOf } from '../src/remote/lease-sealer.js';
import { DEFAULT_COMMIT_INTERVAL_S, HeadPublisher, openLiveAtHead } from '../src/remote/remote-head.js';
import { RemoteLease } from '../src/remote/remote-lease.js';
import { isRemoteLocation, remoteBackendOf, storeLocation } from '../src/remote/store-site.js';
import { DEFAULT_SPACE, Repo } from '../src/repo/repo.js';
import { claimingName } from '../src/repo/snapshot-claim.js';
import { tagList } from '../src/repo/snapshot-name.js';
import { liveDir, StoreLock } from '../src/repo/store-lock.js';
import { processAccessor } from '../src/vfs/permissions.js';
import { LiveVfs } from '../src/vfs/live-vfs.js';
import { AllSnapshotsVfs } from '../src/vfs/all-snapshots-vfs.js';
import { SnapshotVfs } from '../src/vfs/snapshot-vfs.js';
import { linkWithoutKey, parseShareLink } from '../src/people/share-link.js';
import { openShareLink } from '../src/people/shares.js';
import { resolveEntry, showTreePath, splitKeyPath } from '../src/repo/tree-reader.js';
import { argBytes } from './argv-bytes.js';
import { identitiesOf, isShareLink } from './share-open.js';
import { DEFAULT_WRITE_BUFFER_BYTES } from '../src/vfs/write-buffer.js';
import { DEFAULT_CACHE_BYTES } from '../src/vfs/block-cache.js';
import { DEFAULT_META_CACHE_BYTES } from '../src/vfs/live-state.js';
import { softMemoryLimit } from '../src/fuse/memory-pacer.js';
import type { Vfs } from '../src/vfs/vfs-api.js';
import type { Credentials } from '../src/repo/repo.js';
import { action, addStoreOptions, collect, parseByteSize, readCredentials, reportAndExit, type StoreOptions } from './common.js';
import { parseMountOptions } from './mount-options.js';

/** `o` without its undefined fields. */
function definedOnly(o: MountCliOptions): MountCliOptions {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as MountCliOptions;
}

interface MountCliOptions extends StoreOptions {
  readOnly?: boolean;
  snapshot?: string;
  all?: boolean;
  cacheSize?: string;
  metaCacheSize?: string;
  allowOther?: boolean;
  background?: boolean;
  opStats?: boolean;
  commitInterval?: string;
  options?: string[];
}

/** Set in the environment of the detached child of `mount --background`. */
const CHILD_ENV = 'FRAGFS_MOUNT_CHILD';
/** Set in the environment of a foreground mount re-run with MOUNT_NODE_FLAGS. */
const RERUN_ENV = 'FRAGFS_MOUNT_RERUN';

/**
 * V8 flags the mount process runs with. Its live heap is small (about 9 MB) while the FUSE traffic
 * moves hundreds of MB/s through buffers that outlive a scavenge or two; V8 then sets the old
 * generation's limit barely above the live size and runs a full mark-compact every 25 ms or so
 * (150-200 per GiB written, 15-25 % of the JS thread). A 64 MB starting limit cuts that to about 20.
 * Measured writing 1 GiB through a mount (dd bs=1M, 2-core VM): 222 MiB/s and 177 mark-compacts
 * without, 292 MiB/s and 24 with 64 MB, 294 MiB/s and 19 with 128 MB; 32 MB was not enough. These
 * flags cannot be set once the process runs, so the mount process is started with them.
 * The young generation grows to 2 x 16 MiB semi-spaces under a walk and V8 never shrinks it while the
 * process lives (28.8 of 32 MiB resident with 0.5 MiB in use, minutes after a walk of 100,000 files);
 * 4 MiB semi-spaces (V8 flags apply to the codec threads too) cut the mount's own memory after an
 * untar of 100,000 files from 199-250 to 166-171 MiB at the same speed (untar, 1 GiB written and read).
 */
export const MOUNT_NODE_FLAGS = ['--initial-old-space-size=64', '--max-semi-space-size=4', '--expose-gc'];

/**
 * glibc malloc settings the mount process runs with, unless the environment already sets them (glibc
 * reads them once, at process start). The write path runs 1 MiB buffers through several threads
 * (the JS thread, the codec threads, LMDB's writer; libuv has 16 more), and with an arena per
 * thread the next buffer was fresh memory far more often: writing 1 GiB through a mount (dd bs=1M
 * conv=fsync, 2-core VM, 2026-12-01) took about 800,000 minor page faults, three per page written,
 * and 45 % of the process's CPU time in the kernel. Two arenas: 550,000-600,000 faults, 102-108
 * against 78-88 MB/s, the mount's own memory no higher (163-179 against 156-202 MiB RssAnon);
 * random 4 KiB writes about 6 % slower. Larger trim and mmap thresholds did less; four arenas nothing.
 */
export const MOUNT_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/** `env` with MOUNT_MALLOC_ENV's settings where it has none of its own. */
function withMountMalloc(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const [k, v] of Object.entries(MOUNT_MALLOC_ENV)) out[k] ??= v;
  return out;
}

function missingMountMalloc(): boolean {
  return Object.keys(MOUNT_MALLOC_ENV).some((k) => process.env[k] === undefined);
}

function missingNodeFlags(): string[] {
  const has = (flag: string) => process.execArgv.some((a) => a.split('=')[0] === flag.split('=')[0]);
  return MOUNT_NODE_FLAGS.filter((f) => !has(f));
}
const READY_TIMEOUT_MS = 120_000;

type ChildMessage = { type: 'ready'; mountpoint: string } | { type: 'error'; message: string; exitCode: number };

export function registerMount(program: Command): void {
  addStoreOptions(
    program
      .command('mount')
      .description('mount a store as a read-write folder (or a snapshot of it read-only)')
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:); or a share link (fragfs:share:...[/path]), mounted read-only')
      .argument('<mountpoint>', 'an empty folder to mount on')
      .option('--read-only', 'mount the live tree read-only (EROFS on every change)')
      .option('--snapshot <key>', 'mount this snapshot (meta key or name), always read-only')
      .option('--all', 'mount every snapshot, read-only: by-time/<time>/, by-name/<name> and latest')
      .option('--cache-size <size>', 'memory for decrypted blocks (default 16M; the write buffer gets a quarter, at least 8M), e.g. 256M, 1G')
      .option('--meta-cache-size <size>', 'memory for decoded metadata: inodes, entries and keys of the live tree, folders of a snapshot (default 16M)')
      .option('--allow-other', 'let other users use the mount (root, or user_allow_other in /etc/fuse.conf)')
      .option('--background', 'return once the mount is ready; the mount process keeps running detached')
      .option('--commit-interval <seconds>', `remote stores: publish the live tree as the head snapshot at most this often while it changes (default ${DEFAULT_COMMIT_INTERVAL_S}; 0: at unmount only)`)
      .option('--op-stats', 'at unmount, print how many requests of each kind the kernel sent and their mean latency')
      .option('-o, --options <list>', 'mount(8)-style options: ro, allow_other, passphrase_file=FILE, space=, snapshot=, all, cache_size=, meta_cache_size=, commit_interval=, cache_dir=, cache_max= (the usual mount options are accepted and left to mount)', collect, []),
  ).action(
    action(async (store: string, mountpoint: string, given: MountCliOptions, cmd: Command) => {
      // An option given as itself wins over the same one in -o (the default space does not).
      const explicit = definedOnly(given);
      if (cmd.getOptionValueSource('space') === 'default') delete explicit.space;
      const opts: MountCliOptions = { space: DEFAULT_SPACE, ...parseMountOptions(given.options ?? []), ...explicit };
      // As addStoreOptions' hook does for --cache-dir and --cache-max (read where a store's folder is needed).
      if (opts.cacheDir !== undefined) process.env['FRAGFS_CACHE_DIR'] = opts.cacheDir;
      if (opts.cacheMax !== undefined) process.env['FRAGFS_CACHE_MAX'] = String(opts.cacheMax === '0' ? 0 : parseByteSize(opts.cacheMax, 'cache_max'));
      if (opts.background && process.env[CHILD_ENV] !== '1') return runInBackground(store, mountpoint, opts);
      const flags = missingNodeFlags();
      if (!opts.background && (flags.length > 0 || missingMountMalloc()) && process.env[RERUN_ENV] !== '1') return rerunWithFlags(flags);
      await runMount(store, mountpoint, opts);
    }),
  );
}

/** Parent side of --background: start the child, hand it the credentials, wait for its verdict. */
async function runInBackground(store: string, mountpoint: string, opts: MountCliOptions): Promise<void> {
  const mp = resolve(mountpoint);
  // A path without a store is said before a passphrase is asked for.
  if (!isShareLink(store)) await Repo.checkExists(store, opts.space ?? DEFAULT_SPACE);
  // A share link opens with identities alone (none: a link that is its own capability).
  const credentials: Credentials = isShareLink(store) ? { identities: await identitiesOf(opts) } : await readCredentials(opts);
  await ensureRuntimeDir();
  const logFile = logPathFor(mp);
  const logFd = openSync(logFile, 'a', 0o600);
  const env: NodeJS.ProcessEnv = withMountMalloc({ ...process.env, [CHILD_ENV]: '1', FRAGFS_MOUNT_LOG: logFile });
  delete env['FRAGFS_PASSPHRASE'];
  // A link share's key goes over the IPC pipe with the credentials, not on the child's command line
  // (which every local user can read in /proc for as long as the mount runs).
  const args = process.argv.slice(2).map((a) => (a === store && isShareLink(store) ? linkWithoutKey(store) : a));
  const child = spawn(process.execPath, [...process.execArgv, ...missingNodeFlags(), process.argv[1]!, ...args], {
    detached: true,
    stdio: ['ignore', 'ignore', logFd, 'ipc'],
    env,
  });
  closeSync(logFd);
  const verdict = await new Promise<ChildMessage>((resolveVerdict) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      resolveVerdict({ type: 'error', message: `the mount process did not get ready within ${READY_TIMEOUT_MS / 1000} s (see ${logFile})`, exitCode: 8 });
    }, READY_TIMEOUT_MS);
    child.on('message', (m: ChildMessage) => {
      clearTimeout(timer);
      resolveVerdict(m);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolveVerdict({
        type: 'error',
        message: `the mount process ended before the mount was ready (${signal ?? `exit code ${code}`}; see ${logFile})`,
        exitCode: typeof code === 'number' && code !== 0 ? code : 8,
      });
    });
    child.send({ type: 'credentials', credentials, ...(isShareLink(store) ? { shareLink: store } : {}) });
  });
  if (verdict.type === 'error') {
    process.stderr.write(`fragfs: ${verdict.message}\n`);
    process.exit(verdict.exitCode);
  }
  child.disconnect();
  child.unref();
  process.stdout.write(`${verdict.mountpoint}\n`);
  process.exit(0);
}

/**
 * A foreground mount started without MOUNT_NODE_FLAGS or MOUNT_MALLOC_ENV runs the same command
 * again with them and waits for it; the terminal and the exit code are the child's. Ctrl-C reaches
 * both (one process group), so this process ignores SIGINT; SIGTERM and SIGHUP sent to it are
 * passed on.
 */
async function rerunWithFlags(flags: string[]): Promise<void> {
  const child = spawn(process.execPath, [...process.execArgv, ...flags, process.argv[1]!, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: withMountMalloc({ ...process.env, [RERUN_ENV]: '1' }),
  });
  process.on('SIGINT', () => undefined);
  for (const sig of ['SIGTERM', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
  const code = await new Promise<number>((resolveExit) => {
    child.on('error', (e) => {
      process.stderr.write(`fragfs: cannot start the mount process: ${e.message}\n`);
      resolveExit(8);
    });
    child.on('exit', (c, signal) => resolveExit(c ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : 1)));
  });
  process.exit(code);
}

function credentialsFromParent(): Promise<Credentials & { shareLink?: string }> {
  return new Promise((resolvePass, reject) => {
    const onMessage = (m: { type?: string; credentials?: Credentials; shareLink?: unknown }) => {
      if (m.type === 'credentials' && typeof m.credentials === 'object' && m.credentials !== null) {
        process.off('message', onMessage);
        const c = m.credentials;
        resolvePass({
          ...(typeof c.passphrase === 'string' ? { passphrase: c.passphrase } : {}),
          ...(Array.isArray(c.identities) ? { identities: c.identities.filter((i): i is string => typeof i === 'string') } : {}),
          ...(typeof m.shareLink === 'string' ? { shareLink: m.shareLink } : {}),
        });
      }
    };
    process.on('message', onMessage);
    process.once('disconnect', () => reject(new FragfsError('NO_PASSPHRASE', 'the parent process left before sending the passphrase')));
  });
}

function tellParent(m: ChildMessage): void {
  if (process.send && process.connected) process.send(m);
}

/** The mount process: mount, serve until told to stop, then take everything down in order. */
async function runMount(store: string, mountpoint: string, opts: MountCliOptions): Promise<void> {
  const isChild = process.env[CHILD_ENV] === '1' && typeof process.send === 'function';
  const log = (line: string) => process.stderr.write(`${line}\n`);
  // A share link mounts the one folder it opens, read-only, with no passphrase.
  const shared = isShareLink(store) ? splitKeyPath(argBytes(store)) : undefined;
  const link = shared ? parseShareLink(shared.key) : undefined;
  const storePath = link ? link.location : storeLocation(store);
  const mp = resolve(mountpoint);
  const space = link ? link.space : (opts.space ?? DEFAULT_SPACE);
  if (opts.all && (opts.snapshot !== undefined || shared !== undefined)) throw new FragfsError('USAGE', '--all mounts every snapshot of a store: give it alone, not with --snapshot or a share link');
  const readOnly = opts.readOnly === true || opts.snapshot !== undefined || shared !== undefined || opts.all === true;
  const cacheBytes = opts.cacheSize === undefined ? undefined : parseByteSize(opts.cacheSize, '--cache-size');
  const metaCacheBytes = opts.metaCacheSize === undefined ? undefined : parseByteSize(opts.metaCacheSize, '--meta-cache-size');
  const commitS = opts.commitInterval === undefined ? DEFAULT_COMMIT_INTERVAL_S : Number(opts.commitInterval);
  if (!Number.isFinite(commitS) || commitS < 0) throw new FragfsError('USAGE', `--commit-interval takes seconds, not ${opts.commitInterval}`);
  const remote = isRemoteLocation(storePath);

  let lock: StoreLock | undefined;
  let lease: RemoteLease | undefined;
  let publisher: HeadPublisher | undefined;
  let repo: Repo | undefined;
  let vfs: Vfs | undefined;
  let handle: MountHandle | undefined;
  let server: Server | undefined;
  let record: MountRecord | undefined;
  let watcher: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  let stopped!: () => void;
  const finished = new Promise<void>((r) => (stopped = r));

  let unmounted = false;
  let stopReason: string | undefined;
  let exitCode = 0;

  /**
   * Takes down whatever is up, in reverse order. Not lazy (`fragfs umount`): a busy mount fails with
   * BUSY and everything stays up. Lazy (signals, errors): the mount is detached whatever happens.
   */
  const teardown = async (lazy: boolean, until: Omit<UnmountOptions, 'lazy'> = {}): Promise<void> => {
    if (handle && !unmounted) {
      try {
        await handle.unmount({ lazy, ...until });
      } catch (e) {
        if (!lazy) throw e;
        log(`fragfs: while unmounting: ${e instanceof Error ? e.message : String(e)}; detaching ${mp} anyway`);
        await fusermountUnmount(mp, true).catch(() => undefined);
      }
    }
    unmounted = true;
    if (watcher) clearInterval(watcher);
    let firstError: unknown;
    const step = async (what: string, f: () => Promise<void>) => {
      try {
        await f();
      } catch (e) {
        firstError ??= e;
        log(`fragfs: while ${what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    if (publisher) {
      // Published before the lease goes: the next machine to take it starts from this tree.
      await step('publishing the head', async () => {
        publisher!.stop();
        const key = await publisher!.publish();
        if (key) log(`fragfs: published head ${key}`);
      });
    }
    if (vfs) await step('closing the live state', () => vfs!.close());
    if (repo) await step('closing the store', () => repo!.close());
    if (lease) await step('releasing the write lease', () => lease!.release());
    if (lock) await step('releasing the lock', () => lock!.release());
    if (record) await step('removing the mount records', () => removeRecords(record!));
    if (server) {
      server.close();
      await unlink(record?.socket ?? '').catch(() => undefined);
    }
    if (firstError) throw firstError;
  };

  const stop = (why: string, lazy: boolean, until: Omit<UnmountOptions, 'lazy'> = {}): Promise<void> => {
    if (stopping) return stopping;
    stopReason = why;
    if (why !== 'control') log(`fragfs: ${why}: unmounting ${mp}`);
    const run = teardown(lazy, until);
    stopping = run;
    run.then(
      () => stopped(),
      () => {
        if (unmounted) {
          exitCode = 1;
          stopped();
        } else {
          stopping = undefined; // still mounted (BUSY): keep serving
          stopReason = undefined;
        }
      },
    );
    return run;
  };

  try {
    if (!shared && !isChild) await Repo.checkExists(storePath, space); // before the prompt, as every command
    const credentials: Credentials & { shareLink?: string } = isChild
      ? await credentialsFromParent()
      : shared
        ? { identities: await identitiesOf(opts) }
        : await readCredentials(opts);
    if (shared) {
      if (opts.snapshot !== undefined) throw new FragfsError('USAGE', 'a share link mounts its own folder: leave out --snapshot');
      // A background child's command line holds the link without its key: the parent sent it whole.
      const whole = credentials.shareLink === undefined ? shared.key : splitKeyPath(argBytes(credentials.shareLink)).key;
      const opened = await openShareLink(whole, [...(credentials.identities ?? [])]);
      repo = opened.repo;
      const root = shared.path.length > 0 ? await resolveEntry(repo, opened.snapshot.root, shared.path) : opened.snapshot.root;
      if (root.type !== 'dir') throw new FragfsError('NOT_DIR', `${showTreePath(shared.path)} of the share is a ${root.type}: mount a folder (or use fragfs cat)`);
      vfs = SnapshotVfs.openEntry({
        repo,
        root,
        label: opened.label,
        totals: opened.snapshot,
        ...(cacheBytes === undefined ? {} : { cacheBytes }),
        ...(metaCacheBytes === undefined ? {} : { metaCacheBytes }),
      });
    }
    if (!readOnly) lock = await StoreLock.acquire({ storePath, space, purpose: `mount ${mp}`, warn: log });
    repo ??= await Repo.open({ storePath, ...credentials, space, readOnly });
    repo.purpose = `mount ${mp}`;
    if (remote && !readOnly) {
      lease = await RemoteLease.acquire({
        objects: await remoteBackendOf(storePath),
        space,
        purpose: `mount ${mp}`,
        sealer: leaseSealerOf(repo),
        onLost: (why) => {
          log(`fragfs: ${why}; this mount publishes no more heads`);
          publisher?.stop(why);
        },
      });
    }
    if (vfs !== undefined) {
      // a share's folder, opened above
    } else if (opts.all) {
      const all = await AllSnapshotsVfs.open({ repo, ...(cacheBytes === undefined ? {} : { cacheBytes }), ...(metaCacheBytes === undefined ? {} : { metaCacheBytes }) });
      log(`fragfs: ${all.snapshotCount} snapshots under by-time/, by-name/ and latest`);
      vfs = all;
    } else if (opts.snapshot !== undefined) {
      const key = await repo.resolveSnapshot(opts.snapshot);
      vfs = await SnapshotVfs.open({ repo, key, ...(cacheBytes === undefined ? {} : { cacheBytes }), ...(metaCacheBytes === undefined ? {} : { metaCacheBytes }) });
    } else {
      const openedRepo = repo;
      const openLive = () => LiveVfs.open({
        repo: openedRepo,
        statePath: liveDir(storePath, space),
        readOnly,
        // Without allow_other the kernel lets only this user in: the vfs checks that user's
        // permissions itself (faster than the kernel's default_permissions, see DESIGN.md).
        ...(opts.allowOther === true ? {} : { permissionsFor: processAccessor() }),
        source: Buffer.from(mp),
        ...(metaCacheBytes === undefined ? {} : { metaCacheBytes }),
        // --cache-size is the memory a user grants: the write buffer grows with it (a quarter).
        ...(cacheBytes === undefined ? {} : { cacheBytes, writeBufferBytes: Math.max(DEFAULT_WRITE_BUFFER_BYTES, Math.floor(cacheBytes / 4)) }),
      });
      let live: LiveVfs;
      if (lease) {
        const statePath = liveDir(storePath, space);
        const at = await openLiveAtHead({ repo, statePath, open: openLive, log });
        live = at.vfs;
        publisher = new HeadPublisher(live, statePath, at.base, log);
        publisher.start(commitS * 1000);
      } else {
        live = await openLive();
      }
      // A walk of the tree right after mounting (find, du, ls -R, rsync) finds the state's pages
      // in the page cache: see LiveState.warm. It runs beside the mount, not before it.
      void live.warm();
      // Folders that stopped changing are written in the background, so a snapshot costs what
      // changed lately, also right after a bulk write.
      live.startWritingAhead();
      vfs = live;
    }
    handle = await mountVfs(vfs, mp, {
      softMemoryBytes: softMemoryLimit({
        cacheBytes: cacheBytes ?? DEFAULT_CACHE_BYTES,
        metaCacheBytes: metaCacheBytes ?? DEFAULT_META_CACHE_BYTES,
        writeBufferBytes: readOnly ? 0 : Math.max(DEFAULT_WRITE_BUFFER_BYTES, Math.floor((cacheBytes ?? 0) / 4)),
      }),
      allowOther: opts.allowOther === true,
      opStats: opts.opStats === true,
      fsname: `fragfs:${storePath}`,
      log,
    });

    await ensureRuntimeDir();
    const previous = await recordForMountpoint(mp);
    record = {
      mountpoint: mp,
      storePath,
      space,
      pid: process.pid,
      readOnly,
      ...(opts.snapshot === undefined ? {} : { snapshot: opts.snapshot }),
      socket: socketPathFor({ mountpoint: mp, storePath, space, readOnly }),
      ...(process.env['FRAGFS_MOUNT_LOG'] ? { logFile: process.env['FRAGFS_MOUNT_LOG'] } : {}),
      startedMs: Date.now(),
    };
    if (previous && previous.pid !== process.pid && previous.socket !== record.socket) {
      await unlink(previous.socket).catch(() => undefined);
    }
    const mountedVfs = vfs;
    const mountedRepo = repo;
    server = await startControlServer(record.socket, {
      snapshot: async (name, unlessRoot, ask = {}) => {
        // The request crossed a socket: its tags are checked here as on the command line.
        const tags = ask.tags === undefined ? undefined : tagList(ask.tags);
        const taken = await claimingName(mountedRepo, name, { ...ask, onMoved: (old) => log(`fragfs: snapshot ${old.slice(0, 12)} is no longer named ${JSON.stringify(name)}`) }, async () =>
          mountedVfs instanceof LiveVfs ? mountedVfs.snapshotUnless(name, unlessRoot, tags) : { key: await mountedVfs.snapshot(name), root: '' },
        );
        // A space that keeps parity: the snapshot's fragments are in stripes when the command returns.
        await mountedRepo?.protect();
        return taken;
      },
      umount: (lazy) => {
        if (!lazy) return stop('control', false);
        // Answered once detached: the files still open there are served until the last closes.
        return new Promise<void>((resolveDetached, reject) => {
          stop('lazy unmount', true, { untilLastClose: true, onDetached: resolveDetached }).then(resolveDetached, reject);
        });
      },
      // memory: what the mount holds (process.memoryUsage), for tests and for people watching a mount.
      status: () => ({ ...record, memory: process.memoryUsage() }),
      afterUmount: (lazy) => {
        if (!lazy) process.exit(exitCode);
      },
    });
    await writeRecords(record);

    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(sig, () => {
        if (stopping) return log(`fragfs: already unmounting ${mp}`);
        void stop(sig, true);
      });
    }
    // Someone ran fusermount -u / umount: the kernel side is gone, finish our side.
    watcher = setInterval(() => {
      if (stopping || !handle) return;
      void handle.isMounted().then((up) => {
        // After `umount -l` the files still open there are served until the last closes.
        if (!up && !stopping) void stop('unmounted from outside', true, { untilLastClose: true });
      });
    }, 2000);
    watcher.unref();

    log(`fragfs: mounted ${link ? `share ${link.id} of ${storePath}` : storePath}${opts.snapshot ? ` (snapshot ${opts.snapshot})` : ''} at ${mp}${readOnly ? ' read-only' : ''}`);
    if (isChild) {
      tellParent({ type: 'ready', mountpoint: mp });
      process.channel?.unref();
    } else {
      log(`fragfs: press Ctrl-C or run \`fragfs umount ${mp}\` to unmount`);
    }
  } catch (e) {
    await teardown(true).catch(() => undefined);
    if (isChild) {
      tellParent({
        type: 'error',
        message: e instanceof Error ? e.message : String(e),
        exitCode: e instanceof FragfsError ? e.exitCode : 70,
      });
    }
    throw e;
  }

  // A bug anywhere while serving: still flush and unmount, then report it.
  const onBug = (e: unknown) => {
    void stop('internal error', true).finally(() => reportAndExit(e));
  };
  process.on('uncaughtException', onBug);
  process.on('unhandledRejection', onBug);

  await finished;
  // After a control-channel umount the reply must reach `fragfs umount` first: afterUmount exits.
  if (stopReason !== 'control') process.exit(exitCode);
}

