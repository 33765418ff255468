// Where each fragfs object key lives behind `rclone serve restic`, and which folders a list of a
// prefix must read. The restic REST protocol addresses `/<repository path>/<type>/<name>`; rclone
// (1.60 and later) accepts any repository path and type, stores `<path>/<type>/<name>` as is, except
// that a name right under a `data` folder is fanned out to `data/<2 chars>/<name>` (its regexp
// `(?:^|/)data/([^/]{2,})$`, applied to every request path, listings included), and lists a folder
// recursively but answers only the base names of what it holds. The mapping is shaped by those facts:
//
// - Each key segment is escaped for case-insensitive remotes (OneDrive, Dropbox, a Mac's disk): an
//   upper-case letter X becomes `=x`, so no two keys alias. Keys hold only [A-Za-z0-9._-], so '=' and
//   the '+' below never occur in a key, and all of them are sent unescaped in the URL path (a %XX
//   would reach the file name itself on rclone versions that route on the raw path).
// - The name is self-describing, as a listing loses the folders: the last segment, '+', then the
//   key's folders from the innermost out, joined by '+' (`s/refs/r1` -> `r1+refs+s`,
//   `fragfs.json` -> `fragfs.json+`). Every name holds a '+' and no folder does, so a file never
//   takes the place of a folder. Two keys never share a name, so never a path.
// - A fragment key, whose last folder is the first two characters of its name
//   (`<space>/objects/ab/ab12...`, ObjectStore.keyOf), goes to the `data` type of the repository its
//   other folders name: `/<space>/objects/data/ab12...+ab+objects+<space>`, which rclone stores in
//   `<space>/objects/data/ab/`, the same fan-out as the key's. Any other key goes to the `keys` type
//   of the repository its folders name: `lease/default` -> `/lease/keys/default+lease`.
// - list(P) reads the folder P recursively (everything under P is stored below it), plus
//   `<parent>/data/` when P's last folder has two characters (a fan-out folder, whose fragments
//   are stored beside it), going up from any folder rclone would take for a data name; it keeps
//   the names that decode to a key under P. A name is at most 255 bytes (a file name on most
//   remotes), which bounds the keys an rclone store takes (fragfs's own are under 150 bytes).

import { FragfsError } from '../errors.js';

const DATA_TYPE = 'data';
const KEYS_TYPE = 'keys';
const MAX_NAME_BYTES = 255;
const ESCAPED_SEGMENT_RE = /^(?:[a-z0-9._-]|=[a-z])+$/;

function escapeSegment(seg: string): string {
  return seg.replace(/[A-Z]/g, (c) => `=${c.toLowerCase()}`);
}

function unescapeSegment(seg: string): string | undefined {
  if (!ESCAPED_SEGMENT_RE.test(seg)) return undefined;
  const out = seg.replace(/=([a-z])/g, (_, c: string) => c.toUpperCase());
  return out === '.' || out === '..' ? undefined : out;
}

/** The self-describing file name of a key (already checked by checkObjectKey). */
export function nameOfKey(key: string): string {
  const segs = key.split('/').map(escapeSegment);
  const last = segs.pop()!;
  return `${last}+${segs.reverse().join('+')}`;
}

/** The key a listed name stands for, or undefined for a file fragfs did not write. */
export function keyOfName(name: string): string | undefined {
  const plus = name.indexOf('+');
  if (plus < 0) return undefined;
  const tail = name.slice(plus + 1);
  const escaped = [...(tail === '' ? [] : tail.split('+').reverse()), name.slice(0, plus)];
  const segs: string[] = [];
  for (const e of escaped) {
    const s = unescapeSegment(e);
    if (s === undefined) return undefined;
    segs.push(s);
  }
  return segs.join('/');
}

/** The request path of a key's object: `/<folders>/keys/<name>` or `/<folders>/data/<name>`. */
export function objectPath(key: string): string {
  const name = nameOfKey(key);
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new FragfsError('INVALID', `the key ${key.slice(0, 80)}... is too long for an rclone store (a name of at most ${MAX_NAME_BYTES} bytes)`);
  }
  const dirs = key.split('/').map(escapeSegment);
  const last = dirs.pop()!;
  const fanout = dirs.at(-1);
  if (fanout !== undefined && fanout.length === 2 && last.startsWith(fanout)) {
    return `/${[...dirs.slice(0, -1), DATA_TYPE, name].join('/')}`;
  }
  return `/${[...dirs, KEYS_TYPE, name].join('/')}`;
}

/** Drops trailing folders while rclone would take the path for a data name and fan it out. */
function listable(segs: string[]): string[] {
  const out = [...segs];
  while (out.length >= 2 && out[out.length - 2] === DATA_TYPE && out[out.length - 1]!.length >= 2) out.pop();
  return out;
}

/** The listing paths (ending in '/') that together hold every key under `prefix`, none inside another. */
export function listPaths(prefix: string): string[] {
  if (prefix === '') return ['/'];
  const segs = prefix.slice(0, -1).split('/').map(escapeSegment);
  const folders = [listable(segs)];
  if (segs.at(-1)!.length === 2) folders.push(listable([...segs.slice(0, -1), DATA_TYPE]));
  const within = (inner: string[], outer: string[]): boolean => outer.length <= inner.length && outer.every((s, i) => s === inner[i]);
  const kept = folders.filter((f, i) => !folders.some((g, j) => j !== i && within(f, g) && (j < i || !within(g, f))));
  return kept.map((f) => (f.length === 0 ? '/' : `/${f.join('/')}/`));
}
