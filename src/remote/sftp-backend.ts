// The sftp:// service as an ObjectBackend on ssh2: each key is a file under the URL's folder, written
// to a temp file beside it and renamed (or hard-linked, for a create) into place so a reader never
// meets half an object; one SSH connection carries several SFTP channels, since an SFTP server
// answers one channel's requests in turn; the host key must be in known_hosts.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { posix } from 'node:path';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, ConnectConfig, FileEntryWithStats, SFTPWrapper, Stats } from 'ssh2';
import { FragfsError } from '../errors.js';
import type { CallOptions, ObjectBackend, ObjectEntry, PutOptions } from './object-backend.js';
import { MAX_OBJECT_KEY_BYTES } from './object-backend.js';
import { RemoteFailure, isTransientNetworkError } from './remote-failure.js';
import {
  findKnownHost,
  hostKeyAlgorithms,
  keyFingerprint,
  knownHostName,
  verifyHostKey,
  type HostKeyVerdict,
  type KnownHost,
} from './sftp-known-hosts.js';
import { formatStoreUrl, type SftpStoreUrl } from './store-url.js';
import { raceAbort } from './race-abort.js';

const { Client, utils } = ssh2;
type SshClient = InstanceType<typeof Client>;

/** SFTP status codes (draft-ietf-secsh-filexfer-02, the version OpenSSH speaks). */
const FX = { NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, NO_CONNECTION: 6, CONNECTION_LOST: 7 } as const;

/** SFTP channels on the connection: OpenSSH's default MaxSessions is 10. */
const CHANNELS = 8;
/** Directories read at once by a listing. */
const LIST_DIRS_AT_ONCE = 4;
/** Bytes per read or write request, and requests in flight per transfer (well within one channel's window). */
const CHUNK = 128 * 1024;
const CHUNKS_IN_FLIGHT = 8;
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;

/**
 * A put's temp file, in the folder of its key: `~` is in no key segment, so the name can never be a
 * key and `list` passes over it (and over every other name that is not a key, a user's notes.txt~
 * included). A put cut short (a dropped connection, a killed process) can leave one behind.
 */
export function sftpTempName(): string {
  return `.fragfs~${randomBytes(8).toString('hex')}.tmp`;
}

/** Overrides of what the environment says, for tests that open stores with other credentials side by side. */
export interface SftpOptions {
  /** Private key file (default FRAGFS_SFTP_KEY, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa). */
  readonly keyFile?: string;
  /** known_hosts file (default FRAGFS_SFTP_KNOWN_HOSTS, else ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts). */
  readonly knownHostsFile?: string;
  /** ssh-agent socket, or false for none (default SSH_AUTH_SOCK). */
  readonly agent?: string | false;
}

type SftpError = Error & { code?: unknown; level?: unknown };

function statusOf(e: unknown): number | undefined {
  const code = (e as SftpError | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function call<T>(fn: (cb: (err: Error | undefined | null, v?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      fn((err, v) => (err ? reject(err) : resolve(v as T)));
    } catch (e) {
      reject(e as Error);
    }
  });
}

/** An OpenSSH extension, or undefined when the server lacks it (ssh2 throws at once then). */
function extension<T>(fn: (cb: (err: Error | undefined | null, v?: T) => void) => void): Promise<T> | undefined {
  let p: Promise<T> | undefined;
  try {
    p = new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));
  } catch {
    return undefined;
  }
  return p;
}

interface Credentials {
  readonly username: string;
  readonly auth: AnyAuthMethod[];
  /** What `auth` tries, for messages: `ssh-agent` and key files. */
  readonly tried: readonly string[];
  readonly known: KnownHost;
  readonly knownHostsFile: string;
}

