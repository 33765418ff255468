// The head of a remote store: the live tree as its read-write mount last published it, a snapshot
// named `head` (the newest one wins, as for every name). A mount publishes on unmount and at most
// every --commit-interval while the tree changes; a mount on another machine starts from the head
// when its own live state is not based on it (docs/DESIGN.md, "Remote stores").

import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotObject } from '../fragment/tree-format.js';
import type { Repo } from '../repo/repo.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { stateDirOf, type LiveVfs } from '../vfs/live-vfs.js';

export const HEAD_NAME = 'head';
/** Default seconds between two publications of a changing tree. */
export const DEFAULT_COMMIT_INTERVAL_S = 30;

/** What this machine's live state was last made equal to: the root dir's meta id and its snapshot. */
export interface LiveBase {
  root: string;
  snapshot: string;
}

const BASE_FILE = 'head.json';

export async function readBase(statePath: string): Promise<LiveBase | undefined> {
  try {
    const b = JSON.parse(await readFile(join(statePath, BASE_FILE), 'utf8')) as LiveBase;
    return typeof b.root === 'string' && typeof b.snapshot === 'string' ? b : undefined;
  } catch {
    return undefined;
  }
}

/** Meta ids only (no name, no key): written 0600 beside the encrypted live state. */
async function writeBase(statePath: string, b: LiveBase): Promise<void> {
  await writeFileAtomic(statePath, join(statePath, BASE_FILE), Buffer.from(`${JSON.stringify(b)}\n`), 'cannot record the published head');
}

/** The newest snapshot named `head`, or undefined when no mount has published one. */
export async function newestHead(repo: Repo): Promise<{ key: string; snapshot: SnapshotObject } | undefined> {
  const heads = (await repo.listRefs()).filter((r) => r.name === HEAD_NAME);
  const newest = heads[heads.length - 1];
  if (!newest) return undefined;
  return { key: newest.snapshot, snapshot: await repo.getMeta(newest.snapshot, 'snapshot') };
}

/**
 * Opens the live tree of a remote store's read-write mount at the store's head. The local state is
 * kept when it is based on the head (it may hold changes a crash kept from being published); when
 * another machine published since, local changes that were never published are kept as a snapshot
 * named `unpublished` and the state starts over from the head. Only called with the write lease held.
 */
export async function openLiveAtHead(o: {
  repo: Repo;
  statePath: string;
  open: () => Promise<LiveVfs>;
  log: (line: string) => void;
}): Promise<{ vfs: LiveVfs; base: LiveBase | undefined }> {
  const head = await newestHead(o.repo);
  const base = await readBase(o.statePath);
  let vfs = await o.open();
  if (!head || head.snapshot.root.dir === undefined || base?.root === head.snapshot.root.dir) return { vfs, base };
  try {
    if (!vfs.isEmpty()) {
      const kept = await vfs.snapshotUnless('unpublished', base?.root);
      if (kept) o.log(`fragfs: this machine's unpublished changes are kept as snapshot ${kept.key} (unpublished); the live tree starts from the store's head`);
    }
  } finally {
    await vfs.close();
  }
  await rm(stateDirOf(o.statePath), { recursive: true, force: true });
  vfs = await o.open();
  try {
    const started = Date.now();
    await vfs.importTree(head.key, head.snapshot);
    const next = { root: head.snapshot.root.dir, snapshot: head.key };
    await writeBase(o.statePath, next);
    o.log(`fragfs: live tree taken from head ${head.key} (${head.snapshot.files} files, ${head.snapshot.dirs} folders) in ${((Date.now() - started) / 1000).toFixed(2)} s`);
    return { vfs, base: next };
  } catch (e) {
    await vfs.close().catch(() => undefined);
    // A half-imported state is no base: the next mount imports again.
    await rm(stateDirOf(o.statePath), { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
}

/** Publishes the live tree as the store's head when it changed, now and every `intervalMs`. */
export class HeadPublisher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  /** Set when publishing must stop (the lease was lost): later calls refuse. */
  stoppedWhy: string | undefined;

  constructor(
    private readonly vfs: LiveVfs,
    private readonly statePath: string,
    private base: LiveBase | undefined,
    private readonly log: (line: string) => void,
  ) {}

  start(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.timer = setInterval(() => {
      void this.publish().catch((e: unknown) => this.log(`fragfs: publishing the head failed (tried again in ${intervalMs / 1000} s): ${(e as Error).message}`));
    }, intervalMs);
    this.timer.unref();
  }

  stop(why?: string): void {
    clearInterval(this.timer);
    if (why) this.stoppedWhy = why;
  }

  /** The new head's meta key, or undefined when the tree did not change since the last one. */
  publish(): Promise<string | undefined> {
    const run = this.running.then(async () => {
      if (this.stoppedWhy) throw new Error(`not published: ${this.stoppedWhy}`);
      const made = await this.vfs.snapshotUnless(HEAD_NAME, this.base?.root);
      if (!made) return undefined;
      this.base = { root: made.root, snapshot: made.key };
      await writeBase(this.statePath, this.base);
      return made.key;
    });
    this.running = run.catch(() => undefined);
    return run;
  }
}
