// What a store argument names: a local folder, or a remote store by URL (s3://, sftp://, azure://,
// rclone:). One parser for every command, so a URL is never taken for a folder named `s3:` and a
// scheme fragfs does not know is an error.

import { FragfsError } from '../errors.js';

export interface LocalStoreUrl {
  readonly scheme: 'local';
  readonly path: string;
}

/** `s3://BUCKET[/PREFIX]`: endpoint, region and credentials come from the usual AWS environment. */
export interface S3StoreUrl {
  readonly scheme: 's3';
  readonly bucket: string;
  /** '' or segments without a leading or trailing '/'. */
  readonly prefix: string;
}

/** `sftp://[USER@]HOST[:PORT]/PATH`: PATH is absolute on the server; `/~/x` is x in the user's home. */
export interface SftpStoreUrl {
  readonly scheme: 'sftp';
  readonly user: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly path: string;
}

/** `azure://ACCOUNT/CONTAINER[/PREFIX]`: the key or connection string comes from the environment. */
export interface AzureStoreUrl {
  readonly scheme: 'azure';
  readonly account: string;
  readonly container: string;
  readonly prefix: string;
}

/** `rclone:REMOTE:PATH`: served by `rclone serve restic --stdio REMOTE:PATH`, as restic does. */
export interface RcloneStoreUrl {
  readonly scheme: 'rclone';
  /** What rclone is given: `REMOTE:PATH` (`:local:/srv/x` and other on-the-fly remotes too). */
  readonly remote: string;
}

export type RemoteStoreUrl = S3StoreUrl | SftpStoreUrl | AzureStoreUrl | RcloneStoreUrl;
export type StoreUrl = LocalStoreUrl | RemoteStoreUrl;

export const REMOTE_SCHEMES = ['s3', 'sftp', 'azure', 'rclone'] as const;

const SCHEME_RE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;

function usage(arg: string, why: string): FragfsError {
  return new FragfsError('USAGE', `not a store URL: ${arg}: ${why}`);
}

/** '' or 'a/b/c' from what follows the bucket or container, each segment a valid object key segment. */
function cleanPrefix(arg: string, raw: string): string {
  const segs = raw.split('/').filter((s) => s !== '');
  for (const s of segs) {
    if (!SEGMENT_RE.test(s) || s === '.' || s === '..') throw usage(arg, `the prefix segment ${JSON.stringify(s)} is not [A-Za-z0-9._-]`);
  }
  return segs.join('/');
}

/**
 * Parses a store argument. A string that starts with `SCHEME://` is a URL and its scheme must be one
 * fragfs knows; `rclone:` starts an rclone remote; anything else is a local path (which may hold a
 * ':' as in `backup:2024`).
 */
export function parseStoreUrl(arg: string): StoreUrl {
  if (arg.startsWith('rclone:')) {
    const remote = arg.slice('rclone:'.length);
    if (remote === '' || !remote.includes(':')) throw usage(arg, 'rclone stores are rclone:REMOTE:PATH (e.g. rclone:mys3:bucket/x, rclone::local:/srv/x)');
    return { scheme: 'rclone', remote };
  }
  const m = SCHEME_RE.exec(arg);
  if (!m) return { scheme: 'local', path: arg };
  const scheme = m[1]!.toLowerCase();
  const rest = arg.slice(m[0].length);
  switch (scheme) {
    case 's3': {
      const slash = rest.indexOf('/');
      const bucket = slash < 0 ? rest : rest.slice(0, slash);
      // S3's bucket naming rules (3-63 lowercase letters, digits, dots, hyphens).
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw usage(arg, `${JSON.stringify(bucket)} is not an S3 bucket name`);
      return { scheme: 's3', bucket, prefix: slash < 0 ? '' : cleanPrefix(arg, rest.slice(slash + 1)) };
    }
    case 'azure': {
      const [account = '', container = '', ...more] = rest.split('/');
      if (!/^[a-z0-9]{3,24}$/.test(account)) throw usage(arg, `${JSON.stringify(account)} is not an Azure storage account name`);
      if (!/^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/.test(container)) {
        throw usage(arg, `${JSON.stringify(container)} is not an Azure container name (azure://ACCOUNT/CONTAINER/PREFIX)`);
      }
      return { scheme: 'azure', account, container, prefix: cleanPrefix(arg, more.join('/')) };
    }
    case 'sftp': {
      let u: URL;
      try {
        u = new URL(arg);
      } catch {
        throw usage(arg, 'sftp stores are sftp://[USER@]HOST[:PORT]/PATH');
      }
      if (u.hostname === '') throw usage(arg, 'no host (sftp://[USER@]HOST[:PORT]/PATH)');
      if (u.password !== '') throw usage(arg, 'a password in the URL is not accepted: use a key (ssh-agent or FRAGFS_SFTP_KEY)');
      const path = decodeURIComponent(u.pathname);
      if (path === '' || path === '/') throw usage(arg, 'no path on the server (sftp://HOST/PATH)');
      return {
        scheme: 'sftp',
        user: u.username === '' ? undefined : decodeURIComponent(u.username),
        host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: u.port === '' ? 22 : Number(u.port),
        path: path.replace(/\/+$/, ''),
      };
    }
    default:
      throw usage(arg, `unknown scheme ${scheme}:// (fragfs knows s3://, sftp://, azure://, rclone:REMOTE:PATH and local paths)`);
  }
}

/** The URL as it is shown to the user (no secrets are ever part of one). */
export function formatStoreUrl(u: StoreUrl): string {
  switch (u.scheme) {
    case 'local':
      return u.path;
    case 's3':
      return `s3://${u.bucket}${u.prefix ? `/${u.prefix}` : ''}`;
    case 'azure':
      return `azure://${u.account}/${u.container}${u.prefix ? `/${u.prefix}` : ''}`;
    case 'sftp':
      return `sftp://${u.user ? `${u.user}@` : ''}${u.host.includes(':') ? `[${u.host}]` : u.host}${u.port === 22 ? '' : `:${u.port}`}${u.path}`;
    case 'rclone':
      return `rclone:${u.remote}`;
  }
}