/** A key file's text, or why it cannot be used (a default key that is absent is just skipped). */
function readKey(file: string, explicit: boolean): Buffer | { why: string } | undefined {
  let text: Buffer;
  try {
    text = readFileSync(file);
  } catch (e) {
    if (!explicit && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { why: `cannot read the SSH key ${file}: ${messageOf(e)}` };
  }
  const parsed = utils.parseKey(text);
  if (!(parsed instanceof Error)) return text;
  // fragfs asks for no passphrase (it may run with no terminal): an agent holds such keys.
  const why = /passphrase|encrypted/i.test(parsed.message) ? 'it is encrypted; load it into ssh-agent (ssh-add) instead' : parsed.message;
  return { why: `cannot use the SSH key ${file}: ${why}` };
}

function credentials(url: SftpStoreUrl, o: SftpOptions): Credentials {
  let username = url.user;
  if (username === undefined) {
    try {
      username = userInfo().username;
    } catch {
      username = process.env['USER'] ?? process.env['LOGNAME'];
    }
  }
  if (!username) throw new FragfsError('USAGE', `no user name for ${formatStoreUrl(url)}: give one (sftp://USER@HOST/PATH)`);
  const auth: AnyAuthMethod[] = [];
  const tried: string[] = [];
  const agent = o.agent ?? process.env['SSH_AUTH_SOCK'];
  if (agent) {
    auth.push({ type: 'agent', username, agent });
    tried.push('ssh-agent');
  }
  const keyFile = o.keyFile ?? (process.env['FRAGFS_SFTP_KEY'] || undefined);
  const home = homedir();
  const files = keyFile ? [keyFile] : ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => posix.join(home, '.ssh', f));
  const unusable: string[] = [];
  for (const file of files) {
    const key = readKey(file, keyFile !== undefined);
    if (key === undefined) continue;
    if (!Buffer.isBuffer(key)) {
      if (keyFile !== undefined) throw new FragfsError('USAGE', key.why, { path: file });
      unusable.push(key.why);
      continue;
    }
    auth.push({ type: 'publickey', username, key });
    tried.push(file);
  }
  if (auth.length === 0) {
    const why = unusable.length > 0 ? unusable.join('; ') : 'start ssh-agent (SSH_AUTH_SOCK), set FRAGFS_SFTP_KEY or create ~/.ssh/id_ed25519';
    throw new FragfsError('REMOTE_AUTH', `no SSH key to log in to ${formatStoreUrl(url)} with: ${why}`);
  }
  const explicitHosts = o.knownHostsFile ?? (process.env['FRAGFS_SFTP_KNOWN_HOSTS'] || undefined);
  const hostFiles = explicitHosts ? [explicitHosts] : [posix.join(home, '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts'];
  let text = '';
  for (const file of hostFiles) {
    try {
      text += `${readFileSync(file, 'utf8')}\n`;
    } catch (e) {
      // A missing file is a host not known yet, which the connection reports with what to do.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new FragfsError('USAGE', `cannot read ${file}: ${messageOf(e)}`, { cause: e, path: file });
      }
    }
  }
  return { username, auth, tried, known: findKnownHost(text, url.host, url.port), knownHostsFile: hostFiles[0]! };
}

function keyType(blob: Buffer): string {
  const n = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  return blob.subarray(4, 4 + n).toString('latin1');
}

/** The one line that says why the server's key was refused and how to proceed. */
function hostKeyMessage(url: SftpStoreUrl, c: Credentials, blob: Buffer, verdict: Exclude<HostKeyVerdict, { ok: true }>): string {
  const name = knownHostName(url.host, url.port);
  const shown = `${keyType(blob)} ${keyFingerprint(blob)}`;
  const scan = `ssh-keyscan ${url.port === 22 ? '' : `-p ${url.port} `}${url.host} >> ${c.knownHostsFile}`;
  switch (verdict.why) {
    case 'unknown':
      return `the host key of ${name} (${shown}) is not in ${c.knownHostsFile}: check the fingerprint and add it with: ${scan}`;
    case 'changed':
      return (
        `the host key of ${name} (${shown}) is not the one ${c.knownHostsFile} lists: the server's key changed or another ` +
        `machine answers; if the change is expected: ssh-keygen -R '${name}' -f ${c.knownHostsFile} && ${scan}`
      );
    case 'revoked':
      return `the host key of ${name} (${shown}) is marked @revoked in ${c.knownHostsFile}`;
  }
}

/** A channel and the calls using it now. */
interface Slot {
  readonly sftp: SFTPWrapper;
  busy: number;
}

/** Counted busy in the same turn it is chosen, so calls acquiring at once spread over the channels. */
function take(slot: Slot): Slot {
  slot.busy++;
  return slot;
}

/** One SSH connection with its SFTP channels, opened lazily as calls overlap. */
class Connection {
  readonly client: SshClient = new Client();
  readonly ready: Promise<void>;
  readonly slots: Slot[] = [];
  private opening = 0;
  /** How many channels the server lets us open (lowered when it refuses one). */
  maxChannels = CHANNELS;
  dead = false;

