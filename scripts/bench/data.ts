// Deterministic test data: incompressible bytes (an AES-CTR keystream, unique everywhere so nothing
// deduplicates) and source-like text (words from a fixed vocabulary, compressible like real code).

import { createCipheriv, createHash } from 'node:crypto';

/** `length` incompressible bytes, the same for the same seed. */
export function incompressible(length: number, seed: string): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const out = Buffer.allocUnsafe(length);
  const zeros = Buffer.alloc(Math.min(length, 8 << 20));
  let off = 0;
  while (off < length) {
    const n = Math.min(zeros.length, length - off);
    cipher.update(zeros.subarray(0, n)).copy(out, off);
    off += n;
  }
  return out;
}

/** mulberry32: small, fast, deterministic. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  /** Roughly log-normal sizes: most files small, a few large, as in a source tree. */
  logSize(min: number, median: number, max: number): number {
    const u = this.next() + this.next() + this.next() - 1.5; // ~N(0, 0.5)
    return Math.max(min, Math.min(max, Math.round(median * Math.exp(u * 2.2))));
  }
}

const WORDS = (
  'const let function return if else for while import export from interface type class extends new this ' +
  'await async true false null undefined string number boolean void throw try catch finally switch case ' +
  'break continue default static readonly private public protected buffer offset length size block store ' +
  'fragment entry path name value key index count error result options config read write open close flush'
).split(' ');
const PUNCT = ['(', ')', '{', '}', ';', ',', '.', ' = ', ' => ', '[', ']', ': ', ' + ', ' < '];

/** About `bytes` of code-like text, deterministic for rng's state. */
export function sourceText(rng: Rng, bytes: number): Buffer {
  const parts: string[] = [];
  let n = 0;
  let indent = 0;
  while (n < bytes) {
    const words = rng.int(2, 10);
    let line = '  '.repeat(indent);
    for (let i = 0; i < words; i++) {
      line += rng.pick(WORDS);
      if (rng.next() < 0.3) line += rng.pick(PUNCT);
      else line += ' ';
      if (rng.next() < 0.08) line += String(rng.int(0, 99999));
    }
    line += '\n';
    const r = rng.next();
    if (r < 0.15 && indent < 6) indent++;
    else if (r < 0.3 && indent > 0) indent--;
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join('').slice(0, bytes), 'latin1');
}
