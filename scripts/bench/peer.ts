// What a benchmark peer is: a folder that can be mounted (fragfs, gocryptfs, rclone, a plain folder), or a
// backup tool that snapshots a tree and gives it back (fragfs, restic, borg). Peers never measure anything
// themselves; workloads do, through these calls.

import type { PeakRss } from './rss.js';

export type Availability = { ok: true; version: string } | { ok: false; reason: string };

/** What every call of a step gets: its time bound, its own scratch folder, the RSS probe of the step. */
export interface StepContext {
  readonly signal: AbortSignal;
  /** Empty folder owned by this step; removed after it. */
  readonly workDir: string;
  readonly rss: PeakRss;
  /** Drop caches between phases when the workload wants cold figures (root only). */
  readonly dropCaches: boolean;
}

export interface MountPeer {
  readonly name: string;
  /** Short note on how the peer is set up, shown in the report. */
  readonly setup: string;
  check(): Promise<Availability>;
  /** MUST return a mounted, empty, writable folder; MUST register it for cleanup on exit. */
  create(ctx: StepContext): Promise<MountInstance>;
}

export interface MountInstance {
  /** The folder a workload reads and writes. */
  readonly root: string;
  /** The process serving the folder now (changes on remount), for peak RSS; undefined for a plain folder. */
  pid(): number | undefined;
  /** Freezes the live tree into a snapshot and returns its key; only a peer with snapshots of a live folder has it. */
  snapshot?(): Promise<string>;
  /** Unmount (everything flushed), drop caches when ctx.dropCaches, mount again. */
  remount(): Promise<void>;
  /** Unmount and stop the server; MUST be safe to call twice and after a failure. */
  dispose(): Promise<void>;
}

export interface BackupPeer {
  readonly name: string;
  readonly setup: string;
  check(): Promise<Availability>;
  /** A fresh, empty repository in ctx.workDir. */
  create(ctx: StepContext): Promise<BackupInstance>;
}

export interface SnapshotView {
  /** Folder holding the snapshot's copy of the tree (the backed-up folder itself, not its parent). */
  readonly root: string;
  /** How it was opened: 'mount' or a restore/extract (reported, since a restore is not a mount). */
  readonly how: string;
  pid(): number | undefined;
  close(): Promise<void>;
}

/** A repository's size in the terms that matter for many small files. */
export interface StoreFacts {
  /** Objects a backend holding the repository stores (a request each on an object store). */
  objects: number;
  /** What `objects` counts, for the report. */
  objectsAre: string;
  /** Sum of file sizes (du -b): unlike allocated bytes, without blocks reserved ahead of writes. */
  apparentBytes: number;
}

export interface BackupInstance {
  /** Snapshot `dir` (a folder named `name` inside `parent`); the child's RSS goes to ctx.rss. */
  backup(parent: string, name: string): Promise<void>;
  /** Bytes the repository takes on disk now. */
  storeBytes(): Promise<number>;
  /** What the repository holds now, counted as the tool counts it; MAY be left out. */
  storeFacts?(): Promise<StoreFacts>;
  /** The last snapshot as a folder to read back (workload f). */
  openLatest(name: string): Promise<SnapshotView>;
  dispose(): Promise<void>;
}
