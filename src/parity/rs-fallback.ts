// The Reed-Solomon code of @ronomon/reed-solomon 6.0.0 in TypeScript, for machines where its addon
// is not built: the same fields, matrices, bit-matrices and packet layout, so the parity it writes
// is the addon's byte for byte and either codec repairs what the other protected (docs/FORMAT.md,
// "Parity", defines the code; rs-codec.ts picks one of the two).

import type { RsBinding } from './rs-codec.js';

const MAX_K = 24;
const MAX_M = 6;

/**
 * The addon's PARAMETERS table (binding.c, found by its `search()`): for data shards k and parity
 * shards m, PARAMETERS[k - 1][m - 1] = [w, p, x, y, b]: the field GF(2^w) with primitive polynomial
 * p, the Cauchy offsets x (columns) and y (rows), -1 when m <= 2, and b, the number of ones of the
 * resulting bit-matrix, checked when a context is made so that a wrong entry cannot go unnoticed.
 */
const PARAMETERS: readonly (readonly (readonly [number, number, number, number, number])[])[] = [
  [[2, 7, -1, -1, 2], [2, 7, -1, -1, 4], [2, 7, 0, 1, 6], [4, 19, 0, 1, 16], [4, 19, 0, 1, 20], [4, 19, 0, 1, 24]],
  [[2, 7, -1, -1, 4], [2, 7, -1, -1, 9], [4, 19, 0, 4, 28], [4, 19, 0, 5, 40], [4, 19, 2, 9, 51], [4, 19, 4, 10, 62]],
  [[2, 7, -1, -1, 6], [4, 19, -1, -1, 26], [4, 19, 0, 9, 44], [4, 19, 1, 8, 63], [4, 19, 1, 9, 82], [4, 19, 0, 9, 101]],
  [[4, 19, -1, -1, 16], [4, 19, -1, -1, 36], [4, 19, 0, 9, 63], [4, 19, 3, 11, 89], [4, 19, 3, 11, 116], [4, 19, 11, 4, 145]],
  [[4, 19, -1, -1, 20], [4, 19, -1, -1, 47], [4, 19, 4, 13, 82], [4, 19, 3, 12, 118], [4, 19, 0, 9, 152], [4, 19, 0, 9, 185]],
  [[4, 19, -1, -1, 24], [4, 19, -1, -1, 58], [4, 19, 2, 12, 102], [4, 19, 2, 12, 144], [4, 19, 0, 9, 186], [4, 19, 0, 9, 231]],
  [[4, 19, -1, -1, 28], [4, 19, -1, -1, 71], [4, 19, 1, 13, 123], [4, 19, 2, 12, 174], [4, 19, 0, 9, 226], [4, 19, 7, 0, 277]],
  [[4, 19, -1, -1, 32], [4, 19, -1, -1, 84], [4, 19, 2, 13, 142], [4, 19, 2, 12, 205], [4, 19, 0, 9, 265], [4, 19, 0, 8, 328]],
  [[4, 19, -1, -1, 36], [4, 19, -1, -1, 97], [4, 19, 1, 13, 162], [4, 19, 2, 12, 237], [4, 19, 0, 9, 308], [4, 19, 1, 10, 376]],
  [[4, 19, -1, -1, 40], [4, 19, -1, -1, 111], [4, 19, 1, 13, 186], [4, 19, 0, 12, 268], [4, 19, 0, 11, 347], [4, 19, 0, 10, 426]],
  [[4, 19, -1, -1, 44], [4, 19, -1, -1, 125], [4, 19, 0, 13, 211], [4, 19, 0, 12, 300], [4, 19, 0, 11, 390], [8, 135, 58, 188, 1401]],
  [[4, 19, -1, -1, 48], [4, 19, -1, -1, 139], [4, 19, 3, 0, 234], [4, 19, 0, 12, 334], [8, 113, 24, 208, 1269], [8, 135, 57, 188, 1577]],
  [[4, 19, -1, -1, 52], [4, 19, -1, -1, 155], [4, 19, 0, 13, 261], [8, 135, 59, 189, 1037], [8, 113, 27, 236, 1393], [8, 113, 27, 236, 1733]],
  [[4, 19, -1, -1, 56], [4, 19, -1, -1, 171], [8, 169, 4, 252, 777], [8, 135, 58, 189, 1121], [8, 135, 58, 189, 1508], [8, 135, 58, 188, 1880]],
  [[4, 19, -1, -1, 60], [8, 135, -1, -1, 353], [8, 113, 24, 209, 836], [8, 135, 58, 189, 1225], [8, 101, 28, 232, 1644], [8, 113, 120, 241, 2037]],
  [[8, 29, -1, -1, 128], [8, 135, -1, -1, 380], [8, 113, 22, 213, 901], [8, 113, 22, 212, 1324], [8, 101, 28, 232, 1765], [8, 101, 28, 232, 2195]],
  [[8, 29, -1, -1, 136], [8, 135, -1, -1, 407], [8, 113, 22, 213, 960], [8, 135, 58, 189, 1423], [8, 101, 27, 232, 1880], [8, 101, 27, 232, 2343]],
  [[8, 29, -1, -1, 144], [8, 135, -1, -1, 434], [8, 113, 24, 213, 1027], [8, 113, 22, 212, 1513], [8, 195, 8, 32, 2019], [8, 113, 205, 126, 2500]],
  [[8, 29, -1, -1, 152], [8, 135, -1, -1, 462], [8, 113, 22, 213, 1086], [8, 113, 23, 212, 1604], [8, 195, 7, 32, 2131], [8, 195, 3, 60, 2654]],
  [[8, 29, -1, -1, 160], [8, 135, -1, -1, 490], [8, 113, 22, 213, 1147], [8, 113, 22, 212, 1695], [8, 195, 4, 238, 2270], [8, 113, 21, 233, 2816]],
  [[8, 29, -1, -1, 168], [8, 135, -1, -1, 518], [8, 113, 21, 213, 1225], [8, 113, 21, 212, 1801], [8, 195, 3, 60, 2395], [8, 195, 3, 60, 2980]],
  [[8, 29, -1, -1, 176], [8, 135, -1, -1, 546], [8, 113, 20, 213, 1292], [8, 113, 21, 212, 1906], [8, 195, 35, 28, 2512], [8, 195, 3, 60, 3135]],
  [[8, 29, -1, -1, 184], [8, 135, -1, -1, 574], [8, 113, 19, 213, 1366], [8, 113, 19, 212, 2008], [8, 195, 3, 238, 2652], [8, 113, 205, 126, 3291]],
  [[8, 29, -1, -1, 192], [8, 135, -1, -1, 603], [8, 113, 18, 213, 1437], [8, 195, 125, 91, 2110], [8, 195, 3, 238, 2787], [8, 195, 42, 225, 3466]],
];

