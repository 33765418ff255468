// The rclone service as an ObjectBackend: like restic, fragfs runs `rclone serve restic --stdio
// REMOTE:PATH` and speaks HTTP/2 (cleartext, prior knowledge) on the child's stdin and stdout, so
// every provider rclone knows is reachable without a server or a port. Where keys live is
// rclone-names.ts. What rclone 1.60's restic server gives, read in cmd/serve/restic/restic.go, and
// what this file makes of it:
//
// - put is a POST, which rclone hands to the remote's own Put. Object stores (S3, GCS, Azure Blob,
//   B2, Swift) replace an object atomically. The local, SFTP, FTP and WebDAV remotes write the file
//   in place (O_TRUNC, no temporary file, no fsync): a reader may meet a prefix while it is
//   written, and a killed rclone leaves one. The protocol has no rename to do better, so each
//   object ends with a 16-byte trailer (a mark, its crc32 and its length) and a get that finds
//   anything but a whole object fails 'retry': a reader never gets a prefix, it waits out a write
//   under way and reports one a crash cut short. What stays the remote's: an upload that fails on
//   an in-place remote removes the file, old bytes included; durability is its Put's; size and
//   list take the size from the listing or HEAD, so they may report a torn object's.
// - ifAbsent: the protocol has no conditional create. rclone's --append-only refuses a POST over an
//   existing object, but by the same look-then-write, with an object cache that answers stale
//   after another process deletes (unless --cache-objects=false), and it refuses deletes outside
//   locks/. So a create here is a HEAD and then a POST, taken in turn with every other create of the
//   same key on the same REMOTE:PATH in this process: exact among the callers of one process, and
//   between processes or machines two creates that overlap in time may both resolve true.
// - The child runs with --cache-objects=false, as its cache would answer GET and HEAD for objects
//   another process has since replaced or deleted, and under umask 077, so the local remote (which
//   creates files 0666 and folders 0777 less the umask) makes them 0600 and 0700.
// - Errors: the server answers 404 for a missing object, 403 only in its append-only and
//   private-repos modes, and 500 for any failure of the remote (also a full disk or a refusal);
//   the reason is only on its stderr, whose last line the failure carries. A child that dies fails
//   the calls in flight with 'retry' and the next call starts another.

import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, mkdtemp, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { FragfsError } from '../errors.js';
import { withKeyLock } from '../store/key-lock.js';
import type { CallOptions, ObjectBackend, ObjectEntry, PutOptions } from './object-backend.js';
import { RemoteFailure } from './remote-failure.js';
import { keyOfName, listPaths, objectPath } from './rclone-names.js';
import type { RcloneStoreUrl } from './store-url.js';

const REST_V2 = 'application/vnd.x.restic.rest.v2';
const STDERR_LINES = 20;
const BODY_SLICE = 256 * 1024;
const TRAILER_MARK = Buffer.from('ffr1');
const TRAILER_BYTES = 16;
const EXIT_GRACE_MS = 3000;
/** How long a failure waits for the child's exit status, which names the cause better. */
const EXIT_WAIT_MS = 1000;

/** The rclone program to run: FRAGFS_RCLONE, else `rclone` on PATH; a one-line error without it. */
async function findRclone(): Promise<string> {
  const given = process.env['FRAGFS_RCLONE'];
  const candidates =
    given !== undefined && given !== ''
      ? [given]
      : (process.env['PATH'] ?? '')
          .split(delimiter)
          .filter((d) => isAbsolute(d))
          .map((d) => join(d, 'rclone'));
  for (const c of candidates) {
    try {
      await access(c, fsConstants.X_OK);
      return c;
    } catch {
      // The next candidate.
    }
  }
  const what = given ? `${given} (FRAGFS_RCLONE) is not an executable` : 'no rclone program on PATH';
  throw new FragfsError('NOT_SUPPORTED', `rclone stores need rclone: ${what}; install it (e.g. apt-get install rclone) or set FRAGFS_RCLONE to its path`);
}

export async function openRcloneBackend(url: RcloneStoreUrl): Promise<ObjectBackend> {
  return new RcloneBackend(await findRclone(), url.remote);
}

/**
 * Two connected Unix sockets, made through a listening socket in a fresh 0700 folder that only this
 * user can reach. A real socket, not the child's two pipes wrapped in a Duplex: node's http2 takes
 * a non-native stream through JSStreamSocket, which trips an internal assertion (node 20) when a
 * session ends while a write to a dead child waits.
 */
