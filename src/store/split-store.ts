// The `split` backend (seed 003's split object store): the `dir` tree, but a data fragment
// S = status(1) || crc32(4) || E is kept as two files, the payload E in objects/<fan>/<rest> and a
// SOLMET header objects/<fan>/<rest>.meta.msgpack carrying the status byte and crc32, so that the
// payload files hold nothing but ciphertext and the headers can be scanned without reading data.
// Bytes that are not of that shape (first byte with bits other than 7/6 set, or shorter than 5
// bytes) are kept whole as the payload with the header {"raw": true}.
//
// Commit marker: the header. put writes the payload first, then the header (each temp + fdatasync +
// rename); has/get/size/list see an id only when its header exists; delete removes the header
// first, then the payload. A crash thus leaves at most a payload without header (invisible, and
// overwritten by the next put of that id) or a stray temp file. Directory fsyncs are batched into
// sync() exactly as in the dir backend (see dir-store.ts).
//
// meta fragments are stored whole as meta/<fan>/<rest>.meta.msgpack, refs whole as refs/<fan>/<rest>.
//
// Trash: the dir backend's trash tree, STORE/<space>/trash/. meta and refs are single files and move
// with one rename, as in dir. A data fragment moves by its header alone: trash renames H to TH
// (trash/objects/<fan>/<rest>.meta.msgpack) and untrash renames it back; its payload P stays where
// it is, out of sight as every payload without header is. So each move is one rename, atomic
// against a crash and against every other process, and no pair is ever half moved. A payload is
// claimed by H or by TH, and is removed only when neither exists:
//
//   delete: unlink H (the commit), then P unless claimed (a trash copy keeps it).
//   purge:  rename TH to the purge mark trash/objects/<fan>/<rest>.purge (the commit: an untrash
//           finds nothing from here on), then P unless claimed, then the mark. A crash leaves the
//           mark; the next read-write open, or the next trash, untrash or purge of the id, finishes
//           the purge.
//   put of an id in the trash: writes P and H in place as usual (the trash header claims the new P).
//   untrash of an id put again: renames TH over H (the same bytes), never unlinks it, so that it
//           cannot take away a header a trash in another process has just moved there.
//
// P is removed by renaming it to a temp name first, looking again, and putting it back when a header
// claims it by then, so it never destroys a payload a put or an untrash in another process needs;
// a put whose P went meanwhile (P gone once its H is written) writes P again before it resolves.
// Until it has, a reader in another process may find H without P: get and size look again for a
// moment (about a third of a second) before they call that CORRUPT.
// Within a process, put, delete and the moves of one data fragment also run one at a time
// (key-lock.ts), which keeps even the moment between those steps out of sight.

import { link, readdir, rename, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Packr, Unpackr } from 'msgpackr';
import { FragfsError, fromFsError } from '../errors.js';
import { tempName } from './atomic-file.js';
import { DirStore, TEMP_DIR, isEnoent, prepareFileTreeRoot, type FileTreeOpenOptions } from './dir-store.js';
import { withKeyLock } from './key-lock.js';
import { checkId, checkNamespace, isValidSpaceName, missingFragment, rangeOf, type FragmentKind, type Namespace, type PutOptions } from './store.js';

export const HEADER_SUFFIX = '.meta.msgpack';
/** Waits (ms) before a header found without its payload is looked at again; then it is CORRUPT. */
const PAYLOAD_RETRY_MS = [1, 4, 16, 64, 256];
/** Suffix of the mark of a purge under way, in the trash beside where the trash header was. */
export const PURGE_SUFFIX = '.purge';
const ENC_KEY = 'FragComp::DataEncryptionType';
const COMP_KEY = 'FragComp::DataCompressionType';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** True when S has the data-fragment shape: a status byte with only bits 7/6 set, and a crc32. */
export function isSplittable(s: Uint8Array): boolean {
  return s.length >= 5 && (s[0]! & 0x3f) === 0;
}