/** GF(2^w) as the addon builds it: log and exp tables of its primitive polynomial. */
interface Field {
  w: number;
  log: Int32Array;
  exp: Int32Array;
  /** Ones in the w x w bit-matrix of multiplication by n. */
  bit: Int32Array;
  /** Field elements ordered by their number of ones (ties: smaller first), 0 first. */
  min: Int32Array;
}

function fail(what: string): never {
  throw new Error(`Reed-Solomon (js): ${what}`);
}

function gMultiply(f: Field, a: number, b: number): number {
  if (a === 0 || b === 0) return 0;
  return f.exp[(f.log[a]! + f.log[b]!) % ((1 << f.w) - 1)]!;
}

function gDivide(f: Field, a: number, b: number): number {
  if (b === 0) fail('division by zero');
  if (a === 0) return 0;
  const y = (1 << f.w) - 1;
  return f.exp[(f.log[a]! + y - f.log[b]!) % y]!;
}

function createField(w: number, p: number): Field {
  const y = (1 << w) - 1;
  const z = 1 << w;
  const log = new Int32Array(z).fill(y);
  const exp = new Int32Array(z);
  let b = 1;
  for (let a = 0; a < y; a++) {
    if (log[b] !== y) fail(`${p} is not primitive in GF(2^${w})`);
    log[b] = a;
    exp[a] = b;
    b <<= 1;
    if (b & z) b = (b ^ p) & y;
  }
  const f: Field = { w, log, exp, bit: new Int32Array(z), min: new Int32Array(z) };
  for (let n = 0; n < z; n++) {
    let x = n;
    let count = 0;
    for (let r = 0; r < w; r++) {
      for (let c = 0; c < w; c++) if (x & (1 << c)) count++;
      x = gMultiply(f, x, 2);
    }
    f.bit[n] = count;
  }
  // The addon's selection order exactly, ties included: row 1 of an m = 2 code is min[1..k].
  f.min[0] = 0;
  for (let a = 1; a < z; a++) {
    const c = f.min[a - 1]!;
    let d = -1;
    for (let b2 = 1; b2 < z; b2++) {
      if (f.bit[b2]! < f.bit[c]!) continue;
      if (f.bit[b2] === f.bit[c] && b2 <= c) continue;
      if (d === -1 || f.bit[b2]! < f.bit[d]!) d = b2;
    }
    f.min[a] = d;
  }
  return f;
}