async function socketPair(): Promise<[Socket, Socket]> {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-rclone-'));
  const server = createServer();
  try {
    const path = join(dir, 'stdio');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    const ours = connect(path);
    await new Promise<void>((resolve, reject) => {
      ours.once('error', reject);
      ours.once('connect', () => resolve());
    });
    return [ours, await accepted];
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Writes a request body in slices as the stream drains. Handed over whole, a large body stays in
 * node's count of the session's memory after the stream is cancelled, and past maxSessionMemory node
 * refuses every later answer on the session (RST_STREAM ENHANCE_YOUR_CALM).
 */
function writeBody(stream: http2.ClientHttp2Stream, parts: readonly Uint8Array[]): void {
  let part = 0;
  let offset = 0;
  const pump = (): void => {
    for (; part < parts.length; part++, offset = 0) {
      const body = parts[part]!;
      while (offset < body.byteLength) {
        const slice = body.subarray(offset, Math.min(offset + BODY_SLICE, body.byteLength));
        offset += slice.byteLength;
        if (!stream.write(slice)) {
          stream.once('drain', pump);
          return;
        }
      }
    }
    stream.end();
  };
  pump();
}

/** The 16 bytes after each object's own: a mark, the crc32 of the bytes, and their length. */
function trailerOf(bytes: Uint8Array): Buffer {
  const t = Buffer.alloc(TRAILER_BYTES);
  TRAILER_MARK.copy(t, 0);
  t.writeUInt32BE(crc32(bytes), 4);
  t.writeBigUInt64BE(BigInt(bytes.byteLength), 8);
  return t;
}

/** An object's own bytes, or undefined when what was read is not all of one (cut off, or torn). */
function withoutTrailer(body: Buffer): Uint8Array | undefined {
  if (body.byteLength < TRAILER_BYTES) return undefined;
  const at = body.byteLength - TRAILER_BYTES;
  const bytes = body.subarray(0, at);
  const ok =
    body.subarray(at, at + 4).equals(TRAILER_MARK) &&
    body.readBigUInt64BE(at + 8) === BigInt(at) &&
    body.readUInt32BE(at + 4) === crc32(bytes);
  return ok ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : undefined;
}

/** A wait that races the child's exit; unref'd, as the child (while it counts) holds the process. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

interface RequestOptions {
  accept?: string;
  body?: readonly Uint8Array[];
  signal?: AbortSignal | undefined;
  /** A Range header's value (restic's REST protocol reads parts of packs so). */
  range?: string;
}

interface Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** One child and the HTTP/2 session on its stdio; unusable for good once either ends. */
class RcloneChild {
  readonly proc: ChildProcess;
  readonly h2: http2.ClientHttp2Session;
  private readonly socket: Socket;
  private readonly stderr: string[] = [];
  private partial = '';
  private connected = false;
  private inFlight = 0;
  private closing = false;
  private broken = false;
  /** Why the child can take no more requests (set once). */
  death: RemoteFailure | undefined;
  readonly exited: Promise<void>;

  /** A child whose stdin and stdout are both one end of a Unix socket pair, the other end ours. */
  static async start(bin: string, remote: string): Promise<RcloneChild> {
    const [ours, theirs] = await socketPair();
    try {
      return new RcloneChild(bin, remote, ours, theirs);
    } finally {
      theirs.destroy();
    }
  }

  private constructor(bin: string, remote: string, socket: Socket, theirs: Socket) {
    // `exec` keeps the PID rclone's own, so close() and a crash are about rclone and nothing else.
    this.proc = spawn('/bin/sh', ['-c', 'umask 077 && exec "$0" "$@"', bin, 'serve', 'restic', '--stdio', '--cache-objects=false', remote], {
      stdio: [theirs, theirs, 'pipe'],
    });
    this.proc.stderr!.setEncoding('utf8');
    this.proc.stderr!.on('data', (s: string) => this.addStderr(s));
    this.proc.once('error', (e) => this.die(new RemoteFailure('retry', `cannot run rclone: ${e.message}`, { cause: e })));
    // 'close' comes after the exit and the end of stderr, so the failure carries rclone's last word.
    this.exited = new Promise((resolve) =>
      this.proc.once('close', (code, signal) => {
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        // Before the server's first frame, rclone failed to open the remote: a bad name or config.
        this.die(new RemoteFailure(this.connected ? 'retry' : 'final', `rclone ${how}${this.lastLine()}`));
        resolve();
      }),
    );
    this.socket = socket;
    this.socket.on('error', () => undefined);
    this.h2 = http2.connect('http://rclone', { createConnection: () => this.socket });
    // Go's server sends its SETTINGS once the remote is open; node's 'connect' comes sooner.
    this.h2.once('remoteSettings', () => (this.connected = true));
    this.h2.on('error', (e) => this.sessionEnded(`rclone connection: ${e.message}`, e));
    this.h2.once('goaway', () => this.sessionEnded('rclone ended the session'));
    this.h2.once('close', () => this.sessionEnded('the rclone session closed'));
    this.idle();
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  private addStderr(s: string): void {
    const lines = (this.partial + s).split('\n');
    this.partial = lines.pop()!.slice(-4096);
    for (const l of lines) if (l.trim() !== '') this.stderr.push(l.trim());
    this.stderr.splice(0, Math.max(0, this.stderr.length - STDERR_LINES));
  }

  /** ": <rclone's last stderr line>", or '' when it said nothing. */
  lastLine(): string {
    // rclone's log lines open with a date and time, of no use in a one-line error.
    const l = (this.partial.trim() || this.stderr.at(-1))?.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, '');
    return l ? `: ${l.slice(0, 300)}` : '';
  }

  /** Whether a new request may go to this child. */
  get usable(): boolean {
    return !this.broken && !this.death;
  }

  /** The session is over: the child's exit, if it comes soon, says why better than the session can. */
  private sessionEnded(why: string, cause?: unknown): void {
    this.broken = true;
    void Promise.race([this.exited, delay(EXIT_WAIT_MS)]).then(() =>
      this.die(new RemoteFailure(this.connected ? 'retry' : 'final', `${why}${this.lastLine()}`, { cause })),
    );
  }

  die(why: RemoteFailure): void {
    if (this.death) return;
    this.death = why;
    this.h2.destroy();
    this.socket.destroy();
    if (!this.closing && this.proc.exitCode === null && this.proc.signalCode === null && this.proc.pid !== undefined) this.proc.kill('SIGTERM');
  }

  /** A forgotten backend must not keep the process alive: the child counts only while a call waits. */
  private idle(): void {
    const refs = [this.proc, this.socket, this.proc.stderr] as unknown as ({ ref?(): void; unref?(): void } | null)[];
    for (const r of refs) {
      if (this.inFlight > 0) r?.ref?.();
      else r?.unref?.();
    }
  }

  request(method: string, path: string, o: RequestOptions): Promise<Reply> {
    const signal = o.signal;
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    if (!this.usable) return Promise.race([this.exited, delay(EXIT_WAIT_MS)]).then(() => Promise.reject(this.failure(new Error('the session has ended'))));
    return new Promise<Reply>((resolve, reject) => {
      const headers: http2.OutgoingHttpHeaders = { ':method': method, ':path': path };
      if (o.accept) headers['accept'] = o.accept;
      if (o.range) headers['range'] = o.range;
      if (o.body) {
        headers['content-type'] = 'application/octet-stream';
        headers['content-length'] = o.body.reduce((n, b) => n + b.byteLength, 0);
      }
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.h2.request(headers, { endStream: o.body === undefined });
      } catch (e) {
        reject(this.failure(e));
        return;
      }
      this.inFlight++;
      this.idle();
      let settled = false;
      let status = 0;
      let replyHeaders: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      const settle = (e: unknown, r?: Reply): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        this.inFlight--;
        this.idle();
        if (r) resolve(r);
        else reject(e as Error);
      };
      const onAbort = (): void => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        settle(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const fail = (e: unknown): void => {
        if (settled) return;
        // A child that ends before its first frame is about to say why it could not start.
        if (this.connected || this.death) settle(this.failure(e));
        else void Promise.race([this.exited, delay(EXIT_WAIT_MS)]).then(() => settle(this.failure(e)));
      };
      stream.on('response', (h) => {
        status = Number(h[':status']);
        replyHeaders = h;
      });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (status === 0) fail(new Error('the stream ended without an answer'));
        else settle(undefined, { status, headers: replyHeaders, body: Buffer.concat(chunks) });
      });
      stream.on('error', fail);
      stream.on('close', () => fail(new Error(`the stream was reset (code ${stream.rstCode})`)));
      if (o.body) writeBody(stream, o.body);
    });
  }

  /** A failure of the session or stream: the child's death when that is the cause, else worth a retry. */
  private failure(e: unknown): RemoteFailure {
    if (this.death) return this.death;
    const msg = e instanceof Error ? e.message : String(e);
    return new RemoteFailure('retry', `rclone connection: ${msg}${this.lastLine()}`, { cause: e });
  }

  /** Ends the session so rclone sees end of input and exits; its PID is signalled if it lingers. */
  async shutdown(): Promise<void> {
    this.closing = true;
    this.inFlight++;
    this.idle();
    if (!this.death) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, EXIT_GRACE_MS).unref();
        this.h2.close(() => {
          clearTimeout(t);
          resolve();
        });
      });
      this.socket.end();
    }
    this.death ??= new RemoteFailure('final', 'the rclone store is closed');
    for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
      const gone = await Promise.race([this.exited.then(() => true), delay(EXIT_GRACE_MS).then(() => false)]);
      if (gone || this.proc.pid === undefined) break;
      this.proc.kill(sig);
    }
    this.inFlight--;
    this.idle();
  }
}