  constructor(config: ConnectConfig, classify: (e: unknown) => Error) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.client.once('ready', () => resolve());
      this.client.on('error', (e) => {
        this.dead = true;
        reject(classify(e));
      });
      this.client.on('close', () => {
        this.dead = true;
        reject(new RemoteFailure('retry', 'the SSH connection closed before it was ready'));
      });
    });
    // Callers see the rejection through `ready`; this copy only keeps Node from calling it unhandled.
    this.ready.catch(() => undefined);
    this.client.connect(config);
    // SFTP is request and answer: Nagle's wait for an ACK would add delayed-ACK stalls to each
    // answer (measured 2-5x slower transfers on loopback without this).
    this.client.setNoDelay(true);
  }

  /** A channel for one call (its `busy` counted): an idle one, a new one while under the bound, else the least busy. */
  async acquire(): Promise<Slot> {
    await this.ready;
    for (;;) {
      if (this.dead) throw new RemoteFailure('retry', 'the SSH connection was lost');
      const idle = this.slots.find((s) => s.busy === 0);
      if (idle) return take(idle);
      if (this.slots.length + this.opening < this.maxChannels) {
        this.opening++;
        try {
          const sftp = await call<SFTPWrapper>((cb) => this.client.sftp(cb));
          const slot: Slot = { sftp, busy: 0 };
          const drop = (): void => {
            const i = this.slots.indexOf(slot);
            if (i >= 0) this.slots.splice(i, 1);
          };
          sftp.on('close', drop);
          sftp.on('error', drop);
          this.slots.push(slot);
          return take(slot);
        } catch (e) {
          if (this.dead || this.slots.length === 0) throw e;
          // The server's MaxSessions is lower than ours: share the channels it gave.
          this.maxChannels = Math.max(1, this.slots.length);
        } finally {
          this.opening--;
        }
        continue;
      }
      if (this.slots.length > 0) return take(this.slots.reduce((a, b) => (b.busy < a.busy ? b : a)));
      // Every channel is still being opened: wait for the next one to come or fail.
      await new Promise<void>((resolve) => setTimeout(resolve, 5));
    }
  }

  async end(): Promise<void> {
    if (this.dead) {
      this.client.destroy();
      return;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.client.destroy();
        resolve();
      }, 2000);
      this.client.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      this.client.end();
    });
  }
}

class SftpBackend implements ObjectBackend {
  readonly url: string;
  readonly parallelism = CHANNELS;
  /** The store's folder as the server takes it: `/~/x` is x relative to the home the session starts in. */
  private readonly root: string;
  private conn: Connection | undefined;
  private closed = false;
  /** Why the last host key was refused, to turn ssh2's bare "Host denied" into what to do. */
  private hostKeyRefusal: string | undefined;

  constructor(
    private readonly u: SftpStoreUrl,
    private readonly c: Credentials,
  ) {
    this.url = formatStoreUrl(u);
    const p = u.path;
    this.root = p === '/~' ? '.' : p.startsWith('/~/') ? p.slice(3).replace(/\/+$/, '') || '.' : p;
  }

  private pathOf(key: string): string {
    return this.root === '.' ? key : `${this.root}/${key}`;
  }