/** The m x k coding matrix over GF(2^w) (row 0 all ones) and its bit-matrix's number of ones. */
function createMatrix(f: Field, k: number, m: number, x: number, y: number): { matrix: Uint8Array; count: number } {
  const matrix = new Uint8Array(k * m);
  let count = f.bit[1]! * k;
  if (m <= 2) {
    matrix.fill(1, 0, k);
    if (m === 2) {
      for (let c = 0; c < k; c++) {
        matrix[k + c] = f.min[c + 1]!;
        count += f.bit[matrix[k + c]!]!;
      }
    }
    return { matrix, count };
  }
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < k; c++) matrix[r * k + c] = gDivide(f, 1, (y + r) ^ (x + c));
  }
  for (let r = 1; r < m; r++) {
    for (let c = 0; c < k; c++) matrix[r * k + c] = gDivide(f, matrix[r * k + c]!, matrix[c]!);
  }
  for (let c = 0; c < k; c++) matrix[c] = gDivide(f, matrix[c]!, matrix[c]!);
  // Each further row is divided by the element that leaves its bit-matrix fewest ones (fewer XORs).
  for (let r = 1; r < m; r++) {
    const rk = r * k;
    let result = 0;
    let column = -1;
    for (let c = 0; c < k; c++) result += f.bit[matrix[rk + c]!]!;
    for (let c = 0; c < k; c++) {
      let bits = 0;
      for (let d = 0; d < k; d++) bits += f.bit[gDivide(f, matrix[rk + d]!, matrix[rk + c]!)]!;
      if (bits < result) {
        result = bits;
        column = matrix[rk + c]!;
      }
    }
    if (column >= 0) for (let c = 0; c < k; c++) matrix[rk + c] = gDivide(f, matrix[rk + c]!, column);
    count += result;
  }
  return { matrix, count };
}

/**
 * The (m w) x (k w) bit-matrix over GF(2): row r w + b, column c w + a holds bit b of
 * matrix[r][c] x 2^a. Row r w + b computes packet b of parity shard r from packet a of data shard c.
 */
function createBitmatrixEncoding(f: Field, k: number, m: number, matrix: Uint8Array): { bitmatrix: Uint8Array; count: number } {
  const w = f.w;
  const bitmatrix = new Uint8Array(k * w * m * w);
  let count = 0;
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < k; c++) {
      let x = matrix[k * r + c]!;
      for (let a = 0; a < w; a++) {
        for (let b = 0; b < w; b++) {
          const bitValue = x & (1 << b) ? 1 : 0;
          bitmatrix[r * w * k * w + w * c + a + k * w * b] = bitValue;
          count += bitValue;
        }
        x = gMultiply(f, x, 2);
      }
    }
  }
  return { bitmatrix, count };
}

/** Inverts a square matrix over GF(2) (Gauss-Jordan); `source` is destroyed. */
function invertBitmatrix(source: Uint8Array, rows: number): Uint8Array {
  const cols = rows;
  const target = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) target[r * cols + r] = 1;
  const swapRows = (mx: Uint8Array, a: number, b: number): void => {
    for (let i = 0; i < cols; i++) {
      const t = mx[a * cols + i]!;
      mx[a * cols + i] = mx[b * cols + i]!;
      mx[b * cols + i] = t;
    }
  };
  for (let c = 0; c < cols; c++) {
    if (source[c * cols + c] === 0) {
      let r = c + 1;
      while (r < rows && source[r * cols + c] === 0) r++;
      if (r === rows) fail('the decoding matrix is not invertible');
      swapRows(source, c, r);
      swapRows(target, c, r);
    }
    for (let r = c + 1; r < rows; r++) {
      if (source[r * cols + c] !== 0) {
        for (let i = 0; i < cols; i++) {
          source[r * cols + i]! ^= source[c * cols + i]!;
          target[r * cols + i]! ^= target[c * cols + i]!;
        }
      }
    }
  }
  for (let r = rows - 1; r >= 0; r--) {
    for (let c = 0; c < r; c++) {
      if (source[c * cols + r]) {
        for (let i = 0; i < cols; i++) {
          source[c * cols + i]! ^= source[r * cols + i]!;
          target[c * cols + i]! ^= target[r * cols + i]!;
        }
      }
    }
  }
  return target;
}

