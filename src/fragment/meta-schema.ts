// The msgpack schema of metadata objects (the plaintext inside a SOLMET frame): the fixed-order maps
// a writer builds from tree-format.ts objects, the conversion back from decoded msgpack, and the
// checks every object passes on both sides. docs/FORMAT.md ("Metadata objects") describes the same
// fields; change them together.

import { FragfsError } from '../errors.js';
import { MAX_BLOCK_SIZE } from '../codec/block-size.js';
import { compareNames, NAME_MAX_BYTES, nameProblem, showName } from './names.js';
import {
  DATA_COMPRESSION_TYPE_KEY,
  DATA_COMPRESSION_ZSTD,
  DATA_ENCRYPTION_AES256GCM_CONVERGENT,
  DATA_ENCRYPTION_TYPE_KEY,
  META_VERSION,
  META_VERSION_MIN,
  META_VERSION_OWN_KEYS,
  SOURCE_TAG_BYTES,
  type DirObject,
  type Entry,
  type EntryType,
  type Extent,
  type ManifestPageObject,
  type MetaObject,
  type RefObject,
  type SnapshotObject,
  type Xattr,
} from './tree-format.js';

/** How a check reports: INVALID on the write side, CORRUPT (naming the fragment) on the read side. */
export type Fail = (why: string) => never;

/** Linux XATTR_NAME_MAX and XATTR_SIZE_MAX. */
export const XATTR_NAME_MAX_BYTES = 255;
export const XATTR_VALUE_MAX_BYTES = 65536;
export { NAME_MAX_BYTES };

export const ENTRY_TYPES: readonly EntryType[] = ['file', 'dir', 'symlink', 'fifo', 'chardev', 'blockdev', 'socket'];
const ENTRY_TYPE_SET: ReadonlySet<string> = new Set(ENTRY_TYPES);
const META_KINDS: ReadonlySet<string> = new Set(['dir', 'manifest', 'snapshot', 'ref']);

const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const HEX_ID = /^[0-9a-f]{64}$/;
const UINT32_MAX = 0xffffffff;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

// ---------------------------------------------------------------------------------------------
// Checks on typed objects (both sides)
// ---------------------------------------------------------------------------------------------

/** Why `name` is not a valid directory entry name, or undefined when it is. */
export const entryNameProblem = nameProblem;

function isUint(n: unknown, max = Number.MAX_SAFE_INTEGER): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= max;
}

function checkUint(fail: Fail, what: string, n: unknown, max = Number.MAX_SAFE_INTEGER, min = 0): number {
  if (!isUint(n, max) || n < min) fail(`${what} is not a whole number in [${min}, ${max}]: ${String(n)}`);
  return n as number;
}

/** A 64-hex-digit id; one made from 32 bytes (`fromBytes`) needs only to be a string. */
function isHexId(id: unknown, fromBytes: boolean): boolean {
  return typeof id === 'string' && (fromBytes ? id.length === 64 : HEX_ID.test(id));
}

function checkHexId(fail: Fail, what: string, id: unknown): string {
  if (typeof id !== 'string' || !HEX_ID.test(id)) fail(`${what} is not a 64-hex-digit id: ${String(id).slice(0, 80)}`);
  return id as string;
}

function checkString(fail: Fail, what: string, s: unknown, nonEmpty = false): string {
  if (typeof s !== 'string') return fail(`${what} is not a string`);
  if (nonEmpty && s.length === 0) fail(`${what} is empty`);
  if (LONE_SURROGATE.test(s)) fail(`${what} is not valid Unicode`);
  return s;
}

/**
 * Extents: each well formed, sorted by offset, not overlapping, and (given the file's `size`) within
 * it. Messages are built only on failure.
 */
