// The text of a share link: `fragfs:share:<store>:<space>:<share id>:<key>`, where <store> is the
// store's location (an absolute folder or a URL) in unpadded base64url, and <key> the share key in
// base64url, or `-` when the share is sealed to people (they open it with their identity). Nothing
// in the alphabet is a `/`, so `LINK/path` names a path inside the shared folder, as `KEY/path` does.

import { FragfsError } from '../errors.js';

export const SHARE_LINK_PREFIX = 'fragfs:share:';

export interface ShareLink {
  location: string;
  space: string;
  id: string;
  /** The share key: the link is the capability. Undefined: sealed to people. */
  key?: Uint8Array;
}

export function isShareLink(text: string): boolean {
  return text.startsWith(SHARE_LINK_PREFIX);
}

export function formatShareLink(l: ShareLink): string {
  const key = l.key === undefined ? '-' : Buffer.from(l.key).toString('base64url');
  return `${SHARE_LINK_PREFIX}${Buffer.from(l.location, 'utf8').toString('base64url')}:${l.space}:${l.id}:${key}`;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

export function parseShareLink(text: string): ShareLink {
  const bad = (why: string): never => {
    throw new FragfsError('BAD_KEY', `not a fragfs share link (${why}): links look like ${SHARE_LINK_PREFIX}<store>:<space>:<id>:<key>`);
  };
  if (!isShareLink(text)) bad('no fragfs:share: prefix');
  const parts = text.slice(SHARE_LINK_PREFIX.length).split(':');
  if (parts.length !== 4) bad('it has not four fields');
  const [loc, space, id, key] = parts as [string, string, string, string];
  if (!B64URL.test(loc)) bad('the store field is not base64url');
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(space)) bad('the space field is not a space name');
  if (!/^[0-9a-f]{32}$/.test(id)) bad('the id field is not 32 hex digits');
  const link: ShareLink = { location: Buffer.from(loc, 'base64url').toString('utf8'), space, id };
  if (key !== '-') {
    if (!B64URL.test(key)) bad('the key field is not base64url');
    const k = Buffer.from(key, 'base64url');
    if (k.length !== 32) bad('the key is not 32 bytes');
    link.key = new Uint8Array(k);
  }
  return link;
}

/**
 * `text` (a link, maybe with /path) with its key field made `-`: what may stand where others can read
 * it (a process's command line) while the whole link travels another way.
 */
export function linkWithoutKey(text: string): string {
  const slash = text.indexOf('/');
  const head = slash < 0 ? text : text.slice(0, slash);
  const tail = slash < 0 ? '' : text.slice(slash);
  const at = head.lastIndexOf(':');
  return at < 0 ? text : `${head.slice(0, at)}:-${tail}`;
}
