// `put --exclude` patterns: shell globs matched against the bytes of an absolute local path. A
// pattern starting with `/` must match the whole path; any other pattern matches the path's last
// components (`*.log` any file ending .log, `cache/tmp` any `tmp` inside a `cache`), as in restic and
// rsync. `*` and `?` match within one component, `**` as a whole component matches any number of
// components, `[...]` (`[!...]`) a byte class, `\` quotes the next character. A folder that matches
// is left out with everything under it. Names are bytes: `?` matches one byte.

import { readFile } from 'node:fs/promises';
import { FragfsError, fromFsError } from '../errors.js';

export class ExcludePatterns {
  private readonly anchored: RegExp[] = [];
  private readonly floating: RegExp[] = [];

  /** MUST throw USAGE for a pattern that cannot be read (an unclosed `[`, an empty pattern). */
  constructor(readonly patterns: readonly string[]) {
    for (const p of patterns) {
      const trimmed = p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
      if (trimmed.length === 0) throw new FragfsError('USAGE', '--exclude: an empty pattern');
      const anchoredPattern = trimmed.startsWith('/');
      const body = globToRegExpSource(anchoredPattern ? trimmed.replace(/^\/+/, '') : trimmed, p);
      // Paths are matched as latin1 strings: one code unit per byte, so bytes that are not UTF-8 match too.
      (anchoredPattern ? this.anchored : this.floating).push(new RegExp(anchoredPattern ? `^/${body}$` : `(?:^|/)${body}$`, 's'));
    }
  }

  get isEmpty(): boolean {
    return this.patterns.length === 0;
  }

  /** Whether the absolute local path `path` (bytes) is excluded. */
  matches(path: Buffer): boolean {
    if (this.patterns.length === 0) return false;
    const s = path.toString('latin1');
    return this.anchored.some((r) => r.test(s)) || this.floating.some((r) => r.test(s));
  }
}

/**
 * Patterns of an `--exclude-file`: one a line, blank lines and lines starting with `#` ignored,
 * trailing spaces and CR trimmed.
 */
export async function readExcludeFile(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw fromFsError(e, 'reading the exclude file', file);
  }
  return text
    .split('\n')
    .map((l) => l.replace(/[\r ]+$/, ''))
    .filter((l) => l.length > 0 && !l.startsWith('#'));
}

/** The regex source of a glob over latin1 strings (the UTF-8 pattern as bytes). */
function globToRegExpSource(glob: string, original: string): string {
  const g = Buffer.from(glob, 'utf8').toString('latin1');
  const parts = g.split('/');
  let out = '';
  parts.forEach((part, i) => {
    const last = i === parts.length - 1;
    if (part === '**') {
      // Any number of whole components, including none.
      out += last ? '.*' : '(?:[^/]*/)*';
      return;
    }
    out += componentSource(part, original) + (last ? '' : '/');
  });
  return out;
}

function componentSource(part: string, original: string): string {
  let out = '';
  for (let i = 0; i < part.length; i++) {
    const c = part[i]!;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '\\' && i + 1 < part.length) out += escapeChar(part[++i]!);
    else if (c === '[') {
      const close = part.indexOf(']', i + 2);
      if (close < 0) throw new FragfsError('USAGE', `--exclude: unclosed [ in ${JSON.stringify(original)}`);
      let cls = part.slice(i + 1, close);
      const negate = cls.startsWith('!') || cls.startsWith('^');
      if (negate) cls = cls.slice(1);
      out += `[${negate ? '^/' : ''}${cls.replace(/[\\\]^]/g, (x) => `\\${x}`)}]`;
      i = close;
    } else out += escapeChar(c);
  }
  return out;
}

function escapeChar(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}