export class RcloneBackend implements ObjectBackend {
  readonly url: string;
  /** Streams on the one HTTP/2 session; rclone serves each on its own goroutine. */
  readonly parallelism = 8;
  private child: RcloneChild | undefined;
  private starting: Promise<RcloneChild> | undefined;
  private closed = false;

  constructor(
    private readonly bin: string,
    private readonly remote: string,
  ) {
    this.url = `rclone:${remote}`;
  }

  /** The running child's PID (for tests that kill it), or undefined before the first call. */
  get pid(): number | undefined {
    return this.child?.usable ? this.child.pid : undefined;
  }

  /** The live child, or a new one when the last has died (the call that saw it die failed 'retry'). */
  private async live(): Promise<RcloneChild> {
    if (this.closed) throw new RemoteFailure('final', 'the rclone store is closed');
    if (this.child?.usable) return this.child;
    this.starting ??= RcloneChild.start(this.bin, this.remote)
      .then((c) => (this.child = c))
      .catch((e: unknown) => {
        throw new RemoteFailure('retry', `cannot start rclone: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      })
      .finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async call(method: string, path: string, o: RequestOptions): Promise<Reply> {
    const child = await this.live();
    const r = await child.request(method, path, o);
    if (r.status >= 200 && r.status < 300) return r;
    if (r.status === 404 || (o.range !== undefined && r.status === 416)) return r;
    throw this.statusFailure(child, method, path, r.status);
  }

  private statusFailure(child: RcloneChild, method: string, path: string, status: number): RemoteFailure {
    const why = `${method} ${path}: HTTP ${status}${child.lastLine()}`;
    if (status === 403) return new RemoteFailure('auth', why);
    // rclone says 500 for every failure of the remote; only its log tells a full one.
    if (status === 507 || (status >= 500 && /no space left|quota exceeded|insufficient storage/i.test(child.lastLine()))) {
      return new RemoteFailure('no-space', why);
    }
    if (status >= 500 || status === 429 || status === 408) return new RemoteFailure('retry', why);
    return new RemoteFailure('final', why);
  }

  async get(key: string, o: CallOptions = {}): Promise<Uint8Array | undefined> {
    const r = await this.call('GET', objectPath(key), o);
    if (r.status === 404) return undefined;
    const length = Number(r.headers['content-length'] ?? r.body.byteLength);
    // rclone sends the size it found before reading: a shorter body is an object cut off or changed.
    if (length !== r.body.byteLength) throw new RemoteFailure('retry', `GET ${key}: ${r.body.byteLength} of ${length} bytes`);
    const bytes = withoutTrailer(r.body);
    // A remote that writes in place shows a put under way as a prefix; one a crash cut short stays so.
    if (!bytes) throw new RemoteFailure('retry', `GET ${key}: the object is incomplete (a write under way, or one that was cut short)`);
    return bytes;
  }

  /**
   * Asks for the trailer's length beyond the range too: an answer that holds all of it proves the
   * object's data covers the range, and a shorter one says where the data ends, so a trailer byte
   * is never taken for data. What is read is not checked against the trailer's crc (that needs the
   * whole object): the caller checks it against its own hash, as it checks every fragment.
   */
  async getRange(key: string, offset: number, length: number, o: CallOptions = {}): Promise<Uint8Array | undefined> {
    const r = await this.call('GET', objectPath(key), { signal: o.signal, range: `bytes=${offset}-${offset + length + TRAILER_BYTES - 1}` });
    if (r.status === 404) return undefined;
    if (r.status === 416) return new Uint8Array(0);
    if (r.status === 200) {
      // The whole object (a remote that cannot seek): its trailer is checked as get checks it.
      const whole = withoutTrailer(r.body);
      if (!whole) throw new RemoteFailure('retry', `GET ${key}: the object is incomplete (a write under way, or one that was cut short)`);
      return whole.subarray(Math.min(offset, whole.length), Math.min(offset + length, whole.length));
    }
    const total = /\/(\d+)$/.exec(String(r.headers['content-range'] ?? ''));
    if (!total) throw new RemoteFailure('retry', `GET ${key}: a ranged answer without its object's size`);
    const dataEnd = Number(total[1]) - TRAILER_BYTES;
    if (dataEnd < 0) throw new RemoteFailure('retry', `GET ${key}: the object is incomplete (a write under way, or one that was cut short)`);
    const want = Math.max(0, Math.min(length, dataEnd - offset));
    if (r.body.byteLength < want) throw new RemoteFailure('retry', `GET ${key}: ${r.body.byteLength} of ${want} bytes at ${offset}`);
    return new Uint8Array(r.body.buffer, r.body.byteOffset, want);
  }

  async size(key: string, o: CallOptions = {}): Promise<number | undefined> {
    const r = await this.call('HEAD', objectPath(key), o);
    if (r.status === 404) return undefined;
    const length = Number(r.headers['content-length']);
    if (!Number.isSafeInteger(length) || length < 0) throw new RemoteFailure('final', `HEAD ${key}: no size in rclone's answer`);
    if (length < TRAILER_BYTES) throw new RemoteFailure('retry', `HEAD ${key}: the object is incomplete (a write under way, or one that was cut short)`);
    return length - TRAILER_BYTES;
  }

  async put(key: string, bytes: Uint8Array, o: PutOptions & CallOptions = {}): Promise<boolean> {
    const path = objectPath(key);
    const write = async (): Promise<boolean> => {
      const r = await this.call('POST', path, { body: [bytes, trailerOf(bytes)], signal: o.signal });
      if (r.status === 404) throw new RemoteFailure('final', `POST ${key}: HTTP 404`);
      return true;
    };
    if (!o.ifAbsent) return write();
    return withKeyLock(`rclone-create:${this.remote}:${key}`, async () => {
      if (o.signal?.aborted) throw o.signal.reason as Error;
      if ((await this.size(key, o)) !== undefined) return false;
      return write();
    });
  }

  async delete(key: string, o: CallOptions = {}): Promise<void> {
    // 404 is a key already missing, as the contract wants it.
    await this.call('DELETE', objectPath(key), o);
  }

  async *list(prefix: string, o: CallOptions = {}): AsyncIterable<ObjectEntry> {
    for (const path of listPaths(prefix)) {
      const r = await this.call('GET', path, { accept: REST_V2, signal: o.signal });
      // rclone 1.60 answers 404 when a listing failed (a missing folder is an empty list).
      if (r.status === 404) throw new RemoteFailure('retry', `listing ${path}: HTTP 404${this.child?.lastLine() ?? ''}`);
      let items: unknown;
      try {
        items = JSON.parse(r.body.toString('utf8'));
      } catch (e) {
        throw new RemoteFailure('retry', `listing ${path}: not JSON`, { cause: e });
      }
      if (!Array.isArray(items)) throw new RemoteFailure('final', `listing ${path}: not a restic v2 list`);
      for (const item of items as { name?: unknown; size?: unknown }[]) {
        if (typeof item?.name !== 'string' || typeof item.size !== 'number') continue;
        const key = keyOfName(item.name);
        if (key !== undefined && key.startsWith(prefix)) yield { key, size: Math.max(0, item.size - TRAILER_BYTES) };
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.starting?.catch(() => undefined);
    const child = this.child;
    this.child = undefined;
    await child?.shutdown();
  }
}
