// The S3 backend against Ceph radosgw (scripts/servers/s3.sh): the object and Store conformance
// suites, each root a fresh prefix of one bucket, and what is S3's own: the key layout under the
// URL's prefix, refused credentials, a missing bucket, an endpoint that is down or never answers.

import test from 'ava';
import { DeleteBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { FragfsError } from '../../src/errors.js';
import type { ObjectBackend } from '../../src/remote/object-backend.js';
import type { RemoteFailure } from '../../src/remote/remote-failure.js';
import { ResilientBackend } from '../../src/remote/resilient-backend.js';
import { createS3Bucket, openS3Backend } from '../../src/remote/s3-backend.js';
import type { S3StoreUrl } from '../../src/remote/store-url.js';
import { S3_TEST_VARS, serverEnv } from '../helpers/remote-env.js';
import { runObjectConformance } from './object-conformance.js';

const env = serverEnv(test, 'S3 (radosgw)', S3_TEST_VARS);

function s3(bucket: string, prefix = ''): S3StoreUrl {
  return { scheme: 's3', bucket, prefix };
}

async function removeAll(b: ObjectBackend): Promise<void> {
  const keys: string[] = [];
  for await (const e of b.list('')) keys.push(e.key);
  for (let i = 0; i < keys.length; i += 64) await Promise.all(keys.slice(i, i + 64).map((k) => b.delete(k)));
}

/** A loopback port nothing listens on (a server's, just closed). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/**
 * A server that takes connections and never answers (or, with `partial`, sends the start of a
 * 100-byte answer and no more), and the sockets it holds.
 */
async function silentServer(partial: boolean | 'then-close' = false): Promise<{ srv: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const srv = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    if (partial) {
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
        if (partial === 'then-close') s.end();
      });
    }
    // Reading is what shows the client's close: a paused socket never sees the end.
    s.resume();
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return { srv, port: (srv.address() as { port: number }).port, sockets };
}

async function stopServer(s: { srv: Server; sockets: Set<Socket> }): Promise<void> {
  for (const sock of s.sockets) sock.destroy();
  await new Promise<void>((resolve) => s.srv.close(() => resolve()));
}