/** The rows that give the k data shards from the k shards `sourceIndex` (in order). */
function createBitmatrixDecoding(w: number, k: number, sourceIndex: readonly number[], encoding: Uint8Array): Uint8Array {
  const kww = k * w * w;
  const matrix = new Uint8Array(k * kww);
  for (let a = 0; a < k; a++) {
    const s = sourceIndex[a]!;
    if (s < k) {
      let index = kww * a + s * w;
      for (let b = 0; b < w; b++) {
        matrix[index] = 1;
        index += k * w + 1;
      }
    } else {
      matrix.set(encoding.subarray(kww * (s - k), kww * (s - k + 1)), kww * a);
    }
  }
  return invertBitmatrix(matrix, k * w);
}

/** A code ready to use: what `create(k, m)` returns. */
interface RsContext {
  readonly kind: 'fragfs-rs-js';
  w: number;
  k: number;
  m: number;
  bitmatrix: Uint8Array;
  /** Decoding rows by the bit-mask of the k source shards they read (a repair reuses them). */
  decoders: Map<number, Uint8Array>;
}

function create(k: number, m: number): RsContext {
  if (!Number.isInteger(k) || !Number.isInteger(m)) throw new Error('bad arguments, expected: (int k, int m)');
  if (k < 1) throw new Error('k < 1');
  if (k > MAX_K) throw new Error('k > MAX_K');
  if (m < 1) throw new Error('m < 1');
  if (m > MAX_M) throw new Error('m > MAX_M');
  const [w, p, x, y, b] = PARAMETERS[k - 1]![m - 1]!;
  const f = createField(w, p);
  const { matrix, count } = createMatrix(f, k, m, x, y);
  if (count !== b) fail(`the matrix for ${k}+${m} has ${count} ones, the addon's ${b}`);
  for (let c = 0; c < k; c++) if (matrix[c] !== 1) fail(`row 0 of ${k}+${m} is not all ones`);
  const enc = createBitmatrixEncoding(f, k, m, matrix);
  if (enc.count !== b) fail(`the bit-matrix for ${k}+${m} has ${enc.count} ones, the addon's ${b}`);
  return { kind: 'fragfs-rs-js', w, k, m, bitmatrix: enc.bitmatrix, decoders: new Map() };
}

/**
 * Bytes per packet: a shard is cut into groups of w packets, bit-row a of a symbol living in packet
 * a. The addon halves the packet (while it is even and over 64 bytes) until one group of every
 * source and the target fit in 1 MiB of cache; the packet size changes the parity, so it is kept.
 */
export function packetSize(w: number, k: number, shardSize: number): number {
  let chunkSize = shardSize / w;
  while (chunkSize > 64 && chunkSize % 2 === 0 && (1 + k * w) * chunkSize > 1048576) chunkSize /= 2;
  return chunkSize;
}

