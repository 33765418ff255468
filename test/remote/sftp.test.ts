// The SFTP backend against a private OpenSSH sshd (scripts/servers/sftp.sh): the object and Store
// conformance suites, the known_hosts check, refused keys, an unreachable server, a dropped and a
// stalled connection, temp files of interrupted puts, file modes, and known_hosts parsing alone.

import test from 'ava';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { FragfsError } from '../../src/errors.js';
import type { ObjectBackend, ObjectEntry } from '../../src/remote/object-backend.js';
import { RemoteFailure } from '../../src/remote/remote-failure.js';
import { ResilientBackend } from '../../src/remote/resilient-backend.js';
import { openSftpBackend, sftpTempName, type SftpOptions } from '../../src/remote/sftp-backend.js';
import { findKnownHost, hostKeyAlgorithms, verifyHostKey } from '../../src/remote/sftp-known-hosts.js';
import type { SftpStoreUrl } from '../../src/remote/store-url.js';
import { serverEnv } from '../helpers/remote-env.js';
import { runObjectConformance } from './object-conformance.js';

const { utils } = ssh2;

function publicBlob(): { line: string; blob: Buffer } {
  const pair = utils.generateKeyPairSync('ed25519');
  const [type, b64] = pair.public.split(' ');
  return { line: `${type} ${b64}`, blob: Buffer.from(b64!, 'base64') };
}

function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

