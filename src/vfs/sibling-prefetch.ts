// Read-ahead across files: a reader that opens the files of one folder one after another (tar c,
// cp -r, rsync, a backup tool reading the mount) has the next small files' blocks loading while it
// reads this one. Each small file otherwise costs a fragment load and decode in series with the
// reader, which dominated reading a source tree back out.

/** Files after the opened one (in readdir order) whose block is loaded ahead. */
export const SIBLING_FILES = 8;

/**
 * Decides when an open is part of such a walk: the previous read-only open was in the same folder.
 * A single file opened alone (an editor, `cat`) loads nothing extra.
 */
export class SiblingStream {
  private lastDir: number | string | undefined;

  /** Records an open of a file in folder `dir`; true when the one before was in the same folder. */
  opened(dir: number | string): boolean {
    const streaming = this.lastDir === dir;
    this.lastDir = dir;
    return streaming;
  }
}
