// Finds paths by a glob pattern in frozen trees, as `fragfs find` does across snapshots. A pattern
// without '/' is matched against names (find -name); one with '/' against paths. Folders already
// searched in another snapshot (same dir fragment) are answered from what they gave then.

import { FragfsError } from '../errors.js';
import { joinName, showName } from '../fragment/names.js';
import type { Entry } from '../fragment/tree-format.js';
import type { Repo } from './repo.js';
import { readDirEntries } from './tree-reader.js';

/**
 * A shell glob as an anchored RegExp over shown paths (names as `ls -b` shows them): `*` and `?` do
 * not cross '/', `**` does, `[abc]`, `[a-z]` and `[!x]` are classes, `\` quotes the next character.
 */
export function globToRegExp(pattern: string, o: { ignoreCase?: boolean } = {}): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        // `**/` also matches no folder at all: `/a/**/x` finds /a/x.
        if (pattern[i + 2] === '/') {
          out += '(?:.*/)?';
          i += 2;
        } else {
          out += '.*';
          i++;
        }
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) out += escapeRe(pattern[++i]!);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const negated = body.startsWith('!') || body.startsWith('^');
      if (negated) body = body.slice(1);
      out += `[${negated ? '^/' : ''}${body.replace(/[\\\]^]/g, (m) => `\\${m}`)}]`;
      i = end;
    } else out += escapeRe(c);
  }
  try {
    return new RegExp(`^${out}$`, `su${o.ignoreCase ? 'i' : ''}`);
  } catch {
    throw new FragfsError('USAGE', `not a pattern: ${JSON.stringify(pattern)}`);
  }
}

function escapeRe(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

export interface FoundEntry {
  /** Path from the top of the tree, bytes. */
  path: Buffer;
  entry: Entry;
}

/**
 * Searches several trees with one pattern. A pattern without '/' matches names, and a folder met
 * again (same dir fragment, in this tree or an earlier one) gives what it gave before without being
 * read; one with '/' matches whole paths ('/x' from the top; 'a/b' below any folder).
 */
export class TreeFinder {
  private readonly re: RegExp;
  private readonly byName: boolean;
  /** Dir fragment -> matches below it, relative to it (byName only). */
  private readonly memo = new Map<string, FoundEntry[]>();
  /** Dir fragments read so far. */
  dirsRead = 0;

  constructor(
    private readonly repo: Repo,
    pattern: string,
    o: { ignoreCase?: boolean } = {},
  ) {
    this.byName = !pattern.includes('/');
    const anchored = pattern.startsWith('/') || pattern.startsWith('**') ? pattern : `**/${pattern}`;
    this.re = globToRegExp(this.byName ? pattern : anchored, o);
  }

  /** Every match in the tree of `root`, in tree order. */
  async find(root: Entry): Promise<FoundEntry[]> {
    const top = Buffer.from('/');
    if (root.type !== 'dir') return this.matches(root.name, top) ? [{ path: top, entry: root }] : [];
    return this.below(root, top, new Set());
  }

  private matches(name: Buffer, path: Buffer): boolean {
    return this.re.test(showName(this.byName ? name : path));
  }

  /** The matches below folder `dir` (at `path`), with paths relative to it ('/name/...'). */
  private async below(dir: Entry, path: Buffer, ancestors: ReadonlySet<string>): Promise<FoundEntry[]> {
    const id = dir.dir!;
    if (ancestors.has(id)) throw new FragfsError('CORRUPT', `folder ${showName(path)} contains itself (dir fragment ${id})`, { fragmentId: id });
    const known = this.byName ? this.memo.get(id) : undefined;
    if (known !== undefined) return known;
    this.dirsRead++;
    const entries = await readDirEntries(this.repo, dir, showName(path));
    const inner = new Set(ancestors).add(id);
    const found: FoundEntry[] = [];
    for (const e of entries) {
      const rel = joinName(SLASH, e.name);
      const at = joinName(path, e.name);
      if (this.matches(e.name, at)) found.push({ path: rel, entry: e });
      if (e.type === 'dir') for (const f of await this.below(e, at, inner)) found.push({ path: Buffer.concat([rel, f.path]), entry: f.entry });
    }
    if (this.byName) this.memo.set(id, found);
    return found;
  }
}

const SLASH = Buffer.from('/');
