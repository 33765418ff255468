// The plaintext shape of fragfs metadata objects (before SOLMET wrapping): snapshot roots,
// directories, file manifest pages and snapshot refs. docs/FORMAT.md section 2.3 is the normative text;
// these types and that section change together, and FORMAT_VERSION with them.

/**
 * Version of the metadata object schema that fragfs writes; readers MUST reject a higher one.
 * 1: entry names valid UTF-8, symlink targets and snapshot sources msgpack str, xattrs a map str -> bin.
 * 2: names, symlink targets, xattr names and sources are bytes (Linux names are bytes, not text).
 * 3: every dir and manifest object has its own key, carried by the entry that names it (`dirKey`,
 *    `pageKeys`), so a folder can be handed to someone without the space's keys (a share link).
 */
export const META_VERSION = 3;
/** The first version whose dir and manifest objects are sealed under their own keys. */
export const META_VERSION_OWN_KEYS = 3;
/** The oldest object version this fragfs reads (stores written before names were bytes). */
export const META_VERSION_MIN = 1;

/** Seed 003's well-known keys, carried by every metadata object that describes data blocks. */
export const DATA_ENCRYPTION_TYPE_KEY = 'FragComp::DataEncryptionType';
export const DATA_COMPRESSION_TYPE_KEY = 'FragComp::DataCompressionType';

/** Data block encryption: 0x01 = AES-256-GCM, key = keyed BLAKE3 of the plaintext, zero nonce. */
export const DATA_ENCRYPTION_AES256GCM_CONVERGENT = 0x01;
/** Data block compression: 0x01 = zstd, applied per block only when it saves space (status bit 7). */
export const DATA_COMPRESSION_ZSTD = 0x01;

/** One block of a file: bytes [offset, offset + plainSize) of the file. */
export interface BlockRef {
  /** BLAKE3-256 of the stored bytes, lowercase hex: the fragment id in the `data` namespace. */
  readonly id: string;
  /** The block's AEAD key: keyed BLAKE3(convergence secret, plaintext), 32 bytes. */
  readonly key: Uint8Array;
  /** Plaintext length in bytes (<= the store's block size). */
  readonly plainSize: number;
}

export interface Extent extends BlockRef {
  /** Byte offset of the block in the file. Extents of a file are sorted and do not overlap; a gap is a hole (zeros). */
  readonly offset: number;
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'chardev' | 'blockdev' | 'socket';

/** One extended attribute: its name and value, both bytes exactly as the kernel gave them. */
export interface Xattr {
  name: Buffer;
  value: Buffer;
}

/**
 * One name in a directory, with everything `stat` shows and where the content is.
 * Exactly one content field is set for files and dirs: `blocks` or `pages` for files, `dir` for dirs.
 */
export interface Entry {
  /** One path component: 1..255 bytes, any byte but '/' and NUL, not '.' or '..' (need not be UTF-8). */
  name: Buffer;
  type: EntryType;
  /** Permission and special bits (mode & 0o7777); the type is in `type`. */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time, nanoseconds since the epoch (bigint keeps full precision). */
  mtimeNs: bigint;
  /** Logical size in bytes (files: content length including holes; symlinks: target length). */
  size: number;
  /** Symlink target, bytes (non-empty, no NUL). */
  target?: Buffer;
  /** Device number for chardev/blockdev. */
  rdev?: number;
  /** Extended attributes, sorted by the bytes of their names, names unique. */
  xattrs?: Xattr[];
  /**
   * Hard-link group: entries of one tree that share a number are one inode. Every member carries
   * the same content fields, so any of them can be read alone.
   */
  link?: number;
  /**
   * How many names the hard-link group has in this tree (>= 2, only with `link`): what stat's st_nlink
   * shows in a snapshot mount, so tools that find hard links by nlink (tar, rsync -H) see them.
   */
  nlink?: number;
  /** Inline manifest for files with at most MANIFEST_INLINE_MAX extents. */
  blocks?: Extent[];
  /** Manifest pages (meta fragment ids, in order) for larger files. */
  pages?: string[];
  /**
   * The key of each manifest page, in the order of `pages` (version 3; absent for pages sealed under
   * the space's metadata key, as every page of versions 1 and 2 is).
   */
  pageKeys?: Uint8Array[];
  /** Meta fragment id of a directory's `DirObject`. */
  dir?: string;
  /** The key of that object (version 3; absent when it is sealed under the space's metadata key). */
  dirKey?: Uint8Array;
  /**
   * A put's tag of the source folder this listing was made from (16 bytes, only with `dir`; see
   * src/repo/folder-tag.ts): a later put that finds the folder as it was takes the listing unread.
   * Opaque to every reader.
   */
  sourceTag?: Uint8Array;
}

/** Bytes of an entry's `sourceTag`: BLAKE3's first 16 (the tag guards no secret; 2^64 work to collide). */
export const SOURCE_TAG_BYTES = 16;

/** Files with more extents than this keep them in manifest pages. */
export const MANIFEST_INLINE_MAX = 32;
/** Extents per manifest page. */
export const MANIFEST_PAGE_MAX = 4096;

export interface DirObject {
  kind: 'dir';
  v: number;
  /** Sorted by the bytes of the name (memcmp order), names unique. */
  entries: Entry[];
}

export interface ManifestPageObject {
  kind: 'manifest';
  v: number;
  blocks: Extent[];
}

/** What a meta key names: the root of one tree, frozen. */
export interface SnapshotObject {
  kind: 'snapshot';
  v: number;
  /** Milliseconds since the epoch. */
  createdMs: number;
  /** `put` source paths or the mount the snapshot was taken of (bytes: local paths need not be UTF-8). */
  source: Buffer[];
  hostname: string;
  /** The store's block size when written (informative). */
  blockSize: number;
  /** The tree: a dir entry (put of a folder, a mount), a file or symlink (put of one file). */
  root: Entry;
  /** Totals over the tree, for `snapshots` and `stats` without a walk. */
  files: number;
  dirs: number;
  logicalBytes: number;
}

/** A ref names a snapshot; its id is the snapshot's meta key. */
export interface RefObject {
  kind: 'ref';
  v: number;
  snapshot: string;
  name?: string;
  /**
   * Labels for finding and filtering snapshots (`--tag`): each a snapshot-name-like string, sorted,
   * unique. Older readers ignore the key (FORMAT.md 2.3), so it needs no new version.
   */
  tags?: string[];
  createdMs: number;
  logicalBytes: number;
}

export type MetaObject = DirObject | ManifestPageObject | SnapshotObject | RefObject;