export function checkExtents(fail: Fail, what: () => string, blocks: unknown, size?: number, idsFromBytes = false): void {
  if (!Array.isArray(blocks)) fail(`${what()} is not an array of extents`);
  let end = 0;
  const list = blocks as unknown[];
  for (let i = 0; i < list.length; i++) {
    const e = list[i] as Partial<Extent> | null;
    if (typeof e !== 'object' || e === null) fail(`${what()}[${i}] is not an extent`);
    const { offset, plainSize, id, key } = e!;
    if (!isUint(offset)) fail(`${what()}[${i}].offset is not a whole number: ${String(offset)}`);
    if (!isUint(plainSize, MAX_BLOCK_SIZE) || plainSize < 1) {
      fail(`${what()}[${i}].plainSize is not 1..${MAX_BLOCK_SIZE}: ${String(plainSize)}`);
    }
    if (!isHexId(id, idsFromBytes)) fail(`${what()}[${i}].id is not a 64-hex-digit id`);
    if (!(key instanceof Uint8Array) || key.length !== 32) fail(`${what()}[${i}].key is not 32 bytes`);
    if (offset! < end) fail(`${what()}[${i}] at offset ${offset} overlaps or precedes the extent before it (ends at ${end})`);
    end = offset! + plainSize!;
    if (!Number.isSafeInteger(end)) fail(`${what()}[${i}] ends beyond the largest file size`);
    if (size !== undefined && end > size) fail(`${what()}[${i}] ends at ${end}, past the file's size ${size}`);
  }
}