// XOR kernels on 32-bit words, up to four sources per pass so each target word is written once
// per four sources; `put*` start a target packet, `add*` fold more sources into it.
function put2(t: Int32Array, to: number, a: Int32Array, ao: number, b: Int32Array, bo: number, n: number): void {
  for (let i = 0; i < n; i++) t[to + i] = a[ao + i]! ^ b[bo + i]!;
}
function put3(t: Int32Array, to: number, a: Int32Array, ao: number, b: Int32Array, bo: number, c: Int32Array, co: number, n: number): void {
  for (let i = 0; i < n; i++) t[to + i] = a[ao + i]! ^ b[bo + i]! ^ c[co + i]!;
}
function put4(t: Int32Array, to: number, a: Int32Array, ao: number, b: Int32Array, bo: number, c: Int32Array, co: number, d: Int32Array, dOff: number, n: number): void {
  for (let i = 0; i < n; i++) t[to + i] = a[ao + i]! ^ b[bo + i]! ^ c[co + i]! ^ d[dOff + i]!;
}
function add1(t: Int32Array, to: number, a: Int32Array, ao: number, n: number): void {
  for (let i = 0; i < n; i++) t[to + i]! ^= a[ao + i]!;
}
function add2(t: Int32Array, to: number, a: Int32Array, ao: number, b: Int32Array, bo: number, n: number): void {
  for (let i = 0; i < n; i++) t[to + i]! ^= a[ao + i]! ^ b[bo + i]!;
}
function add3(t: Int32Array, to: number, a: Int32Array, ao: number, b: Int32Array, bo: number, c: Int32Array, co: number, n: number): void {
  for (let i = 0; i < n; i++) t[to + i]! ^= a[ao + i]! ^ b[bo + i]! ^ c[co + i]!;
}
function add4(t: Int32Array, to: number, a: Int32Array, ao: number, b: Int32Array, bo: number, c: Int32Array, co: number, d: Int32Array, dOff: number, n: number): void {
  for (let i = 0; i < n; i++) t[to + i]! ^= a[ao + i]! ^ b[bo + i]! ^ c[co + i]! ^ d[dOff + i]!;
}

/** Target words [to, to + n) = XOR of the `count` source packets (views v, word offsets o). */
function xorPackets(t: Int32Array, to: number, v: Int32Array[], o: number[], count: number, n: number): void {
  let i: number;
  switch (Math.min(count, 4)) {
    case 1:
      t.set(v[0]!.subarray(o[0]!, o[0]! + n), to);
      i = 1;
      break;
    case 2:
      put2(t, to, v[0]!, o[0]!, v[1]!, o[1]!, n);
      i = 2;
      break;
    case 3:
      put3(t, to, v[0]!, o[0]!, v[1]!, o[1]!, v[2]!, o[2]!, n);
      i = 3;
      break;
    default:
      put4(t, to, v[0]!, o[0]!, v[1]!, o[1]!, v[2]!, o[2]!, v[3]!, o[3]!, n);
      i = 4;
  }
  for (; i + 4 <= count; i += 4) add4(t, to, v[i]!, o[i]!, v[i + 1]!, o[i + 1]!, v[i + 2]!, o[i + 2]!, v[i + 3]!, o[i + 3]!, n);
  const left = count - i;
  if (left === 3) add3(t, to, v[i]!, o[i]!, v[i + 1]!, o[i + 1]!, v[i + 2]!, o[i + 2]!, n);
  else if (left === 2) add2(t, to, v[i]!, o[i]!, v[i + 1]!, o[i + 1]!, n);
  else if (left === 1) add1(t, to, v[i]!, o[i]!, n);
}

function words(u: Uint8Array): Int32Array {
  return new Int32Array(u.buffer, u.byteOffset, u.byteLength >>> 2);
}

/**
 * Shard `targetIndex` from the k shards `sourceIndex` through the w rows of `row` (k w columns
 * each): packet a of each group is the XOR of the source packets whose column row a has set.
 */