/** The SOLMET header frame for S (the split form, or {"raw": true}) and the payload to store. */
export function splitFragment(s: Uint8Array): { header: Buffer; payload: Uint8Array } {
  let fields: Record<string, unknown>;
  let payload: Uint8Array;
  if (isSplittable(s)) {
    const status = s[0]!;
    const crc32 = ((s[1]! << 24) | (s[2]! << 16) | (s[3]! << 8) | s[4]!) >>> 0;
    fields = { [ENC_KEY]: status & 0x40 ? 1 : 0, [COMP_KEY]: status & 0x80 ? 1 : 0, crc32, status };
    payload = s.subarray(5);
  } else {
    fields = { raw: true };
    payload = s;
  }
  const header = packr.pack(['SOLMET', 0, 0, packr.pack(fields)]);
  return { header, payload };
}

export type SplitHeader = { raw: true } | { raw: false; status: number; crc32: number };

function corruptHeader(id: string, why: string): FragfsError {
  return new FragfsError('CORRUPT', `fragment ${id}: its split header is unreadable (${why})`, { fragmentId: id });
}

/** Parses and checks a header frame; anything unexpected is CORRUPT naming the fragment. */
export function parseSplitHeader(frame: Uint8Array, id: string): SplitHeader {
  let outer: unknown;
  let fields: unknown;
  try {
    outer = unpackr.unpack(frame);
    if (!Array.isArray(outer) || outer.length !== 4 || outer[0] !== 'SOLMET' || outer[1] !== 0 || outer[2] !== 0) {
      throw corruptHeader(id, 'not a plain SOLMET frame');
    }
    if (!(outer[3] instanceof Uint8Array)) throw corruptHeader(id, 'body is not binary');
    fields = unpackr.unpack(outer[3]);
  } catch (e) {
    if (e instanceof FragfsError) throw e;
    throw corruptHeader(id, 'bad msgpack');
  }
  if (typeof fields !== 'object' || fields === null) throw corruptHeader(id, 'body is not a map');
  const f = fields as Record<string, unknown>;
  if (f.raw === true && Object.keys(f).length === 1) return { raw: true };
  const { status, crc32 } = f;
  if (
    typeof status !== 'number' ||
    !Number.isInteger(status) ||
    status < 0 ||
    status > 0xff ||
    (status & 0x3f) !== 0 ||
    typeof crc32 !== 'number' ||
    !Number.isInteger(crc32) ||
    crc32 < 0 ||
    crc32 > 0xffffffff ||
    f[ENC_KEY] !== (status & 0x40 ? 1 : 0) ||
    f[COMP_KEY] !== (status & 0x80 ? 1 : 0)
  ) {
    throw corruptHeader(id, 'fields missing or inconsistent');
  }
  return { raw: false, status, crc32 };
}

export class SplitStore extends DirStore {
  override readonly backend = 'split' as const;
  /** Key prefix of this store's fragments in key-lock.ts (one store, one prefix, in any handle). */
  private readonly lockPrefix = resolve(this.root);

  static override async open(root: string, o: FileTreeOpenOptions = {}): Promise<SplitStore> {
    await prepareFileTreeRoot(root, o.readOnly ?? false);
    const store = new SplitStore(root, o.readOnly ?? false);
    if (!store.readOnly) await store.settleTrash();
    return store;
  }

  /** data: the header is the listed/committed file; meta: stored whole with the same suffix. */
  protected override suffix(kind: FragmentKind): string {
    // Packs and their indexes are stored whole with no suffix, as refs are: a pack holds fragments
    // of several ids, so it has no single header to split off.
    return kind === 'meta' || kind === 'data' ? HEADER_SUFFIX : '';
  }

  /** The payload file of a data fragment (no suffix). */
  payloadPath(ns: Namespace, id: string): string {
    checkNamespace(ns);
    checkId(id);
    return this.pathOf(ns, id, '');
  }

  override async put(ns: Namespace, id: string, bytes: Uint8Array, o?: PutOptions): Promise<void> {
    if (ns?.kind !== 'data') return super.put(ns, id, bytes, o);
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('put');
    const { header, payload } = splitFragment(Buffer.from(bytes));
    await this.serialized(ns, id, async () => {
      const headerPath = this.pathOf(ns, id);
      if (await this.exists(headerPath)) return;
      const dir = this.fanDir(ns, id);
      const payloadPath = this.pathOf(ns, id, '');
      await this.writeAtomic(ns, dir, payloadPath, payload);
      await this.writeAtomic(ns, dir, headerPath, header);
      // A purge or delete of this id in another process can take the payload just written (header comment).
      if (!(await this.exists(payloadPath))) await this.writeAtomic(ns, dir, payloadPath, payload);
    });
  }

