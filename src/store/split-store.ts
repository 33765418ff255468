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

import { Packr, Unpackr } from 'msgpackr';
import { FragfsError } from '../errors.js';
import { DirStore, prepareFileTreeRoot, type FileTreeOpenOptions } from './dir-store.js';
import { checkId, checkNamespace, missingFragment, type FragmentKind, type Namespace } from './store.js';

export const HEADER_SUFFIX = '.meta.msgpack';
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

  static override async open(root: string, o: FileTreeOpenOptions = {}): Promise<SplitStore> {
    await prepareFileTreeRoot(root, o.readOnly ?? false);
    return new SplitStore(root, o.readOnly ?? false);
  }

  /** data: the header is the listed/committed file; meta: stored whole with the same suffix. */
  protected override suffix(kind: FragmentKind): string {
    return kind === 'ref' ? '' : HEADER_SUFFIX;
  }

  /** The payload file of a data fragment (no suffix). */
  payloadPath(ns: Namespace, id: string): string {
    checkNamespace(ns);
    checkId(id);
    return this.pathOf(ns, id, '');
  }

  override async put(ns: Namespace, id: string, bytes: Uint8Array): Promise<void> {
    if (ns?.kind !== 'data') return super.put(ns, id, bytes);
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('put');
    const { header, payload } = splitFragment(Buffer.from(bytes));
    const headerPath = this.pathOf(ns, id);
    if (await this.exists(headerPath)) return;
    const dir = this.fanDir(ns, id);
    await this.writeAtomic(ns, dir, this.pathOf(ns, id, ''), payload);
    await this.writeAtomic(ns, dir, headerPath, header);
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

  override async get(ns: Namespace, id: string): Promise<Uint8Array> {
    if (ns?.kind !== 'data') return super.get(ns, id);
    checkNamespace(ns);
    checkId(id);
    const header = await this.readHeader(ns, id);
    if (header === undefined) throw missingFragment(ns, id);
    // Read the payload straight into place after the 5 header bytes: no second 1 MiB copy.
    const s = await this.readOrUndefined(this.pathOf(ns, id, ''), header.raw ? 0 : 5);
    if (s === undefined) throw this.payloadMissing(id);
    if (!header.raw) {
      s[0] = header.status;
      s.writeUInt32BE(header.crc32, 1);
    }
    return s;
  }

  override async size(ns: Namespace, id: string): Promise<number | undefined> {
    if (ns?.kind !== 'data') return super.size(ns, id);
    checkNamespace(ns);
    checkId(id);
    const header = await this.readHeader(ns, id);
    if (header === undefined) return undefined;
    const payloadSize = await this.sizeOrUndefined(this.pathOf(ns, id, ''));
    if (payloadSize === undefined) throw this.payloadMissing(id);
    return header.raw ? payloadSize : 5 + payloadSize;
  }

  override async delete(ns: Namespace, id: string): Promise<void> {
    if (ns?.kind !== 'data') return super.delete(ns, id);
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('delete');
    const dir = this.fanDir(ns, id);
    await this.unlinkIfPresent(dir, this.pathOf(ns, id));
    await this.unlinkIfPresent(dir, this.pathOf(ns, id, ''));
  }
}