function dot(w: number, k: number, shards: Uint8Array[], shardSize: number, row: Uint8Array, sourceIndex: readonly number[], targetIndex: number): void {
  const chunk = packetSize(w, k, shardSize);
  // Which (source, packet) each target packet reads: fixed for the whole shard.
  const plan: { b: number; c: number }[][] = [];
  for (let a = 0; a < w; a++) {
    const uses: { b: number; c: number }[] = [];
    for (let b = 0; b < k; b++) for (let c = 0; c < w; c++) if (row[a * k * w + b * w + c]) uses.push({ b, c });
    plan.push(uses);
  }
  const target = shards[targetIndex]!;
  const aligned = chunk % 4 === 0 && target.byteOffset % 4 === 0 && sourceIndex.every((s) => shards[s]!.byteOffset % 4 === 0);
  const n = Math.ceil(chunk / 4);
  const v: Int32Array[] = [];
  const o: number[] = [];
  if (aligned) {
    const tw = words(target);
    const sw = sourceIndex.map((s) => words(shards[s]!));
    for (let off = 0; off < shardSize; off += w * chunk) {
      for (let a = 0; a < w; a++) {
        const uses = plan[a]!;
        if (uses.length === 0) continue;
        uses.forEach(({ b, c }, i) => {
          v[i] = sw[b]!;
          o[i] = (off + c * chunk) >>> 2;
        });
        xorPackets(tw, (off + a * chunk) >>> 2, v, o, uses.length, n);
      }
    }
    return;
  }
  // Packets that do not start on a 4-byte boundary are copied into word-aligned scratch first, a
  // slice of every packet at a time so that the scratch (about 1 MiB, the addon's own budget) stays
  // in cache; XOR works byte by byte, so slicing changes nothing in the result.
  const used = new Set<number>();
  for (const uses of plan) for (const { b, c } of uses) used.add(b * w + c);
  const sliceWords = Math.min(n, Math.max(16, Math.floor(262144 / (k * w + 1))));
  const scratchBytes = new Uint8Array((k * w + 1) * sliceWords * 4);
  const scratch = words(scratchBytes);
  const out = k * w * sliceWords;
  for (let off = 0; off < shardSize; off += w * chunk) {
    for (let from = 0; from < chunk; from += sliceWords * 4) {
      const len = Math.min(sliceWords * 4, chunk - from);
      const lenWords = Math.ceil(len / 4);
      for (const bc of used) {
        const src = shards[sourceIndex[Math.floor(bc / w)]!]!;
        const at = off + (bc % w) * chunk + from;
        scratchBytes.set(src.subarray(at, at + len), bc * sliceWords * 4);
      }
      for (let a = 0; a < w; a++) {
        const uses = plan[a]!;
        if (uses.length === 0) continue;
        uses.forEach(({ b, c }, i) => {
          v[i] = scratch;
          o[i] = (b * w + c) * sliceWords;
        });
        xorPackets(scratch, out, v, o, uses.length, lenWords);
        target.set(scratchBytes.subarray(out * 4, out * 4 + len), off + a * chunk + from);
      }
    }
  }
}

function xorShard(source: Uint8Array, target: Uint8Array, first: boolean): void {
  if (first) {
    target.set(source);
    return;
  }
  if (source.byteOffset % 4 === 0 && target.byteOffset % 4 === 0) {
    add1(words(target), 0, words(source), 0, source.length >>> 2);
    for (let i = source.length & ~3; i < source.length; i++) target[i]! ^= source[i]!;
  } else {
    for (let i = 0; i < source.length; i++) target[i]! ^= source[i]!;
  }
}

function flagsCount(flags: number): number {
  let count = 0;
  for (let f = flags; f > 0; f >>>= 1) if (f & 1) count++;
  return count;
}

function flagsFirst(flags: number): number {
  let i = 0;
  while ((flags & (1 << i)) === 0) i++;
  return i;
}

/**
 * The addon's reed_solomon_encode, step for step: the same shortcuts (k = 1 copies; one lost shard
 * among the data and parity shard 0 is their XOR) and, otherwise, lost data shards from a decoding
 * matrix, then every parity shard not among the sources. It writes exactly the shards the addon
 * writes (which may be more than `targets`), with the same bytes.
 */
function encodeShards(ctx: RsContext, sources: number, targets: number, shards: Uint8Array[], shardSize: number): void {
  const { w, k, m, bitmatrix } = ctx;
  if (k === 1) {
    const source = shards[flagsFirst(sources)]!;
    for (let i = 0; i < k + m; i++) if (targets & (1 << i)) shards[i]!.set(source);
    return;
  }
  const lowMask = (1 << (k + 1)) - 1;
  if (flagsCount(targets) === 1 && flagsCount(sources & lowMask) === k && flagsCount(targets & lowMask) === 1) {
    const target = shards[flagsFirst(targets)]!;
    let first = true;
    for (let i = 0; i < k + 1; i++) {
      if (sources & (1 << i)) {
        xorShard(shards[i]!, target, first);
        first = false;
      }
    }
    return;
  }
  const kww = k * w * w;
  let max = k;
  let kerasures = 0;
  for (let i = 0; i < k; i++) {
    if (!(sources & (1 << i))) {
      max = i;
      kerasures++;
    }
  }
  if (!(sources & (1 << k))) max = k;
  if (kerasures > 1 || (kerasures === 1 && !(sources & (1 << k)))) {
    const s: number[] = [];
    let mask = 0;
    for (let si = 0; s.length < k; si++) {
      if (sources & (1 << si)) {
        s.push(si);
        mask |= 1 << si;
      }
    }
    let decoding = ctx.decoders.get(mask);
    if (decoding === undefined) {
      decoding = createBitmatrixDecoding(w, k, s, bitmatrix);
      if (ctx.decoders.size >= 64) ctx.decoders.clear();
      ctx.decoders.set(mask, decoding);
    }
    for (let i = 0; kerasures > 0 && i < max; i++) {
      if (!(sources & (1 << i))) {
        dot(w, k, shards, shardSize, decoding.subarray(kww * i, kww * (i + 1)), s, i);
        kerasures--;
      }
    }
  }
  if (kerasures > 0) {
    const s: number[] = [];
    for (let si = 0; si < k; si++) s.push(si < max ? si : si + 1);
    dot(w, k, shards, shardSize, bitmatrix.subarray(0, kww), s, max);
  }
  const all: number[] = [];
  for (let si = 0; si < k; si++) all.push(si);
  for (let i = 0; i < m; i++) {
    if (!(sources & (1 << (k + i)))) dot(w, k, shards, shardSize, bitmatrix.subarray(kww * i, kww * (i + 1)), all, k + i);
  }
}

