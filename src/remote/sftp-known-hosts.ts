// The SSH host key check of sftp:// stores, as OpenSSH's client does it: the key the server shows
// must be one that known_hosts lists for the host (plain, wildcard or hashed `|1|` entries, the
// `[host]:port` form off port 22, `@revoked` lines), since a store's keys and data must never go to
// a server that is not the one the user meant.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** What known_hosts says about one host. */
export interface KnownHost {
  /** `host` on port 22, else `[host]:port`: the name known_hosts files it under. */
  readonly name: string;
  /** Keys listed for it, as SSH wire blobs with their type names. */
  readonly keys: readonly { readonly type: string; readonly blob: Buffer }[];
  readonly revoked: readonly Buffer[];
}

export type HostKeyVerdict = { ok: true } | { ok: false; why: 'unknown' | 'changed' | 'revoked' };

/** ssh2's host key algorithms in its order of preference; key types map onto them. */
const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
] as const;

function algorithmsOf(type: string): string[] {
  if (type === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return (HOST_KEY_ALGORITHMS as readonly string[]).includes(type) ? [type] : [];
}

export function knownHostName(host: string, port: number): string {
  return port === 22 ? host.toLowerCase() : `[${host.toLowerCase()}]:${port}`;
}

/** OpenSSH's pattern match: `*` and `?` wildcards, case-insensitive. */
function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .toLowerCase()
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(name);
}

function hashedMatch(entry: string, name: string): boolean {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  const [, magic, salt, hash] = entry.split('|');
  if (magic !== '1' || !salt || !hash) return false;
  const want = Buffer.from(hash, 'base64');
  const got = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
  return want.length === got.length && timingSafeEqual(want, got);
}

/** Whether a host field (comma-separated patterns, `!` negations, or one hashed entry) names `name`. */
function hostsMatch(field: string, name: string): boolean {
  if (field.startsWith('|')) return hashedMatch(field, name);
  let matched = false;
  for (const raw of field.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    if (pattern === '' || !globMatch(pattern, name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

/** The entries of a known_hosts file's text for one host (`@cert-authority` lines are not used). */
export function findKnownHost(text: string, host: string, port: number): KnownHost {
  const name = knownHostName(host, port);
  const keys: { type: string; blob: Buffer }[] = [];
  const revoked: Buffer[] = [];
  for (const line of text.split(/\r?\n/)) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] === undefined || fields[0] === '' || fields[0].startsWith('#')) continue;
    let marker: string | undefined;
    if (fields[0].startsWith('@')) marker = fields.shift();
    const [hosts, type, b64] = fields;
    if (!hosts || !type || !b64 || !hostsMatch(hosts, name)) continue;
    const blob = Buffer.from(b64, 'base64');
    if (marker === '@revoked') revoked.push(blob);
    else if (marker === undefined) keys.push({ type, blob });
  }
  return { name, keys, revoked };
}

export function verifyHostKey(known: KnownHost, blob: Buffer): HostKeyVerdict {
  if (known.revoked.some((k) => k.equals(blob))) return { ok: false, why: 'revoked' };
  if (known.keys.some((k) => k.blob.equals(blob))) return { ok: true };
  return { ok: false, why: known.keys.length === 0 ? 'unknown' : 'changed' };
}

/**
 * Host key algorithms to offer, those of the listed keys first (as OpenSSH orders them), so a server
 * with several keys shows the one known_hosts has rather than being taken for a changed host.
 */
export function hostKeyAlgorithms(known: KnownHost): string[] {
  const first = [...new Set(known.keys.flatMap((k) => algorithmsOf(k.type)))];
  return [...first, ...HOST_KEY_ALGORITHMS.filter((a) => !first.includes(a))];
}

/** `SHA256:...` as ssh-keygen -l prints it. */
export function keyFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}