test('known_hosts: plain, [host]:port, wildcard, negated, hashed, revoked and cert-authority lines', (t) => {
  const a = publicBlob();
  const b = publicBlob();
  const c = publicBlob();
  const text = [
    '# comment',
    '',
    `example.org,192.0.2.1 ${a.line}`,
    `[example.org]:2222 ${b.line} comment`,
    `*.example.net,!bad.example.net ${c.line}`,
    `${hashed('[hashed.example]:2200')} ${a.line}`,
    `@revoked example.org ${c.line}`,
    `@cert-authority *.example.org ${b.line}`,
  ].join('\n');
  const org = findKnownHost(text, 'Example.ORG', 22);
  t.deepEqual(org.keys.map((k) => k.blob), [a.blob]);
  t.true(verifyHostKey(org, a.blob).ok);
  t.deepEqual(verifyHostKey(org, b.blob), { ok: false, why: 'changed' });
  t.deepEqual(verifyHostKey(org, c.blob), { ok: false, why: 'revoked' });
  // Off port 22 only the [host]:port entries count, as in OpenSSH.
  const org2222 = findKnownHost(text, 'example.org', 2222);
  t.deepEqual(org2222.keys.map((k) => k.blob), [b.blob]);
  t.deepEqual(verifyHostKey(findKnownHost(text, 'example.org', 2223), a.blob), { ok: false, why: 'unknown' });
  t.true(verifyHostKey(findKnownHost(text, 'www.example.net', 22), c.blob).ok);
  t.deepEqual(verifyHostKey(findKnownHost(text, 'bad.example.net', 22), c.blob), { ok: false, why: 'unknown' });
  t.true(verifyHostKey(findKnownHost(text, 'hashed.example', 2200), a.blob).ok);
  t.deepEqual(verifyHostKey(findKnownHost(text, 'hashed.example', 22), a.blob), { ok: false, why: 'unknown' });
  t.true(verifyHostKey(findKnownHost(text, '192.0.2.1', 22), a.blob).ok);
  // The listed key types are offered first, so the server shows the key known_hosts has.
  const rsa = findKnownHost('h ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ==', 'h', 22);
  t.deepEqual(hostKeyAlgorithms(rsa).slice(0, 3), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  t.is(hostKeyAlgorithms(org)[0], 'ssh-ed25519');
});

const env = serverEnv(test, 'SFTP (OpenSSH)', [
  'FRAGFS_TEST_SFTP_HOST',
  'FRAGFS_TEST_SFTP_PORT',
  'FRAGFS_TEST_SFTP_USER',
  'FRAGFS_TEST_SFTP_KEY',
  'FRAGFS_TEST_SFTP_KNOWN_HOSTS',
  'FRAGFS_TEST_SFTP_ROOT',
]);

if (env) {
  const HOST = env['FRAGFS_TEST_SFTP_HOST']!;
  const PORT = Number(env['FRAGFS_TEST_SFTP_PORT']);
  const USER = env['FRAGFS_TEST_SFTP_USER']!;
  const ROOT = env['FRAGFS_TEST_SFTP_ROOT']!;
  process.env['FRAGFS_SFTP_KEY'] = env['FRAGFS_TEST_SFTP_KEY'];
  process.env['FRAGFS_SFTP_KNOWN_HOSTS'] = env['FRAGFS_TEST_SFTP_KNOWN_HOSTS'];

  const urlOf = (path: string, port = PORT): SftpStoreUrl => ({ scheme: 'sftp', user: USER, host: HOST, port, path });
  const freshPath = (): string => `${ROOT}/${randomBytes(6).toString('hex')}`;
  /** The server's host key line without its host field, for known_hosts files of other names. */
  const hostKeyLine = async (): Promise<string> => {
    const line = (await readFile(env['FRAGFS_TEST_SFTP_KNOWN_HOSTS']!, 'utf8')).trim().split('\n')[0]!;
    return line.slice(line.indexOf(' ') + 1);
  };
  const scratch = (): Promise<string> => mkdtemp(join(tmpdir(), 'fragfs-sftp-test-'));
  const listAll = async (b: ObjectBackend, prefix: string): Promise<ObjectEntry[]> => {
    const out: ObjectEntry[] = [];
    for await (const e of b.list(prefix)) out.push(e);
    return out.sort((x, y) => (x.key < y.key ? -1 : 1));
  };

  runObjectConformance(test, 'sftp', async () => {
    const path = freshPath();
    return { open: () => openSftpBackend(urlOf(path)), remove: () => rm(path, { recursive: true, force: true }) };
  });

  /** Opens, runs `body`, closes and removes the folder. */
  const withBackend = async (o: SftpOptions, body: (b: ObjectBackend, path: string) => Promise<void>, port = PORT): Promise<void> => {
    const path = freshPath();
    const b = await openSftpBackend(urlOf(path, port), o);
    try {
      await body(b, path);
    } finally {
      await b.close();
      await rm(path, { recursive: true, force: true });
    }
  };

  test('sftp: an unknown host key is refused at once with one line naming the host and ssh-keyscan', async (t) => {
    const dir = await scratch();
    const knownHostsFile = join(dir, 'known_hosts');
    await writeFile(knownHostsFile, '');
    await withBackend({ knownHostsFile }, async (raw) => {
      const b = new ResilientBackend(raw, { backoffMs: 1, attempts: 3 });
      const e = await t.throwsAsync(b.get('a/b'), { instanceOf: FragfsError });
      t.is(e!.code, 'REMOTE_AUTH');
      t.false(e!.message.includes('\n'));
      t.true(e!.message.includes(`[${HOST}]:${PORT}`), e!.message);
      t.true(e!.message.includes(`ssh-keyscan -p ${PORT} ${HOST} >> ${knownHostsFile}`), e!.message);
      t.regex(e!.message, /SHA256:/);
      t.is(b.retries, 0);
      t.log(e!.message);
    });
    await rm(dir, { recursive: true });
  });

  test('sftp: a host key other than the listed one is refused; a hashed entry is accepted', async (t) => {
    const dir = await scratch();
    const other = join(dir, 'other');
    await writeFile(other, `[${HOST}]:${PORT} ${publicBlob().line}\n`);
    await withBackend({ knownHostsFile: other }, async (raw) => {
      const e = await t.throwsAsync(new ResilientBackend(raw, { backoffMs: 1 }).size('x'), { instanceOf: FragfsError });
      t.is(e!.code, 'REMOTE_AUTH');
      t.regex(e!.message, /is not the one .* lists/);
      t.false(e!.message.includes('\n'));
    });
    const hashedFile = join(dir, 'hashed');
    await writeFile(hashedFile, `${hashed(`[${HOST}]:${PORT}`)} ${await hostKeyLine()}\n`);
    await withBackend({ knownHostsFile: hashedFile }, async (b) => {
      t.true(await b.put('h/x', Buffer.from('hashed ok')));
      t.is(Buffer.from((await b.get('h/x'))!).toString(), 'hashed ok');
    });
    await rm(dir, { recursive: true });
  });

  test('sftp: a key the server does not take is REMOTE_AUTH, not retried', async (t) => {
    const dir = await scratch();
    const keyFile = join(dir, 'id_ed25519');
    await writeFile(keyFile, utils.generateKeyPairSync('ed25519').private, { mode: 0o600 });
    await withBackend({ keyFile, agent: false }, async (raw) => {
      const b = new ResilientBackend(raw, { backoffMs: 1 });
      const e = await t.throwsAsync(b.put('k', Buffer.from('x')), { instanceOf: FragfsError });
      t.is(e!.code, 'REMOTE_AUTH');
      t.regex(e!.message, /refused the SSH keys for root/);
      t.is(b.retries, 0);
    });
    // A key file that is not a key is the user's to fix before any connection.
    await writeFile(keyFile, 'not a key');
    await t.throwsAsync(openSftpBackend(urlOf(freshPath()), { keyFile }), { instanceOf: FragfsError, message: /cannot use the SSH key/ });
    // fragfs asks for no passphrase: an encrypted key is for ssh-agent.
    await writeFile(keyFile, utils.generateKeyPairSync('ed25519', { passphrase: 'secret', cipher: 'aes256-ctr', rounds: 16 }).private);
    const e = await t.throwsAsync(openSftpBackend(urlOf(freshPath()), { keyFile, agent: false }), { instanceOf: FragfsError });
    t.is(e!.code, 'USAGE');
    t.regex(e!.message, /is encrypted; load it into ssh-agent/);
    await rm(dir, { recursive: true });
  });

  test('sftp: a closed port fails REMOTE quickly after the attempts it is given', async (t) => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const started = Date.now();
    await withBackend(
      {},
      async (raw) => {
        const b = new ResilientBackend(raw, { backoffMs: 1, attempts: 2 });
        const e = await t.throwsAsync(b.get('a'), { instanceOf: FragfsError });
        t.is(e!.code, 'REMOTE');
        t.regex(e!.message, /ECONNREFUSED.*\(2 attempts\)/);
        t.is(b.retries, 1);
      },
      port,
    );
    t.true(Date.now() - started < 10_000, `${Date.now() - started} ms`);
  });

  test('sftp: temp files of interrupted puts are never listed; an aborted put rejects at once and leaves nothing', async (t) => {
    await withBackend({}, async (b, path) => {
      await b.put('d/real', Buffer.from('whole'));
      // What a killed process leaves: a temp file beside the objects.
      await writeFile(join(path, 'd', sftpTempName()), 'partial');
      await mkdir(join(path, 'e'), { recursive: true });
      await writeFile(join(path, 'e', sftpTempName()), 'partial');
      t.deepEqual(await listAll(b, ''), [{ key: 'd/real', size: 5 }]);
      t.deepEqual(await listAll(b, 'e/'), []);

      const bytes = randomBytes(16 * 1024 * 1024);
      const ac = new AbortController();
      const put = b.put('d/big', bytes, { signal: ac.signal });
      setTimeout(() => ac.abort(new Error('stop')), 5);
      const started = Date.now();
      const outcome = await put.then(
        () => 'done',
        (e: unknown) => (e as Error).message,
      );
      const waited = Date.now() - started;
      t.log(`aborted put: ${outcome} after ${waited} ms`);
      t.true(waited < 500);
      const got = await b.get('d/big');
      if (outcome === 'done') t.true(Buffer.from(got!).equals(bytes));
      else {
        t.is(outcome, 'stop');
        t.is(got, undefined);
      }
      t.deepEqual(
        (await listAll(b, 'd/')).map((e) => e.key),
        outcome === 'done' ? ['d/big', 'd/real'] : ['d/real'],
      );
      // The abandoned transfer removes its own temp file once it has run out.
      let temps: string[] = [];
      for (let i = 0; i < 100; i++) {
        temps = (await readdir(join(path, 'd'))).filter((n) => n.startsWith('.fragfs~'));
        if (temps.length === 1) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      t.is(temps.length, 1, 'only the planted temp file is left');
    });
  });

  test('sftp: objects are 0600 files in 0700 folders made as needed', async (t) => {
    await withBackend({}, async (b, path) => {
      await b.put('m/n/o', Buffer.from('x'));
      await b.put('m/n/p', Buffer.from('y'), { ifAbsent: true });
      for (const f of ['m/n/o', 'm/n/p']) t.is((await stat(join(path, f))).mode & 0o777, 0o600, f);
      for (const d of ['', 'm', 'm/n']) t.is((await stat(join(path, d))).mode & 0o777, 0o700, d || 'root');
    });
  });

  test('sftp: /~/PATH is PATH in the login home', async (t) => {
    const name = `.fragfs-test-${randomBytes(6).toString('hex')}`;
    const home = userInfo().homedir;
    const b = await openSftpBackend(urlOf(`/~/${name}`));
    try {
      await b.put('a/b', Buffer.from('home'));
      t.is(await readFile(join(home, name, 'a', 'b'), 'utf8'), 'home');
      t.deepEqual(await listAll(b, ''), [{ key: 'a/b', size: 4 }]);
    } finally {
      await b.close();
      await rm(join(home, name), { recursive: true, force: true });
    }
  });

  /** A TCP relay to the server that can drop or stall its connections. */
  const relay = async () => {
    const sockets = new Set<Socket>();
    const upstreams = new Set<Socket>();
    let connections = 0;
    const server = createServer((client) => {
      connections++;
      const up = connect(PORT, HOST);
      for (const s of [client, up]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => sockets.delete(s));
      }
      upstreams.add(up);
      up.on('close', () => upstreams.delete(up));
      client.pipe(up);
      up.pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const dir = await scratch();
    const knownHostsFile = join(dir, 'known_hosts');
    await writeFile(knownHostsFile, `[${HOST}]:${port} ${await hostKeyLine()}\n`);
    return {
      port,
      knownHostsFile,
      connections: () => connections,
      drop: () => sockets.forEach((s) => s.destroy()),
      /** The server's answers stop coming (a dead route that TCP has not noticed). */
      stall: () => upstreams.forEach((s) => s.unpipe()),
      close: async () => {
        sockets.forEach((s) => s.destroy());
        await new Promise((r) => server.close(r));
        await rm(dir, { recursive: true });
      },
    };
  };

  test('sftp: a dropped connection fails its calls as worth a retry, and the next call reconnects', async (t) => {
    const r = await relay();
    try {
      await withBackend(
        { knownHostsFile: r.knownHostsFile },
        async (b) => {
          t.true(await b.put('c/one', Buffer.from('1')));
          t.is(r.connections(), 1);
          r.stall();
          const pending = b.get('c/one');
          await new Promise((res) => setTimeout(res, 50));
          r.drop();
          const e = await t.throwsAsync(pending);
          t.true(e instanceof RemoteFailure && e.kind === 'retry', `${e?.name}: ${e?.message}`);
          t.is(Buffer.from((await b.get('c/one'))!).toString(), '1');
          t.is(r.connections(), 2);
          // A drop between calls: ResilientBackend's retry (or the next call) gets through.
          r.drop();
          const rb = new ResilientBackend(b, { backoffMs: 1 });
          t.is(Buffer.from((await rb.get('c/one'))!).toString(), '1');
        },
        r.port,
      );
    } finally {
      await r.close();
    }
  });

  test('sftp: a call on a stalled connection rejects as soon as its signal fires', async (t) => {
    const r = await relay();
    try {
      await withBackend(
        { knownHostsFile: r.knownHostsFile },
        async (b) => {
          await b.put('s/one', Buffer.from('1'));
          r.stall();
          const started = Date.now();
          const e0 = await b.get('s/one', { signal: AbortSignal.timeout(200) }).then(
            () => undefined,
            (e: unknown) => e as Error,
          );
          t.is(e0?.name, 'TimeoutError');
          const waited = Date.now() - started;
          t.true(waited < 3000, `${waited} ms`);
          const rb = new ResilientBackend(b, { timeoutMs: 150, attempts: 2, backoffMs: 1 });
          const e = await t.throwsAsync(rb.size('s/one'), { instanceOf: FragfsError });
          t.regex(e!.message, /no answer in 0\.15 s \(2 attempts\)/);
        },
        r.port,
      );
    } finally {
      await r.close();
    }
  });

  test('sftp: parallel calls use several channels (throughput, logged)', async (t) => {
    await withBackend({}, async (raw) => {
      const b = new ResilientBackend(raw);
      const blob = randomBytes(256 * 1024);
      await b.put('warm/up', blob);
      const n = 64;
      let started = Date.now();
      for (let i = 0; i < 16; i++) await b.put(`seq/${i}`, blob);
      const seqMs = (Date.now() - started) / 16;
      started = Date.now();
      await Promise.all(Array.from({ length: n }, (_, i) => b.put(`par/${i.toString().padStart(3, '0')}`, blob)));
      const parMs = (Date.now() - started) / n;
      started = Date.now();
      const got = await Promise.all(Array.from({ length: n }, (_, i) => b.get(`par/${i.toString().padStart(3, '0')}`)));
      const getMs = (Date.now() - started) / n;
      t.true(got.every((g) => g !== undefined && Buffer.from(g).equals(blob)));
      started = Date.now();
      const small = Array.from({ length: 400 }, (_, i) => `small/${(i % 16).toString(16).padStart(2, '0')}/${i}`);
      await Promise.all(small.map((k) => b.put(k, randomBytes(100))));
      const smallMs = (Date.now() - started) / small.length;
      started = Date.now();
      t.is((await listAll(b, 'small/')).length, small.length);
      const listMs = Date.now() - started;
      t.log(
        `256 KiB puts: ${seqMs.toFixed(1)} ms each one at a time, ${parMs.toFixed(1)} ms each 64 at once (8 in flight); ` +
          `gets ${getMs.toFixed(1)} ms each; 100 B puts ${smallMs.toFixed(2)} ms each; list of 400 in 16 folders ${listMs} ms`,
      );
      t.true(parMs < seqMs, 'calls in flight overlap');
    });
  });
}