  private async readHeader(ns: Namespace, id: string): Promise<SplitHeader | undefined> {
    const frame = await this.readOrUndefined(this.pathOf(ns, id));
    return frame === undefined ? undefined : parseSplitHeader(frame, id);
  }

  private payloadMissing(id: string): FragfsError {
    return new FragfsError('CORRUPT', `fragment ${id}: split header present but its payload file is missing`, {
      fragmentId: id,
    });
  }

  override async getRange(ns: Namespace, id: string, offset: number, length: number): Promise<Uint8Array> {
    if (ns?.kind !== 'data') return super.getRange(ns, id, offset, length);
    // A data fragment is two files here: the range of the whole, as getRangeOf reads any store.
    return rangeOf(await this.get(ns, id), ns, id, offset, length);
  }

  override async get(ns: Namespace, id: string): Promise<Uint8Array> {
    if (ns?.kind !== 'data') return super.get(ns, id);
    checkNamespace(ns);
    checkId(id);
    for (let attempt = 0; ; attempt++) {
      const header = await this.readHeader(ns, id);
      if (header === undefined) throw missingFragment(ns, id);
      // Read the payload straight into place after the 5 header bytes: no second 1 MiB copy.
      const s = await this.readOrUndefined(this.pathOf(ns, id, ''), header.raw ? 0 : 5);
      if (s !== undefined) {
        if (!header.raw) {
          s[0] = header.status;
          s.writeUInt32BE(header.crc32, 1);
        }
        return s;
      }
      await this.payloadGone(id, attempt);
    }
  }

  override async size(ns: Namespace, id: string): Promise<number | undefined> {
    if (ns?.kind !== 'data') return super.size(ns, id);
    checkNamespace(ns);
    checkId(id);
    for (let attempt = 0; ; attempt++) {
      const header = await this.readHeader(ns, id);
      if (header === undefined) return undefined;
      const payloadSize = await this.sizeOrUndefined(this.pathOf(ns, id, ''));
      if (payloadSize !== undefined) return header.raw ? payloadSize : 5 + payloadSize;
      await this.payloadGone(id, attempt);
    }
  }

  /**
   * A payload missing after its header was read: waits a moment before the caller looks again
   * (header first: gone too when the fragment was deleted or purged meanwhile), and after the last
   * wait throws CORRUPT. A put beside a purge of its id in another process can leave its header
   * without payload for as long as it takes the put to write the payload again (header comment).
   */
  private async payloadGone(id: string, attempt: number): Promise<void> {
    const wait = PAYLOAD_RETRY_MS[attempt];
    if (wait === undefined) throw this.payloadMissing(id);
    await sleep(wait);
  }

  override async delete(ns: Namespace, id: string): Promise<void> {
    if (ns?.kind !== 'data') return super.delete(ns, id);
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('delete');
    await this.serialized(ns, id, async () => {
      await this.unlinkIfPresent(this.fanDir(ns, id), this.pathOf(ns, id));
      // A trash copy of the id keeps the payload (delete does not touch the trash).
      await this.dropUnclaimedPayload(ns, id);
    });
  }

  // ---- trash of data fragments (header comment) -------------------------------------------------

  /** Runs `fn` after every other put, delete or move of the same data fragment in this process. */
  private serialized<T>(ns: Namespace, id: string, fn: () => Promise<T>): Promise<T> {
    return withKeyLock(`${this.lockPrefix}\0${ns.space}\0${id}`, fn);
  }

  /** The files of a data fragment: in place, its trash header, and the mark of a purge under way. */
  private filesOf(ns: Namespace, id: string) {
    return {
      dir: this.fanDir(ns, id),
      h: this.pathOf(ns, id),
      p: this.pathOf(ns, id, ''),
      trashDir: this.fanDir(ns, id, true),
      th: this.trashPathOf(ns, id),
      purging: this.trashPathOf(ns, id, PURGE_SUFFIX),
      tmpDir: join(this.root, ns.space, TEMP_DIR),
    };
  }