if (env) {
  const endpoint = env['FRAGFS_TEST_S3_ENDPOINT']!;
  const accessKeyId = env['FRAGFS_TEST_S3_ACCESS_KEY']!;
  const secretAccessKey = env['FRAGFS_TEST_S3_SECRET_KEY']!;
  // The backend reads the usual AWS environment: the test server's, and nothing of the machine's.
  for (const name of ['AWS_ENDPOINT_URL_S3', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_DEFAULT_REGION', 'FRAGFS_S3_PATH_STYLE']) delete process.env[name];
  process.env['AWS_ENDPOINT_URL'] = endpoint;
  process.env['AWS_ACCESS_KEY_ID'] = accessKeyId;
  process.env['AWS_SECRET_ACCESS_KEY'] = secretAccessKey;
  process.env['AWS_REGION'] = 'us-east-1';

  const bucket = `fragfs-test-${randomBytes(6).toString('hex')}`;

  test.before(async () => {
    await createS3Bucket(s3(bucket));
  });

  test.after.always(async () => {
    const client = new S3Client({ endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId, secretAccessKey } });
    try {
      await client.send(new DeleteBucketCommand({ Bucket: bucket }));
    } finally {
      client.destroy();
    }
  });

  runObjectConformance(test, 's3', async () => {
    const url = s3(bucket, `t-${randomBytes(6).toString('hex')}`);
    return {
      open: () => openS3Backend(url),
      remove: async () => {
        const b = await openS3Backend(url);
        try {
          await removeAll(b);
        } finally {
          await b.close();
        }
      },
    };
  });

  test('s3: keys live under PREFIX/ in the bucket; folder markers and neighbours are not listed', async (t) => {
    const prefix = `layout-${randomBytes(4).toString('hex')}`;
    const inner = await openS3Backend(s3(bucket, `${prefix}/deep`));
    const whole = await openS3Backend(s3(bucket));
    try {
      await inner.put('a/b', Buffer.from('x'));
      await whole.put(`${prefix}/deep-not/c`, Buffer.from('y'));
      await whole.put(`${prefix}/deep/a/marker/`, new Uint8Array(0));
      t.is(await whole.size(`${prefix}/deep/a/b`), 1);
      const keys: string[] = [];
      for await (const e of inner.list('')) keys.push(e.key);
      t.deepEqual(keys, ['a/b']);
      const all: string[] = [];
      for await (const e of whole.list(`${prefix}/`)) all.push(e.key);
      t.deepEqual(all.sort(), [`${prefix}/deep-not/c`, `${prefix}/deep/a/b`]);
    } finally {
      await whole.delete(`${prefix}/deep/a/marker/`);
      await removeAll(inner);
      await whole.delete(`${prefix}/deep-not/c`);
      await inner.close();
      await whole.close();
    }
  });

  test('s3: a wrong secret key or an unknown access key is REMOTE_AUTH at once, one line, no secret in it', async (t) => {
    const wrongSecret = `wrong-${randomBytes(8).toString('hex')}`;
    for (const [credentials, code] of [
      [{ accessKeyId, secretAccessKey: wrongSecret }, 'SignatureDoesNotMatch'],
      [{ accessKeyId: 'FRAGFSNOSUCHKEY', secretAccessKey: wrongSecret }, 'InvalidAccessKeyId'],
    ] as const) {
      const b = new ResilientBackend(await openS3Backend(s3(bucket, 'auth'), { credentials }), { backoffMs: 1 });
      try {
        for (const call of [() => b.get('x/y'), () => b.put('x/y', Buffer.from('z')), () => b.size('x/y')]) {
          const e = await t.throwsAsync(call(), { instanceOf: FragfsError });
          t.is(e!.code, 'REMOTE_AUTH', e!.message);
          t.regex(e!.message, new RegExp(`^s3://${bucket}/auth: .*access refused: ${code === 'InvalidAccessKeyId' ? '(InvalidAccessKeyId|Forbidden)' : '(SignatureDoesNotMatch|Forbidden)'}`));
          t.false(e!.message.includes('\n'));
          t.false(e!.message.includes(wrongSecret));
          t.false(e!.message.includes(secretAccessKey));
        }
        t.is(b.retries, 0);
      } finally {
        await b.close();
      }
    }
  });

  test('s3: a bucket that does not exist is named as such, and not retried', async (t) => {
    const missing = `fragfs-missing-${randomBytes(6).toString('hex')}`;
    const b = new ResilientBackend(await openS3Backend(s3(missing, 'p')), { backoffMs: 1 });
    try {
      const calls: [string, () => Promise<unknown>][] = [
        ['reading', () => b.get('x/y')],
        ['writing', () => b.put('x/y', Buffer.from('z'))],
        ['listing', async () => {
          for await (const _ of b.list('')) void _;
        }],
      ];
      for (const [what, call] of calls) {
        const e = await t.throwsAsync(call(), { instanceOf: FragfsError });
        t.is(e!.code, 'REMOTE');
        t.is(e!.message, `s3://${missing}/p: ${what} ${what === 'listing' ? '/' : 'x/y'}: the bucket ${missing} does not exist`);
      }
      t.is(b.retries, 0);
    } finally {
      await b.close();
    }
  });

  test('s3: an endpoint where nothing listens is REMOTE after the retries, quickly', async (t) => {
    const port = await closedPort();
    const b = new ResilientBackend(await openS3Backend(s3(bucket, 'down'), { endpoint: `http://127.0.0.1:${port}` }), {
      attempts: 3,
      backoffMs: 10,
      timeoutMs: 2000,
    });
    try {
      const started = Date.now();
      const e = await t.throwsAsync(b.get('x/y'), { instanceOf: FragfsError });
      t.is(e!.code, 'REMOTE');
      t.regex(e!.message, new RegExp(`^s3://${bucket}/down: reading x/y: .*ECONNREFUSED.* \\(3 attempts\\)$`));
      t.is(b.retries, 2);
      t.true(Date.now() - started < 10_000, `${Date.now() - started} ms`);
    } finally {
      await b.close();
    }
  });

  test('s3: a service that never answers times out per attempt; an abort ends a call at once', async (t) => {
    const server = await silentServer();
    try {
      const raw = await openS3Backend(s3(bucket, 'silent'), { endpoint: `http://127.0.0.1:${server.port}` });
      const b = new ResilientBackend(raw, { attempts: 2, backoffMs: 10, timeoutMs: 300 });
      const e = await t.throwsAsync(b.put('x/y', Buffer.from('z')), { instanceOf: FragfsError });
      t.is(e!.code, 'REMOTE');
      t.regex(e!.message, /no answer in 0\.3 s \(2 attempts\)$/);

      const ac = new AbortController();
      const reason = new Error('stop now');
      setTimeout(() => ac.abort(reason), 100);
      const started = Date.now();
      const aborted = await t.throwsAsync(raw.get('x/y', { signal: ac.signal }));
      t.is(aborted, reason);
      t.true(Date.now() - started < 5000, `${Date.now() - started} ms`);
      await b.close();
      // The aborted calls' sockets are gone (closed by the client, not kept for reuse).
      for (let i = 0; i < 150 && server.sockets.size > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
      t.is(server.sockets.size, 0);
    } finally {
      await stopServer(server);
    }
  });

  test('s3: an abort while the body comes ends the read and drops its connection', async (t) => {
    const server = await silentServer(true);
    try {
      const raw = await openS3Backend(s3(bucket, 'partial'), { endpoint: `http://127.0.0.1:${server.port}` });
      const ac = new AbortController();
      const reason = new Error('stop mid-body');
      setTimeout(() => ac.abort(reason), 200);
      t.is(await t.throwsAsync(raw.get('x/y', { signal: ac.signal })), reason);
      for (let i = 0; i < 150 && server.sockets.size > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
      t.is(server.sockets.size, 0);
      await raw.close();
    } finally {
      await stopServer(server);
    }
  });

  test('s3: a body cut short by the service is a failure worth retrying, never short bytes', async (t) => {
    const server = await silentServer('then-close');
    try {
      const raw = await openS3Backend(s3(bucket, 'short'), { endpoint: `http://127.0.0.1:${server.port}` });
      const e = await t.throwsAsync(raw.get('x/y'));
      t.is((e as RemoteFailure).kind, 'retry', e!.message);
      await raw.close();
    } finally {
      await stopServer(server);
    }
  });

  test('s3: an unreadable AWS_CA_BUNDLE is a USAGE error naming it', async (t) => {
    const saved = process.env['AWS_CA_BUNDLE'];
    process.env['AWS_CA_BUNDLE'] = '/nonexistent/fragfs-ca.pem';
    // The bundle is read before openS3Backend's first await: the change is seen by this call alone.
    const opening = openS3Backend(s3(bucket), { endpoint: 'https://127.0.0.1:1' });
    if (saved === undefined) delete process.env['AWS_CA_BUNDLE'];
    else process.env['AWS_CA_BUNDLE'] = saved;
    const e = await t.throwsAsync(opening, { instanceOf: FragfsError });
    t.is(e!.code, 'USAGE');
    t.regex(e!.message, /AWS_CA_BUNDLE names \/nonexistent\/fragfs-ca\.pem, which cannot be read \(ENOENT\)/);
  });
}