  private connection(): Connection {
    if (this.conn && !this.conn.dead) return this.conn;
    if (this.conn) {
      this.conn.client.destroy();
      this.conn = undefined;
    }
    const config: ConnectConfig = {
      host: this.u.host,
      port: this.u.port,
      username: this.c.username,
      authHandler: this.c.auth,
      hostVerifier: (key: Buffer): boolean => {
        const verdict = verifyHostKey(this.c.known, key);
        this.hostKeyRefusal = verdict.ok ? undefined : hostKeyMessage(this.u, this.c, key, verdict);
        return verdict.ok;
      },
      algorithms: { serverHostKey: hostKeyAlgorithms(this.c.known) as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] },
      readyTimeout: 20_000,
      // A connection that silently stopped answering is dropped, failing its calls as worth a retry.
      keepaliveInterval: 10_000,
      keepaliveCountMax: 3,
    };
    const conn = new Connection(config, (e) => this.failure(e, undefined));
    this.conn = conn;
    return conn;
  }

  /**
   * Runs one call on a channel, rejecting as soon as `signal` fires. The work itself is not cut off:
   * it finishes (closing handles, removing its temp file) on its own, checking the signal before it
   * makes anything visible.
   */
  private async run<T>(signal: AbortSignal | undefined, path: string | undefined, fn: (sftp: SFTPWrapper) => Promise<T>): Promise<T> {
    if (this.closed) throw new FragfsError('REMOTE', `${this.url}: the store was closed`);
    signal?.throwIfAborted();
    const work = (async () => {
      const slot = await this.connection().acquire();
      try {
        return await fn(slot.sftp);
      } finally {
        slot.busy--;
      }
    })();
    work.catch(() => undefined);
    try {
      return await raceAbort(work, signal);
    } catch (e) {
      if (signal?.aborted && e === signal.reason) throw e;
      throw this.failure(e, path);
    }
  }

  /** Classifies what ssh2 or the server said (remote-failure.ts). */
  private failure(e: unknown, path: string | undefined): Error {
    if (e instanceof RemoteFailure || e instanceof FragfsError) return e;
    const where = path === undefined ? '' : ` (${path})`;
    const status = statusOf(e);
    if (status !== undefined) {
      switch (status) {
        case FX.PERMISSION_DENIED:
          return new RemoteFailure('auth', `permission denied${where}`, { cause: e });
        case FX.NO_CONNECTION:
        case FX.CONNECTION_LOST:
          return new RemoteFailure('retry', `${messageOf(e)}${where}`, { cause: e });
        default:
          return new RemoteFailure('final', `${messageOf(e)}${where}`, { cause: e });
      }
    }
    const level = (e as SftpError | undefined)?.level;
    if (level === 'client-authentication') {
      const tried = this.c.tried.join(', ');
      return new RemoteFailure('auth', `the server refused the SSH keys for ${this.c.username} (${tried})`, { cause: e });
    }
    if (level === 'handshake' && this.hostKeyRefusal !== undefined) return new RemoteFailure('auth', this.hostKeyRefusal, { cause: e });
    if (level === 'handshake' && /no matching|unsupported/i.test(messageOf(e))) return new RemoteFailure('final', messageOf(e), { cause: e });
    const lost = /no response|not connected|channel open failure|connection lost/i.test(messageOf(e));
    if (isTransientNetworkError(e) || level !== undefined || this.conn?.dead || lost) {
      return new RemoteFailure('retry', `${messageOf(e)}${where}`, { cause: e });
    }
    return new RemoteFailure('final', `${messageOf(e)}${where}`, { cause: e });
  }

  get(key: string, o?: CallOptions): Promise<Uint8Array | undefined> {
    return this.read(key, 0, undefined, o);
  }

  getRange(key: string, offset: number, length: number, o?: CallOptions): Promise<Uint8Array | undefined> {
    return this.read(key, offset, length, o);
  }

  /** From `offset`, `length` bytes or up to the end (fewer where the file ends first); undefined if absent. */
  private async read(key: string, offset: number, length: number | undefined, o?: CallOptions): Promise<Uint8Array | undefined> {
    const path = this.pathOf(key);
    return this.run(o?.signal, path, async (sftp) => {
      let handle: Buffer;
      try {
        handle = await call<Buffer>((cb) => sftp.open(path, 'r', cb));
      } catch (e) {
        if (statusOf(e) === FX.NO_SUCH_FILE) return undefined;
        throw e;
      }
      try {
        const { size } = await call<Stats>((cb) => sftp.fstat(handle, cb));
        const want = Math.max(0, Math.min(length ?? size, size - offset));
        const buf = Buffer.allocUnsafe(want);
        await inChunks(want, async (start, len) => {
          // The server may answer with fewer bytes than asked: ask again for the rest.
          for (let done = 0; done < len; ) {
            const at = offset + start + done;
            const n = await call<number>((cb) => sftp.read(handle, buf, start + done, len - done, at, cb));
            if (!n) throw new RemoteFailure('retry', `${path} ended at ${at} of ${size} bytes while it was read`);
            done += n;
          }
        });
        return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      } finally {
        await call((cb) => sftp.close(handle, cb)).catch(() => undefined);
      }
    });
  }

  async put(key: string, bytes: Uint8Array, o: PutOptions & CallOptions = {}): Promise<boolean> {
    const target = this.pathOf(key);
    const dir = posix.dirname(target);
    const tmp = `${dir}/${sftpTempName()}`;
    const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return this.run(o.signal, target, async (sftp) => {
      let handle: Buffer;
      try {
        handle = await call<Buffer>((cb) => sftp.open(tmp, 'wx', { mode: 0o600 }, cb));
      } catch (e) {
        if (statusOf(e) !== FX.NO_SUCH_FILE) throw await this.writeFailure(sftp, e, dir, data.length);
        await mkdirs(sftp, dir);
        handle = await call<Buffer>((cb) => sftp.open(tmp, 'wx', { mode: 0o600 }, cb));
      }
      let placed = false;
      try {
        try {
          await inChunks(data.length, (start, len) => call((cb) => sftp.write(handle, data, start, len, start, cb)));
          // Durable when it resolves (the contract): servers without fsync@openssh.com get no better.
          await extension((cb) => sftp.ext_openssh_fsync(handle, cb));
        } finally {
          await call((cb) => sftp.close(handle, cb));
        }
        // An aborted put stops here, before anything is visible under the key.
        o.signal?.throwIfAborted();
        if (o.ifAbsent) return (placed = await this.create(sftp, tmp, target));
        await this.replace(sftp, tmp, target);
        placed = true;
        return true;
      } catch (e) {
        throw await this.writeFailure(sftp, e, dir, data.length);
      } finally {
        // After a link (or a create that lost) the temp name is still there; after a rename it is not.
        if (!placed || o.ifAbsent) await call((cb) => sftp.unlink(tmp, cb)).catch(() => undefined);
      }
    });
  }

  /**
   * Create only: a hard link of the complete temp file fails when the key exists (link(2) EEXIST), so
   * of racing creators exactly one wins and the object appears whole. Servers without
   * hardlink@openssh.com get SFTP's plain RENAME, which OpenSSH and most servers refuse over an
   * existing file.
   */
  private async create(sftp: SFTPWrapper, tmp: string, target: string): Promise<boolean> {
    try {
      const linked = extension((cb) => sftp.ext_openssh_hardlink(tmp, target, cb));
      await (linked ?? call((cb) => sftp.rename(tmp, target, cb)));
      return true;
    } catch (e) {
      if (statusOf(e) !== FX.FAILURE) throw e;
      const exists = await call<Stats>((cb) => sftp.stat(target, cb)).then(
        () => true,
        () => false,
      );
      if (exists) return false;
      throw e;
    }
  }

  /**
   * Replace: rename(2) through posix-rename@openssh.com swaps the file in one step. A server without
   * it refuses a plain RENAME over an existing file, so there the old object is unlinked first and
   * a reader can briefly find none (never a partial one).
   */
  private async replace(sftp: SFTPWrapper, tmp: string, target: string): Promise<void> {
    const posixRename = extension<void>((cb) => sftp.ext_openssh_rename(tmp, target, cb));
    if (posixRename) return posixRename;
    try {
      await call((cb) => sftp.rename(tmp, target, cb));
    } catch (e) {
      if (statusOf(e) !== FX.FAILURE) throw e;
      await call((cb) => sftp.unlink(target, cb)).catch(() => undefined);
      await call((cb) => sftp.rename(tmp, target, cb));
    }
  }

  /**
   * OpenSSH answers ENOSPC and EDQUOT as a bare SSH_FX_FAILURE: a look at the folder's file system
   * (statvfs@openssh.com) tells a full disk from other failures.
   */
  private async writeFailure(sftp: SFTPWrapper, e: unknown, dir: string, size: number): Promise<unknown> {
    if (statusOf(e) !== FX.FAILURE) return e;
    const st = await extension<Record<string, number | bigint>>((cb) => sftp.ext_openssh_statvfs(dir, cb))?.catch(() => undefined);
    if (st) {
      const free = Number(st['f_bavail'] ?? 0) * Number(st['f_frsize'] ?? st['f_bsize'] ?? 0);
      if (free < size + CHUNK || Number(st['f_favail'] ?? 1) === 0) {
        return new RemoteFailure('no-space', `no space left on the server's disk (${free} bytes free in ${dir})`, { cause: e });
      }
    }
    return e;
  }

  async size(key: string, o?: CallOptions): Promise<number | undefined> {
    const path = this.pathOf(key);
    return this.run(o?.signal, path, async (sftp) => {
      try {
        const st = await call<Stats>((cb) => sftp.stat(path, cb));
        return st.isFile() ? st.size : undefined;
      } catch (e) {
        if (statusOf(e) === FX.NO_SUCH_FILE) return undefined;
        throw e;
      }
    });
  }

  async delete(key: string, o?: CallOptions): Promise<void> {
    const path = this.pathOf(key);
    return this.run(o?.signal, path, async (sftp) => {
      try {
        await call((cb) => sftp.unlink(path, cb));
      } catch (e) {
        if (statusOf(e) !== FX.NO_SUCH_FILE) throw e;
      }
    });
  }

  /**
   * Walks the folders under the prefix, a few at a time. Names that are not key segments (temp
   * files, a user's stray files) are passed over; folders are left in place when emptied, so a
   * walk may meet empty ones.
   */
  async *list(prefix: string, o?: CallOptions): AsyncIterable<ObjectEntry> {
    const queue: string[] = [prefix === '' ? '' : prefix.slice(0, -1)];
    const running = new Map<number, Promise<[number, Listing]>>();
    let next = 0;
    while (queue.length > 0 || running.size > 0) {
      while (queue.length > 0 && running.size < LIST_DIRS_AT_ONCE) {
        const id = next++;
        const p = this.readDir(queue.shift()!, o?.signal).then((l): [number, Listing] => [id, l]);
        p.catch(() => undefined);
        running.set(id, p);
      }
      const [id, listing] = await Promise.race(running.values());
      running.delete(id);
      queue.push(...listing.dirs);
      yield* listing.files;
    }
  }

  private async readDir(rel: string, signal: AbortSignal | undefined): Promise<Listing> {
    const path = rel === '' ? this.root : this.pathOf(rel);
    return this.run(signal, path, async (sftp) => {
      const out: Listing = { files: [], dirs: [] };
      let entries: FileEntryWithStats[];
      try {
        entries = await call<FileEntryWithStats[]>((cb) => sftp.readdir(path, cb));
      } catch (e) {
        // A folder not made yet, or removed since its parent was read: it holds no object.
        if (statusOf(e) === FX.NO_SUCH_FILE) return out;
        throw e;
      }
      for (const { filename, attrs } of entries) {
        if (!SEGMENT_RE.test(filename) || filename === '.' || filename === '..') continue;
        const key = rel === '' ? filename : `${rel}/${filename}`;
        if (Buffer.byteLength(key) > MAX_OBJECT_KEY_BYTES) continue;
        let st: Stats = attrs;
        if (st.isSymbolicLink()) {
          // Followed, as a store moved in parts to other disks may be symlinked; the key length
          // bound ends a loop.
          const target = await call<Stats>((cb) => sftp.stat(`${path}/${filename}`, cb)).catch(() => undefined);
          if (!target) continue;
          st = target;
        }
        if (st.isDirectory()) out.dirs.push(key);
        else if (st.isFile()) out.files.push({ key, size: st.size });
      }
      return out;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const conn = this.conn;
    this.conn = undefined;
    await conn?.end();
  }
}

interface Listing {
  files: ObjectEntry[];
  dirs: string[];
}

/** Calls `fn` on each CHUNK of [0, size), a few in flight at once, as SFTP pipelines requests. */
async function inChunks(size: number, fn: (start: number, len: number) => Promise<unknown>): Promise<void> {
  let offset = 0;
  const worker = async (): Promise<void> => {
    while (offset < size) {
      const start = offset;
      const len = Math.min(CHUNK, size - start);
      offset += len;
      await fn(start, len);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CHUNKS_IN_FLIGHT, Math.ceil(size / CHUNK)) }, worker));
}

/** mkdir -p with 0700 folders; a folder another writer made meanwhile is fine. */
async function mkdirs(sftp: SFTPWrapper, dir: string): Promise<void> {
  try {
    await call((cb) => sftp.mkdir(dir, { mode: 0o700 }, cb));
  } catch (e) {
    const status = statusOf(e);
    if (status === FX.NO_SUCH_FILE) {
      const parent = posix.dirname(dir);
      if (parent === dir || parent === '.') throw e;
      await mkdirs(sftp, parent);
      return mkdirs(sftp, dir);
    }
    const st = await call<Stats>((cb) => sftp.stat(dir, cb)).catch(() => undefined);
    if (st?.isDirectory()) return;
    throw e;
  }
}

/**
 * Opens a backend on an sftp:// URL. Keys and known_hosts are read now (their errors are the
 * user's to fix); the connection is made by the first call, so ResilientBackend retries a server
 * that is not up yet.
 */
export async function openSftpBackend(url: SftpStoreUrl, o: SftpOptions = {}): Promise<ObjectBackend> {
  return new SftpBackend(url, credentials(url, o));
}
