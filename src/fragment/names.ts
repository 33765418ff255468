// Names as bytes: the rules for one path component (what Linux allows, and what fragfs stores), their
// order in a directory, and how a name that is not UTF-8 is shown to people and to programs. Linux
// names are byte strings; ext4, tar, rsync, restic and gocryptfs keep them exactly, and so does fragfs.

/** A name component's limit, as in Linux (NAME_MAX). */
export const NAME_MAX_BYTES = 255;

const SLASH = 0x2f;
const DOT = 0x2e;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Why `name` is not a valid directory entry name, or undefined when it is. */
export function nameProblem(name: unknown): string | undefined {
  if (!(name instanceof Uint8Array)) return 'entry name is not bytes';
  if (name.length === 0) return 'empty entry name';
  if (name.length > NAME_MAX_BYTES) return `entry name is longer than ${NAME_MAX_BYTES} bytes`;
  if (name[0] === DOT && (name.length === 1 || (name.length === 2 && name[1] === DOT))) {
    return `entry name ${showName(name)} is reserved`;
  }
  if (name.includes(SLASH)) return `entry name ${showName(name)} contains '/'`;
  if (name.includes(0)) return `entry name ${showName(name)} contains a NUL byte`;
  return undefined;
}

/**
 * Byte order (memcmp, then the shorter first): the order of a directory's entries, whatever the bytes
 * mean. Names are short, and a loop here costs a third of a call into Buffer.compare's binding (a
 * sort of 100 names 1.6 us against 5.3); long ones still go to it.
 */
export function compareNames(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  if (n > COMPARE_IN_JS_BELOW) return Buffer.compare(a, b);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Names up to this many bytes are compared in a loop, longer ones by Buffer.compare. */
const COMPARE_IN_JS_BELOW = 64;

/** The name's text when it is valid UTF-8, else undefined. */
export function utf8Text(name: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(name);
  } catch {
    return undefined;
  }
}

/**
 * A name or path shown to a person, as `ls -b` shows it: valid UTF-8 printable text stays as it is;
 * a backslash is `\\`; control characters, DEL and bytes that are not part of valid UTF-8 are `\ooo`
 * (three octal digits). Nothing is lost: `parseShownName` reads it back to the same bytes.
 */
export function showName(name: Uint8Array): string {
  const text = utf8Text(name);
  if (text !== undefined && !/[\u0000-\u001f\u007f\\]/u.test(text)) return text;
  let out = '';
  let i = 0;
  while (i < name.length) {
    const len = utf8SequenceLength(name, i);
    if (len > 1) {
      out += Buffer.from(name.subarray(i, i + len)).toString('utf8');
      i += len;
      continue;
    }
    const b = name[i]!;
    if (b === 0x5c) out += '\\\\';
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\${b.toString(8).padStart(3, '0')}`;
    i++;
  }
  return out;
}

/**
 * Reads what `showName` wrote (also what a user types to name such a file): `\\` is a backslash,
 * `\ooo` one byte in octal, `\xHH` one byte in hex; any other character is its UTF-8 bytes.
 */
export function parseShownName(text: string): Buffer {
  const parts: Buffer[] = [];
  let plain = '';
  const flush = () => {
    if (plain) parts.push(Buffer.from(plain, 'utf8'));
    plain = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '\\') {
      plain += c;
      continue;
    }
    const rest = text.slice(i + 1);
    let m: RegExpMatchArray | null;
    if (rest.startsWith('\\')) {
      plain += '\\';
      i += 1;
    } else if ((m = /^[0-7]{3}/.exec(rest)) && parseInt(m[0], 8) <= 0xff) {
      flush();
      parts.push(Buffer.of(parseInt(m[0], 8)));
      i += 3;
    } else if ((m = /^x[0-9a-fA-F]{2}/.exec(rest))) {
      flush();
      parts.push(Buffer.of(parseInt(m[0].slice(1), 16)));
      i += 3;
    } else {
      plain += c;
    }
  }
  flush();
  return Buffer.concat(parts);
}

/**
 * A name or path in JSON output, losslessly: `{ [key]: text }` when the bytes are valid UTF-8, and
 * additionally `{ [key + 'Base64']: base64 }` when they are not (the text is then `showName`'s).
 */
export function jsonName(key: string, name: Uint8Array): Record<string, string> {
  const text = utf8Text(name);
  if (text !== undefined) return { [key]: text };
  return { [key]: showName(name), [`${key}Base64`]: Buffer.from(name).toString('base64') };
}

/** Length of the valid multi-byte UTF-8 sequence starting at `i`, or 1 when there is none. */
function utf8SequenceLength(b: Uint8Array, i: number): number {
  const c = b[i]!;
  let n: number;
  let min: number;
  if (c >= 0xc2 && c <= 0xdf) [n, min] = [2, 0x80];
  else if (c >= 0xe0 && c <= 0xef) [n, min] = [3, 0x800];
  else if (c >= 0xf0 && c <= 0xf4) [n, min] = [4, 0x10000];
  else return 1;
  if (i + n > b.length) return 1;
  let cp = c & (0xff >> (n + 1));
  for (let k = 1; k < n; k++) {
    const x = b[i + k]!;
    if ((x & 0xc0) !== 0x80) return 1;
    cp = (cp << 6) | (x & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 1;
  // Printable only: control characters (C1 included) are shown escaped byte by byte.
  if (cp >= 0x80 && cp < 0xa0) return 1;
  return n;
}

/** Joins path components (bytes) with '/' under `prefix` ('/' or a path ending without '/'). */
export function joinName(prefix: Uint8Array, name: Uint8Array): Buffer {
  if (prefix.length === 1 && prefix[0] === SLASH) return Buffer.concat([prefix, name]);
  return Buffer.concat([prefix, Buffer.of(SLASH), name]);
}