function isUint(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

/**
 * `encode` with the addon's arguments and checks (the same messages); the work runs on the main
 * thread at the next turn of the event loop, then `end` is called.
 */
const encode: RsBinding['encode'] = (context, sources, targets, buffer, bufferOffset, bufferSize, parity, parityOffset, paritySize, end) => {
  const ctx = context as RsContext;
  if (
    typeof ctx !== 'object' || ctx === null || ctx.kind !== 'fragfs-rs-js' ||
    !isUint(sources) || !isUint(targets) || !(buffer instanceof Uint8Array) || !isUint(bufferOffset) || !isUint(bufferSize) ||
    !(parity instanceof Uint8Array) || !isUint(parityOffset) || !isUint(paritySize) || typeof end !== 'function'
  ) {
    throw new Error('bad arguments, expected: (context, int sources, int targets, Buffer buffer, int bufferOffset, int bufferSize, Buffer parity, int parityOffset, int paritySize, function end)');
  }
  const { w, k, m } = ctx;
  if (sources >= 2 ** (k + m)) throw new Error('sources > k + m');
  const sourcesCount = flagsCount(sources);
  if (sourcesCount === 0) throw new Error('sources == 0');
  if (sourcesCount < k) throw new Error('sources < k');
  if (targets >= 2 ** (k + m)) throw new Error('targets > k + m');
  const targetsCount = flagsCount(targets);
  if (targetsCount === 0) throw new Error('targets == 0');
  if (targetsCount > m) throw new Error('targets > m');
  if ((sources & targets) !== 0) throw new Error('(sources & targets) != 0');
  if (bufferSize === 0) throw new Error('bufferSize == 0');
  if (bufferOffset + bufferSize > buffer.length) throw new Error('bufferOffset + bufferSize > buffer.length');
  if (bufferSize % k !== 0) throw new Error('bufferSize % k != 0');
  const shardSize = bufferSize / k;
  if (shardSize % w !== 0) throw new Error('shardSize % w != 0');
  if (shardSize % 8 !== 0) throw new Error('shardSize % 8 != 0');
  if (paritySize === 0) throw new Error('paritySize == 0');
  if (paritySize % m !== 0) throw new Error('paritySize % m != 0');
  if (paritySize / m !== shardSize) throw new Error('paritySize / m != bufferSize / k');
  if (parityOffset + paritySize > parity.length) throw new Error('parityOffset + paritySize > parity.length');
  const shards: Uint8Array[] = [];
  for (let i = 0; i < k; i++) shards.push(buffer.subarray(bufferOffset + i * shardSize, bufferOffset + (i + 1) * shardSize));
  for (let j = 0; j < m; j++) shards.push(parity.subarray(parityOffset + j * shardSize, parityOffset + (j + 1) * shardSize));
  setImmediate(() => {
    try {
      encodeShards(ctx, sources, targets, shards, shardSize);
    } catch (e) {
      end(e as Error);
      return;
    }
    end();
  });
};

/** The addon's interface, in TypeScript. */
export const rsFallback: RsBinding = { MAX_K, MAX_M, create, encode };