/** Everything about one entry; `isRoot` allows the empty name a snapshot's root may have. */
export function checkEntry(fail: Fail, e: Entry, isRoot = false, version = META_VERSION, idsFromBytes = false): void {
  if (typeof e !== 'object' || e === null) fail('entry is not an object');
  const where = (): string => (e.name instanceof Uint8Array ? `entry ${showName(e.name)}` : 'entry');
  if (!(isRoot && e.name instanceof Uint8Array && e.name.length === 0)) {
    const problem = entryNameProblem(e.name);
    if (problem !== undefined) fail(problem);
  }
  if (!ENTRY_TYPE_SET.has(e.type)) fail(`${where()} has unknown type ${JSON.stringify(e.type)}`);
  if (!isUint(e.mode, 0o7777)) fail(`${where()} mode is not 0..0o7777: ${String(e.mode)}`);
  if (!isUint(e.uid, UINT32_MAX)) fail(`${where()} uid is not a 32-bit unsigned number: ${String(e.uid)}`);
  if (!isUint(e.gid, UINT32_MAX)) fail(`${where()} gid is not a 32-bit unsigned number: ${String(e.gid)}`);
  if (typeof e.mtimeNs !== 'bigint' || e.mtimeNs < INT64_MIN || e.mtimeNs > INT64_MAX) {
    fail(`${where()} mtimeNs is not a 64-bit bigint`);
  }
  if (!isUint(e.size)) fail(`${where()} size is not a whole number: ${String(e.size)}`);

  if (e.type === 'symlink') {
    if (!(e.target instanceof Uint8Array) || e.target.length === 0) fail(`${where()} is a symlink without a target`);
    if (e.target!.includes(0) || e.target!.length > PATH_MAX_BYTES) fail(`${where()} target is not a valid path`);
  } else if (e.target !== undefined) fail(`${where()} is a ${e.type} with a symlink target`);

  if (e.rdev !== undefined) {
    if (e.type !== 'chardev' && e.type !== 'blockdev') fail(`${where()} is a ${e.type} with a device number`);
    if (!isUint(e.rdev)) fail(`${where()} rdev is not a whole number`);
  }
  if (e.xattrs !== undefined) {
    if (!Array.isArray(e.xattrs)) fail(`${where()} xattrs is not a list`);
    let prev: Uint8Array | undefined;
    for (const x of e.xattrs!) {
      const k = x?.name;
      if (!(k instanceof Uint8Array) || k.length === 0 || k.includes(0) || k.length > XATTR_NAME_MAX_BYTES) {
        fail(`${where()} has a bad xattr name ${k instanceof Uint8Array ? showName(k) : ''}`);
      }
      if (!(x.value instanceof Uint8Array)) fail(`${where()} xattr ${showName(k)} is not bytes`);
      if (x.value.length > XATTR_VALUE_MAX_BYTES) fail(`${where()} xattr ${showName(k)} is larger than ${XATTR_VALUE_MAX_BYTES} bytes`);
      if (prev !== undefined && compareNames(prev, k) >= 0) fail(`${where()} xattrs are not sorted and unique at ${showName(k)}`);
      prev = k;
    }
  }
  if (e.link !== undefined && (!isUint(e.link, UINT32_MAX) || e.link < 1)) fail(`${where()} link is not 1..2^32-1`);
  if (e.nlink !== undefined && (e.link === undefined || !isUint(e.nlink, UINT32_MAX) || e.nlink < 2)) {
    fail(`${where()} nlink is not 2..2^32-1 on a hard-linked entry`);
  }
  if (version === 1) {
    // Version 1 kept names, targets and xattr names as text: only UTF-8 fits in it.
    const texts = [e.name, ...(e.target ? [e.target] : []), ...(e.xattrs ?? []).map((x) => x.name)];
    if (texts.some((b) => !isUtf8(b))) fail(`${where()} has a name that is not UTF-8, which a version 1 object cannot hold`);
  }

  const hasBlocks = e.blocks !== undefined;
  const hasPages = e.pages !== undefined;
  const hasDir = e.dir !== undefined;
  if (e.type === 'file') {
    if (hasBlocks === hasPages) fail(`${where()} is a file that needs exactly one of blocks or pages`);
    if (hasDir) fail(`${where()} is a file with a dir id`);
  } else if (e.type === 'dir') {
    if (!hasDir) fail(`${where()} is a dir without a dir id`);
    if (hasBlocks || hasPages) fail(`${where()} is a dir with file content`);
  } else if (hasBlocks || hasPages || hasDir) {
    fail(`${where()} is a ${e.type} with content fields`);
  }
  if (hasBlocks) checkExtents(fail, () => `${where()} blocks`, e.blocks, e.size, idsFromBytes);
  if (hasPages) {
    if (!Array.isArray(e.pages) || e.pages.length === 0) fail(`${where()} pages is not a non-empty array`);
    for (const p of e.pages!) if (!isHexId(p, idsFromBytes)) fail(`${where()} has a page id that is not 64 hex digits`);
  }
  if (hasDir && !isHexId(e.dir, idsFromBytes)) fail(`${where()} dir is not a 64-hex-digit id`);
  // Version 3: the keys of the objects an entry names (FORMAT.md 2.3.6); a key never goes without its object.
  const isKey = (k: unknown): boolean => k instanceof Uint8Array && k.length === 32;
  if (e.dirKey !== undefined) {
    if (version < META_VERSION_OWN_KEYS) fail(`${where()} has a dirKey, which a version ${version} object cannot hold`);
    if (!hasDir) fail(`${where()} has a dirKey without a dir`);
    if (!isKey(e.dirKey)) fail(`${where()} dirKey is not 32 bytes`);
  }
  if (e.sourceTag !== undefined) {
    if (version < META_VERSION_OWN_KEYS) fail(`${where()} has a sourceTag, which a version ${version} object cannot hold`);
    if (!hasDir) fail(`${where()} has a sourceTag without a dir`);
    if (!(e.sourceTag instanceof Uint8Array) || e.sourceTag.length !== SOURCE_TAG_BYTES) fail(`${where()} sourceTag is not ${SOURCE_TAG_BYTES} bytes`);
  }
  if (e.pageKeys !== undefined) {
    if (version < META_VERSION_OWN_KEYS) fail(`${where()} has pageKeys, which a version ${version} object cannot hold`);
    if (!hasPages) fail(`${where()} has pageKeys without pages`);
    if (!Array.isArray(e.pageKeys) || e.pageKeys.length !== e.pages!.length || !e.pageKeys.every(isKey)) {
      fail(`${where()} pageKeys is not one 32-byte key per page`);
    }
  }
}

