// The control channel of a mount process: one JSON request line in, one JSON reply line out, over a
// unix socket only its user can reach. `fragfs snapshot` asks the process that owns the live state to
// snapshot it (no second writer), `fragfs umount` asks it to flush and unmount and exit.

import { chmod, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { ERROR_CODES, type ErrorCode, FragfsError } from '../errors.js';

/**
 * `unlessRoot`: take none when the tree's root dir is still that meta id (the reply then has no key).
 * `tags`: for the ref. `claim`: refuse a name another snapshot has, unless `replace` (which moves it).
 */
export type ControlRequest =
  | { op: 'snapshot'; name?: string; unlessRoot?: string; tags?: string[]; claim?: boolean; replace?: boolean }
  | { op: 'umount'; lazy?: boolean }
  | { op: 'status' };

/** What a snapshot request asks beyond its name (ControlRequest). */
export interface SnapshotAsk {
  tags?: string[];
  claim?: boolean;
  replace?: boolean;
}

export type ControlReply =
  | { ok: true; key?: string; root?: string; status?: Record<string, unknown> }
  | { ok: false; code: ErrorCode; message: string };

export interface ControlHandlers {
  snapshot(name?: string, unlessRoot?: string, ask?: SnapshotAsk): Promise<{ key: string; root: string } | undefined>;
  /**
   * Flush, unmount, release everything; the reply is sent after it resolves. `lazy`: resolves once
   * the mount point is detached; the process serves the files still open there, then ends.
   */
  umount(lazy: boolean): Promise<void>;
  status(): Record<string, unknown>;
  /** Called after a successful umount reply was written (the process exits there, unless lazy). */
  afterUmount(lazy: boolean): void;
}

const MAX_REQUEST_BYTES = 64 * 1024;

function toReply(e: unknown): ControlReply {
  if (e instanceof FragfsError) return { ok: false, code: e.code, message: e.message };
  const text = e instanceof Error ? (e.stack ?? e.message) : String(e);
  process.stderr.write(`fragfs: internal error on the control channel (a bug): ${text}\n`);
  return { ok: false, code: 'IO', message: `internal error in the mount process: ${e instanceof Error ? e.message : String(e)}` };
}

export async function startControlServer(socketPath: string, h: ControlHandlers): Promise<Server> {
  // A socket file left by a killed process blocks listen(); the caller holds the lock or the mount
  // point, so nobody else can be serving it.
  await unlink(socketPath).catch(() => undefined);
  const server = createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('error', () => undefined);
    conn.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES) return conn.destroy();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      buf = '';
      conn.pause();
      void handle(line).then(({ reply, after }) => {
        conn.end(`${JSON.stringify(reply)}\n`, () => after?.());
      });
    });
  });
  async function handle(line: string): Promise<{ reply: ControlReply; after?: () => void }> {
    let req: ControlRequest;
    try {
      req = JSON.parse(line) as ControlRequest;
    } catch {
      return { reply: { ok: false, code: 'USAGE', message: 'malformed control request' } };
    }
    try {
      switch (req.op) {
        case 'snapshot':
          return {
            reply: {
              ok: true,
              ...(await h.snapshot(req.name, req.unlessRoot, {
                ...(Array.isArray(req.tags) ? { tags: req.tags.map(String) } : {}),
                claim: req.claim === true,
                replace: req.replace === true,
              })),
            },
          };
        case 'umount': {
          const lazy = req.lazy === true;
          await h.umount(lazy);
          return { reply: { ok: true }, after: () => h.afterUmount(lazy) };
        }
        case 'status':
          return { reply: { ok: true, status: h.status() } };
        default:
          return { reply: { ok: false, code: 'USAGE', message: `unknown control request` } };
      }
    } catch (e) {
      return { reply: toReply(e) };
    }
  }
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  await chmod(socketPath, 0o600);
  return server;
}

/**
 * Sends one request. Resolves to undefined when nothing listens there (no socket, refused: the
 * mount process is gone); a reply with ok false becomes the FragfsError it describes.
 */
export function controlRequest(socketPath: string, req: ControlRequest, timeoutMs = 10 * 60_000): Promise<ControlReply | undefined> {
  return new Promise((resolveReply, reject) => {
    const conn = createConnection(socketPath);
    let buf = '';
    let settled = false;
    const done = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.destroy();
      f();
    };
    const timer = setTimeout(
      () => done(() => reject(new FragfsError('IO', `the mount process did not answer on ${socketPath} within ${timeoutMs / 1000} s`))),
      timeoutMs,
    );
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${JSON.stringify(req)}\n`));
    conn.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const reply = JSON.parse(buf.slice(0, nl)) as ControlReply;
      done(() => {
        if (reply.ok) return resolveReply(reply);
        const code: ErrorCode = reply.code in ERROR_CODES ? reply.code : 'IO';
        reject(new FragfsError(code, reply.message));
      });
    });
    conn.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'ENOTSOCK') return done(() => resolveReply(undefined));
      done(() => reject(new FragfsError('IO', `cannot reach the mount process on ${socketPath}: ${e.message}`, { cause: e })));
    });
    conn.on('end', () => done(() => reject(new FragfsError('IO', `the mount process closed ${socketPath} without an answer`))));
  });
}