  /**
   * Unlinks the payload P of a data fragment that neither a header in place nor one in the trash
   * claims. P is renamed to a temp name first, so that whatever is at P is taken whole (a put's or
   * an untrash's landing meanwhile too), then looked at again: unlinked when still unclaimed, else
   * put back (unless a newer P is there). A put that lost its P this way writes it again.
   */
  private async dropUnclaimedPayload(ns: Namespace, id: string): Promise<void> {
    const f = this.filesOf(ns, id);
    const claimed = async () => (await this.exists(f.h)) || (await this.exists(f.th));
    if (await claimed()) return;
    const grab = join(f.tmpDir, tempName());
    try {
      await rename(f.p, grab);
    } catch (e) {
      if (isEnoent(e)) return;
      throw fromFsError(e, 'cannot delete fragment file', f.p);
    }
    this.syncer.touched(f.dir);
    try {
      if (!(await claimed())) return;
      try {
        await link(grab, f.p);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    } catch (e) {
      throw fromFsError(e, 'cannot delete fragment file', f.p);
    } finally {
      await unlink(grab).catch(() => undefined);
    }
  }

  /** Finishes a purge of the id that a crash interrupted (its mark exists): payload, then mark. */
  private async settle(ns: Namespace, id: string): Promise<void> {
    const f = this.filesOf(ns, id);
    if (!(await this.exists(f.purging))) return;
    await this.dropUnclaimedPayload(ns, id);
    await this.unlinkIfPresent(f.trashDir, f.purging);
  }

  /**
   * Finishes every purge a crash interrupted, in every space (a read-write open runs it). Safe
   * beside other processes using the store: a purge mark is never taken back, and the payload is
   * dropped only while no header claims it.
   */
  async settleTrash(): Promise<void> {
    this.checkWritable('settle the trash');
    let spaces: string[];
    try {
      spaces = (await readdir(this.root)).filter(isValidSpaceName);
    } catch (e) {
      throw fromFsError(e, 'cannot list store folder', this.root);
    }
    for (const space of spaces) {
      const ns: Namespace = { space, kind: 'data' };
      // Purge marks are named like fragments with their own suffix, in the trash's fan-out tree.
      for await (const id of this.walk(ns, PURGE_SUFFIX, true)) await this.serialized(ns, id, () => this.settle(ns, id));
    }
  }

  override async trash(ns: Namespace, id: string): Promise<void> {
    if (ns?.kind !== 'data') return super.trash(ns, id);
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('trash');
    await this.serialized(ns, id, async () => {
      await this.settle(ns, id);
      const f = this.filesOf(ns, id);
      // Looked at first so that a trash of an absent id makes no trash folder.
      if (!(await this.exists(f.h))) return;
      await this.moveFile(f.dir, f.h, f.trashDir, f.th);
    });
  }

  override async untrash(ns: Namespace, id: string): Promise<void> {
    if (ns?.kind !== 'data') return super.untrash(ns, id);
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('untrash');
    await this.serialized(ns, id, async () => {
      await this.settle(ns, id);
      const f = this.filesOf(ns, id);
      if (!(await this.exists(f.th))) return;
      // Over an H put meanwhile too (the same bytes): a rename, never an unlink, so that it cannot
      // take away the header a trash in another process has just moved.
      await this.moveFile(f.trashDir, f.th, f.dir, f.h);
    });
  }

  override async purge(ns: Namespace, id: string): Promise<void> {
    if (ns?.kind !== 'data') return super.purge(ns, id);
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('purge');
    await this.serialized(ns, id, async () => {
      await this.settle(ns, id);
      const f = this.filesOf(ns, id);
      if (!(await this.exists(f.th))) return;
      // The commit: the trash header becomes the purge mark (an untrash finds nothing from here on).
      if (!(await this.moveFile(f.trashDir, f.th, f.trashDir, f.purging))) return;
      await this.settle(ns, id);
    });
  }
}
