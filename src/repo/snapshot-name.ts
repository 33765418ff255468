// The rule for snapshot names (`put --name`, `snapshot --name`): what a name may be, so that it can
// be typed back, printed on one line, used after KEY/ in a path spec, and never taken for a key.

import { FragfsError } from '../errors.js';

/** Longest name in bytes of UTF-8, like a file name. */
export const MAX_SNAPSHOT_NAME_BYTES = 255;

/** Eight or more hex digits read as a key prefix (docs: "a unique prefix of 8 or more"). */
const KEY_LIKE_RE = /^[0-9a-fA-F]{8,}$/;
/** C0, DEL and C1 controls: a newline or an escape sequence in `snapshots` output is a lie on screen. */
const CONTROL_RE = /\p{Cc}/u;
/** A surrogate without its other half cannot be written as UTF-8. */
const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `name` cannot name a snapshot, or undefined when it can. */
export function snapshotNameProblem(name: string): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'it is empty';
  if (LONE_SURROGATE_RE.test(name)) return 'it is not valid Unicode';
  if (CONTROL_RE.test(name)) return 'it holds a control character (such as a newline)';
  // Keys and names are trimmed when typed back (Repo.resolveSnapshot): such a name could never be found.
  if (name.trim() !== name) return 'it starts or ends with white space';
  if (Buffer.byteLength(name, 'utf8') > MAX_SNAPSHOT_NAME_BYTES) return `it is longer than ${MAX_SNAPSHOT_NAME_BYTES} bytes`;
  if (name.includes('/')) return "it holds a '/' (KEY/path names a path inside a snapshot)";
  if (name === '.' || name === '..') return `it is ${JSON.stringify(name)}`;
  if (KEY_LIKE_RE.test(name)) return 'it is 8 or more hex digits, which reads as a meta key prefix';
  return undefined;
}

/**
 * Throws USAGE when `name` cannot name a snapshot. Callers MUST check before they store anything,
 * so a refused name leaves the store as it was.
 */
export function checkSnapshotName(name: string, option = '--name'): string {
  const problem = snapshotNameProblem(name);
  if (problem !== undefined) {
    const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name);
    throw new FragfsError('USAGE', `${option} ${shown} cannot name a snapshot: ${problem}`);
  }
  return name;
}

/**
 * The tags of one snapshot (`--tag`, repeatable, or comma-separated): each follows the rule of
 * names (so it prints on one line and reads back as typed) and holds no comma; returned sorted and
 * unique, as the ref stores them (docs/FORMAT.md 2.3.5). Throws USAGE before anything is stored.
 */
export function tagList(given: readonly string[] | undefined): string[] {
  const tags = new Set<string>();
  for (const item of given ?? []) {
    for (const tag of item.split(',')) {
      const problem = tag.length === 0 ? 'it is empty' : snapshotNameProblem(tag);
      if (problem !== undefined) {
        throw new FragfsError('USAGE', `--tag ${JSON.stringify(tag.length > 80 ? `${tag.slice(0, 80)}...` : tag)} cannot tag a snapshot: ${problem}`);
      }
      tags.add(tag);
    }
  }
  return [...tags].sort();
}