function isUtf8(b: Uint8Array): boolean {
  try {
    strictUtf8.decode(b);
    return true;
  } catch {
    return false;
  }
}

/** Longest symlink target Linux stores (PATH_MAX, including the terminating NUL it does not store). */
export const PATH_MAX_BYTES = 4095;

/**
 * Every check of a whole object, on the write side (before encoding) and the read side (after
 * decoding). `idsFromBytes`: the object's ids were just made from 32-byte bins (metaFromWire), so
 * their hex form is not tested again (a regular expression an id, a tenth of a re-put's decoding).
 */
export function checkMetaObject(fail: Fail, obj: MetaObject, idsFromBytes = false): void {
  if (typeof obj !== 'object' || obj === null) fail('metadata object is not an object');
  if (!META_KINDS.has(obj.kind)) fail(`unknown metadata kind ${JSON.stringify(obj.kind)}`);
  checkUint(fail, 'version', obj.v, META_VERSION, META_VERSION_MIN);
  switch (obj.kind) {
    case 'dir': {
      if (!Array.isArray(obj.entries)) fail('dir entries is not an array');
      let prev: Uint8Array | undefined;
      for (const e of obj.entries) {
        checkEntry(fail, e, false, obj.v, idsFromBytes);
        if (prev !== undefined && compareNames(prev, e.name) >= 0) {
          fail(`dir entries are not sorted and unique at ${showName(e.name)}`);
        }
        prev = e.name;
      }
      break;
    }
    case 'manifest':
      checkExtents(fail, () => 'manifest blocks', obj.blocks, undefined, idsFromBytes);
      break;
    case 'snapshot':
      checkUint(fail, 'snapshot createdMs', obj.createdMs);
      if (!Array.isArray(obj.source)) fail('snapshot source is not an array');
      obj.source.forEach((s, i) => {
        if (!(s instanceof Uint8Array) || s.includes(0) || (obj.v === 1 && !isUtf8(s))) fail(`snapshot source[${i}] is not a path`);
      });
      checkString(fail, 'snapshot hostname', obj.hostname);
      checkUint(fail, 'snapshot blockSize', obj.blockSize, MAX_BLOCK_SIZE, 1);
      checkEntry(fail, obj.root, true, obj.v, idsFromBytes);
      checkUint(fail, 'snapshot files', obj.files);
      checkUint(fail, 'snapshot dirs', obj.dirs);
      checkUint(fail, 'snapshot logicalBytes', obj.logicalBytes);
      break;
    case 'ref':
      checkHexId(fail, 'ref snapshot', obj.snapshot);
      if (obj.name !== undefined) checkString(fail, 'ref name', obj.name, true);
      if (obj.tags !== undefined) {
        if (!Array.isArray(obj.tags)) fail('ref tags is not an array');
        obj.tags.forEach((tag, i) => checkString(fail, `ref tags[${i}]`, tag, true));
      }
      checkUint(fail, 'ref createdMs', obj.createdMs);
      checkUint(fail, 'ref logicalBytes', obj.logicalBytes);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Typed object -> msgpack value (maps built in a fixed order so equal objects give equal bytes)
// ---------------------------------------------------------------------------------------------

/** Integers above uint32 go out as bigint so msgpackr writes uint64/int64, not float64. */
function wireInt(n: number): number | bigint {
  return n >= -0x80000000 && n <= UINT32_MAX ? n : BigInt(n);
}

function idBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** A plain Uint8Array view, so msgpackr always writes bin (never a typed-array extension). */
function bin(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * A msgpack map on the wire. Plain objects (msgpackr packs them much faster than Maps) whose keys are
 * fixed, non-numeric names, so insertion order is the written order.
 */
export type WireMap = Record<string, unknown>;

/** Extent on the wire: [offset, plainSize, id (bin 32), key (bin 32)]. */
function extentToWire(e: Extent): unknown[] {
  return [wireInt(e.offset), e.plainSize, idBytes(e.id), bin(e.key)];
}

/** Version 1 wrote targets, xattr names and sources as msgpack str: its objects re-encode to their ids. */
const text = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');

function entryToWire(e: Entry, version: number): WireMap {
  const m: WireMap = {};
  m.name = bin(e.name);
  m.type = e.type;
  m.mode = e.mode;
  m.uid = e.uid;
  m.gid = e.gid;
  m.mtimeNs = e.mtimeNs; // always a bigint: msgpack int64 (0xd3)
  m.size = wireInt(e.size);
  if (e.target !== undefined) m.target = version === 1 ? text(e.target) : bin(e.target);
  if (e.rdev !== undefined) m.rdev = wireInt(e.rdev);
  if (e.xattrs !== undefined) {
    // Version 2: an array of [name, value] pairs (bin, bin), in the order checkEntry enforced (by name
    // bytes). Version 1: a map str -> bin.
    m.xattrs = version === 1 ? new Map(e.xattrs.map((x) => [text(x.name), bin(x.value)])) : e.xattrs.map((x) => [bin(x.name), bin(x.value)]);
  }
  if (e.link !== undefined) m.link = e.link;
  if (e.nlink !== undefined) m.nlink = e.nlink;
  if (e.blocks !== undefined) m.blocks = e.blocks.map(extentToWire);
  if (e.pages !== undefined) m.pages = e.pages.map(idBytes);
  if (e.pageKeys !== undefined) m.pageKeys = e.pageKeys.map(bin);
  if (e.dir !== undefined) m.dir = idBytes(e.dir);
  if (e.dirKey !== undefined) m.dirKey = bin(e.dirKey);
  if (e.sourceTag !== undefined) m.sourceTag = bin(e.sourceTag);
  return m;
}

/** The msgpack value of a (checked) object: maps in the documented key order. */
export function metaToWire(obj: MetaObject): WireMap {
  const m: WireMap = {};
  m.kind = obj.kind;
  m.v = obj.v;
  if (obj.kind !== 'ref') {
    m[DATA_ENCRYPTION_TYPE_KEY] = DATA_ENCRYPTION_AES256GCM_CONVERGENT;
    m[DATA_COMPRESSION_TYPE_KEY] = DATA_COMPRESSION_ZSTD;
  }
  switch (obj.kind) {
    case 'dir':
      m.entries = obj.entries.map((e) => entryToWire(e, obj.v));
      break;
    case 'manifest':
      m.blocks = obj.blocks.map(extentToWire);
      break;
    case 'snapshot':
      m.createdMs = wireInt(obj.createdMs);
      m.source = obj.v === 1 ? obj.source.map(text) : obj.source.map(bin);
      m.hostname = obj.hostname;
      m.blockSize = obj.blockSize;
      m.root = entryToWire(obj.root, obj.v);
      m.files = wireInt(obj.files);
      m.dirs = wireInt(obj.dirs);
      m.logicalBytes = wireInt(obj.logicalBytes);
      break;
    case 'ref':
      m.snapshot = idBytes(obj.snapshot);
      if (obj.name !== undefined) m.name = obj.name;
      if (obj.tags !== undefined) m.tags = obj.tags;
      m.createdMs = wireInt(obj.createdMs);
      m.logicalBytes = wireInt(obj.logicalBytes);
      break;
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Decoded msgpack value -> typed object (shape and wire types only; checkMetaObject does the rest)
// ---------------------------------------------------------------------------------------------

/** Thrown (as FragfsError BAD_STORE) when an object needs a newer fragfs to read. */
export type TooNew = (why: string) => never;

/** What a decoded value is, for a failure's message: a function, so it is only built on failure. */
type What = string | (() => string);

function say(what: What): string {
  return typeof what === 'string' ? what : what();
}

function asMap(fail: Fail, what: What, v: unknown): Map<unknown, unknown> {
  if (!(v instanceof Map)) return fail(`${say(what)} is not a msgpack map`);
  return v;
}

function asArray(fail: Fail, what: What, v: unknown): unknown[] {
  if (!Array.isArray(v)) return fail(`${say(what)} is not a msgpack array`);
  return v;
}

/** A msgpack integer (any width) as a safe JS number. */
function asInt(fail: Fail, what: What, v: unknown): number {
  if (typeof v === 'bigint') {
    if (v < BigInt(Number.MIN_SAFE_INTEGER) || v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${say(what)} is out of range`);
    return Number(v);
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) return fail(`${say(what)} is not an integer`);
  return v;
}

function asBigInt(fail: Fail, what: What, v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  return fail(`${say(what)} is not an integer`);
}

/**
 * A msgpack bin as a plain Uint8Array view into the decoded plaintext, not a copy: a copy of each
 * name and key was two thirds of a folder's decoding (an ArrayBuffer each). A fragment's entries are
 * used together (a listing, a cached folder), so they share its plaintext.
 */
function asBin(fail: Fail, what: What, v: unknown, length?: number): Uint8Array {
  if (!(v instanceof Uint8Array)) return fail(`${say(what)} is not msgpack bin`);
  if (length !== undefined && v.length !== length) fail(`${say(what)} is ${v.length} bytes, not ${length}`);
  return v.constructor === Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function asId(fail: Fail, what: What, v: unknown): string {
  if (!(v instanceof Uint8Array) || v.length !== 32) return fail(`${say(what)} is not a 32-byte bin id`);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
}

function asString(fail: Fail, what: What, v: unknown): string {
  if (typeof v !== 'string') return fail(`${say(what)} is not a msgpack str`);
  return v;
}

function field(fail: Fail, m: Map<unknown, unknown>, what: What, key: string): unknown {
  const v = m.get(key);
  if (v === undefined) fail(`${say(what)} has no "${key}"`);
  return v;
}

function extentFromWire(fail: Fail, what: What, v: unknown): Extent {
  const a = asArray(fail, what, v);
  if (a.length !== 4) fail(`${say(what)} is not an array of 4`);
  return {
    offset: asInt(fail, () => `${say(what)} offset`, a[0]),
    plainSize: asInt(fail, () => `${say(what)} plainSize`, a[1]),
    id: asId(fail, () => `${say(what)} id`, a[2]),
    key: asBin(fail, () => `${say(what)} key`, a[3], 32),
  };
}

/** A name, target or source: bin in version 2; in version 1 names were UTF-8 bin and the rest str. */
function bytesFromWire(fail: Fail, what: What, v: unknown, version: number, v1Str: boolean): Buffer {
  if (version === 1 && v1Str) {
    const text = asString(fail, what, v);
    if (LONE_SURROGATE.test(text)) fail(`${say(what)} is not valid Unicode`);
    return Buffer.from(text, 'utf8');
  }
  const b = asBin(fail, what, v);
  if (version === 1) {
    try {
      strictUtf8.decode(b);
    } catch {
      fail(`${say(what)} is not UTF-8`);
    }
  }
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function xattrsFromWire(fail: Fail, what: What, v: unknown, version: number): Xattr[] {
  const out: Xattr[] = [];
  if (version === 1) {
    for (const [k, x] of asMap(fail, () => `${say(what)} xattrs`, v)) {
      const name = Buffer.from(asString(fail, () => `${say(what)} xattr name`, k), 'utf8');
      const value = asBin(fail, () => `${say(what)} xattr ${showName(name)}`, x);
      out.push({ name, value: Buffer.from(value.buffer, value.byteOffset, value.byteLength) });
    }
    return out.sort((a, b) => compareNames(a.name, b.name));
  }
  for (const [i, pair] of asArray(fail, () => `${say(what)} xattrs`, v).entries()) {
    const a = asArray(fail, () => `${say(what)} xattrs[${i}]`, pair);
    if (a.length !== 2) fail(`${say(what)} xattrs[${i}] is not a [name, value] pair`);
    const name = asBin(fail, () => `${say(what)} xattrs[${i}] name`, a[0]);
    const value = asBin(fail, () => `${say(what)} xattrs[${i}] value`, a[1]);
    out.push({ name: Buffer.from(name.buffer, name.byteOffset, name.byteLength), value: Buffer.from(value.buffer, value.byteOffset, value.byteLength) });
  }
  return out;
}

function entryFromWire(fail: Fail, v: unknown, version: number): Entry {
  const m = asMap(fail, 'entry', v);
  const name = bytesFromWire(fail, 'entry name', field(fail, m, 'entry', 'name'), version, false);
  const what = (): string => `entry ${showName(name)}`;
  const e: Entry = {
    name,
    type: asString(fail, () => `${say(what)} type`, field(fail, m, what, 'type')) as EntryType,
    mode: asInt(fail, () => `${say(what)} mode`, field(fail, m, what, 'mode')),
    uid: asInt(fail, () => `${say(what)} uid`, field(fail, m, what, 'uid')),
    gid: asInt(fail, () => `${say(what)} gid`, field(fail, m, what, 'gid')),
    mtimeNs: asBigInt(fail, () => `${say(what)} mtimeNs`, field(fail, m, what, 'mtimeNs')),
    size: asInt(fail, () => `${say(what)} size`, field(fail, m, what, 'size')),
  };
  if (m.has('target')) e.target = bytesFromWire(fail, () => `${say(what)} target`, m.get('target'), version, true);
  if (m.has('rdev')) e.rdev = asInt(fail, () => `${say(what)} rdev`, m.get('rdev'));
  if (m.has('xattrs')) e.xattrs = xattrsFromWire(fail, what, m.get('xattrs'), version);
  if (m.has('link')) e.link = asInt(fail, () => `${say(what)} link`, m.get('link'));
  if (m.has('nlink')) e.nlink = asInt(fail, () => `${say(what)} nlink`, m.get('nlink'));
  if (m.has('blocks')) {
    e.blocks = asArray(fail, () => `${say(what)} blocks`, m.get('blocks')).map((x, i) => extentFromWire(fail, () => `${say(what)} blocks[${i}]`, x));
  }
  if (m.has('pages')) {
    e.pages = asArray(fail, () => `${say(what)} pages`, m.get('pages')).map((x, i) => asId(fail, () => `${say(what)} pages[${i}]`, x));
  }
  if (version >= META_VERSION_OWN_KEYS && m.has('pageKeys')) {
    e.pageKeys = asArray(fail, () => `${say(what)} pageKeys`, m.get('pageKeys')).map((x, i) => asBin(fail, () => `${say(what)} pageKeys[${i}]`, x, 32));
  }
  if (m.has('dir')) e.dir = asId(fail, () => `${say(what)} dir`, m.get('dir'));
  if (version >= META_VERSION_OWN_KEYS && m.has('dirKey')) e.dirKey = asBin(fail, () => `${say(what)} dirKey`, m.get('dirKey'), 32);
  if (version >= META_VERSION_OWN_KEYS && m.has('sourceTag')) e.sourceTag = asBin(fail, () => `${say(what)} sourceTag`, m.get('sourceTag'), SOURCE_TAG_BYTES);
  return e;
}

/**
 * The typed object from a decoded msgpack value. Unknown keys are ignored (seed 003 lets metadata
 * carry extra keys). A version above META_VERSION or data encryption/compression types this fragfs
 * does not know call `tooNew`; any other problem calls `fail`. The result still needs checkMetaObject.
 */
export function metaFromWire(fail: Fail, tooNew: TooNew, value: unknown): MetaObject {
  const m = asMap(fail, 'metadata object', value);
  const kind = asString(fail, 'kind', field(fail, m, 'metadata object', 'kind'));
  if (!META_KINDS.has(kind)) fail(`unknown metadata kind ${JSON.stringify(kind)}`);
  const v = asInt(fail, 'version', field(fail, m, kind, 'v'));
  if (v > META_VERSION) tooNew(`${kind} object of version ${v} (this fragfs reads up to ${META_VERSION})`);
  if (v < META_VERSION_MIN) fail(`${kind} object of version ${v}`);
  if (kind !== 'ref') {
    const enc = asInt(fail, DATA_ENCRYPTION_TYPE_KEY, field(fail, m, kind, DATA_ENCRYPTION_TYPE_KEY));
    const comp = asInt(fail, DATA_COMPRESSION_TYPE_KEY, field(fail, m, kind, DATA_COMPRESSION_TYPE_KEY));
    if (enc !== DATA_ENCRYPTION_AES256GCM_CONVERGENT) tooNew(`data encryption type ${enc}`);
    if (comp !== DATA_COMPRESSION_ZSTD) tooNew(`data compression type ${comp}`);
  }
  const f = (key: string): unknown => field(fail, m, kind, key);
  switch (kind) {
    case 'dir':
      return {
        kind,
        v,
        entries: asArray(fail, 'dir entries', f('entries')).map((x) => entryFromWire(fail, x, v)),
      } satisfies DirObject;
    case 'manifest':
      return {
        kind,
        v,
        blocks: asArray(fail, 'manifest blocks', f('blocks')).map((x, i) => extentFromWire(fail, `manifest blocks[${i}]`, x)),
      } satisfies ManifestPageObject;
    case 'snapshot':
      return {
        kind,
        v,
        createdMs: asInt(fail, 'snapshot createdMs', f('createdMs')),
        source: asArray(fail, 'snapshot source', f('source')).map((x, i) => bytesFromWire(fail, `snapshot source[${i}]`, x, v, true)),
        hostname: asString(fail, 'snapshot hostname', f('hostname')),
        blockSize: asInt(fail, 'snapshot blockSize', f('blockSize')),
        root: entryFromWire(fail, f('root'), v),
        files: asInt(fail, 'snapshot files', f('files')),
        dirs: asInt(fail, 'snapshot dirs', f('dirs')),
        logicalBytes: asInt(fail, 'snapshot logicalBytes', f('logicalBytes')),
      } satisfies SnapshotObject;
    default: {
      const ref: RefObject = {
        kind: 'ref',
        v,
        snapshot: asId(fail, 'ref snapshot', f('snapshot')),
        createdMs: asInt(fail, 'ref createdMs', f('createdMs')),
        logicalBytes: asInt(fail, 'ref logicalBytes', f('logicalBytes')),
      };
      if (m.has('name')) ref.name = asString(fail, 'ref name', m.get('name'));
      if (m.has('tags')) ref.tags = asArray(fail, 'ref tags', m.get('tags')).map((x, i) => asString(fail, `ref tags[${i}]`, x));
      return ref;
    }
  }
}

/** A Fail that throws FragfsError(code), naming the fragment on the read side. */
export function failWith(code: 'INVALID' | 'CORRUPT', fragmentId?: string): Fail {
  return (why: string): never => {
    if (code === 'CORRUPT') {
      throw new FragfsError('CORRUPT', `metadata fragment ${fragmentId ?? '(unknown)'} is corrupt: ${why}`, {
        fragmentId,
      });
    }
    throw new FragfsError('INVALID', `bad metadata object: ${why}`);
  };
}
