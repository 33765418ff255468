// The Azure Blob backend against azurite (scripts/servers/azure.sh): the object and Store
// conformance suites in one container, each root a fresh prefix, and what only Azure has:
// credentials from three variables, refusals, a missing container, an unreachable endpoint.

import test from 'ava';
import { BlobServiceClient, ContainerSASPermissions, StorageSharedKeyCredential, generateBlobSASQueryParameters } from '@azure/storage-blob';
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { FragfsError } from '../../src/errors.js';
import { createAzureContainer, openAzureBackend, type AzureBackendOptions } from '../../src/remote/azure-backend.js';
import type { ObjectBackend } from '../../src/remote/object-backend.js';
import { ResilientBackend } from '../../src/remote/resilient-backend.js';
import { parseStoreUrl, type AzureStoreUrl } from '../../src/remote/store-url.js';
import { serverEnv } from '../helpers/remote-env.js';
import { runObjectConformance } from './object-conformance.js';

const CREDENTIAL_VARS = [
  'AZURE_STORAGE_CONNECTION_STRING',
  'AZURE_STORAGE_ACCOUNT',
  'AZURE_STORAGE_KEY',
  'AZURE_STORAGE_ENDPOINT',
  'AZURE_STORAGE_SAS_TOKEN',
] as const;

/**
 * Opens with these credential variables instead of the file's: the backend reads them before its
 * first await, so setting and restoring them around the call races no other test.
 */
const openWith = (vars: Partial<Record<(typeof CREDENTIAL_VARS)[number], string>>, url: AzureStoreUrl, o?: AzureBackendOptions): Promise<ObjectBackend> => {
  const saved = Object.fromEntries(CREDENTIAL_VARS.map((v) => [v, process.env[v]]));
  try {
    for (const v of CREDENTIAL_VARS) delete process.env[v];
    Object.assign(process.env, vars);
    return openAzureBackend(url, o);
  } finally {
    for (const v of CREDENTIAL_VARS) {
      if (saved[v] === undefined) delete process.env[v];
      else process.env[v] = saved[v];
    }
  }
};

const server = serverEnv(test, 'Azure (azurite)', ['FRAGFS_TEST_AZURE_CONNECTION_STRING', 'FRAGFS_TEST_AZURE_ACCOUNT']);

if (server !== undefined) {
  const connectionString = server['FRAGFS_TEST_AZURE_CONNECTION_STRING']!;
  const account = server['FRAGFS_TEST_AZURE_ACCOUNT']!;
  const field = (name: string): string => new RegExp(`(?:^|;)${name}=([^;]*)`, 'i').exec(connectionString)![1]!;
  const accountKey = field('AccountKey');
  const blobEndpoint = field('BlobEndpoint').replace(/\/+$/, '');
  for (const v of CREDENTIAL_VARS) delete process.env[v];
  process.env['AZURE_STORAGE_CONNECTION_STRING'] = connectionString;

  const container = `fragfs-test-${randomBytes(6).toString('hex')}`;
  const storeUrl = (prefix = ''): AzureStoreUrl => parseStoreUrl(`azure://${account}/${container}/${prefix}`) as AzureStoreUrl;
  const freshPrefix = (): string => `root-${randomBytes(6).toString('hex')}`;
  let made: Promise<boolean> | undefined;
  const ready = (): Promise<boolean> => (made ??= createAzureContainer(storeUrl()));

  /** Removes every object under the prefix, a bounded number of calls at a time. */
  const removeAll = async (url: AzureStoreUrl): Promise<void> => {
    const b = new ResilientBackend(await openAzureBackend(url));
    try {
      const keys: string[] = [];
      for await (const e of b.list('')) keys.push(e.key);
      await Promise.all(keys.map((k) => b.delete(k)));
    } finally {
      await b.close();
    }
  };

  test.after.always('remove the test container', async () => {
    if (made === undefined) return;
    const service = BlobServiceClient.fromConnectionString(connectionString, { retryOptions: { maxTries: 1 } });
    await service.getContainerClient(container).deleteIfExists();
  });

  runObjectConformance(test, 'azure', async () => {
    await ready();
    const url = storeUrl(freshPrefix());
    return { open: () => openAzureBackend(url), remove: () => removeAll(url) };
  });

  const oneLine = (t: { false(v: boolean, m?: string): void }, e: Error): void => t.false(/[\r\n]/.test(e.message), e.message);

  test('azure: createAzureContainer is idempotent', async (t) => {
    await ready();
    t.false(await createAzureContainer(storeUrl()));
  });

  test('azure: AZURE_STORAGE_KEY with AZURE_STORAGE_ENDPOINT, and keys under the URL prefix', async (t) => {
    await ready();
    const prefix = freshPrefix();
    const b = await openWith({ AZURE_STORAGE_KEY: accountKey, AZURE_STORAGE_ENDPOINT: blobEndpoint }, storeUrl(`${prefix}/deeper`));
    const whole = await openAzureBackend(storeUrl(prefix));
    try {
      t.true(await b.put('k/v', Buffer.from('via key')));
      t.is(Buffer.from((await whole.get('deeper/k/v'))!).toString(), 'via key');
      const keys: string[] = [];
      for await (const e of whole.list('')) keys.push(e.key);
      t.deepEqual(keys, ['deeper/k/v']);
    } finally {
      await b.close();
      await whole.close();
      await removeAll(storeUrl(prefix));
    }
  });

  test('azure: AZURE_STORAGE_SAS_TOKEN works; a read-only SAS is refused a write (REMOTE_AUTH, no signature shown)', async (t) => {
    await ready();
    const prefix = freshPrefix();
    const sas = (permissions: string): string =>
      generateBlobSASQueryParameters(
        { containerName: container, permissions: ContainerSASPermissions.parse(permissions), expiresOn: new Date(Date.now() + 3_600_000) },
        new StorageSharedKeyCredential(account, accountKey),
      ).toString();
    const rw = await openWith({ AZURE_STORAGE_SAS_TOKEN: `?${sas('racwdl')}`, AZURE_STORAGE_ENDPOINT: blobEndpoint }, storeUrl(prefix));
    const readOnly = sas('rl');
    const ro = new ResilientBackend(await openWith({ AZURE_STORAGE_SAS_TOKEN: readOnly, AZURE_STORAGE_ENDPOINT: blobEndpoint }, storeUrl(prefix)), {
      backoffMs: 1,
    });
    try {
      t.true(await rw.put('s/one', Buffer.from('sas')));
      t.false(await rw.put('s/one', Buffer.from('again'), { ifAbsent: true }));
      t.is(Buffer.from((await ro.get('s/one'))!).toString(), 'sas');
      const e = await t.throwsAsync(ro.put('s/two', Buffer.from('no')), { instanceOf: FragfsError });
      t.is(e!.code, 'REMOTE_AUTH');
      oneLine(t, e!);
      t.false(e!.message.includes(new URLSearchParams(readOnly).get('sig')!), e!.message);
      t.regex(e!.message, /AZURE_STORAGE_SAS_TOKEN/);
      t.is(ro.retries, 0);
    } finally {
      await rw.close();
      await ro.close();
      await removeAll(storeUrl(prefix));
    }
  });

  test('azure: a wrong account key is REMOTE_AUTH at once, on one line, without the key', async (t) => {
    await ready();
    const wrongKey = randomBytes(64).toString('base64');
    const b = new ResilientBackend(
      await openWith({ AZURE_STORAGE_CONNECTION_STRING: connectionString.replace(accountKey, wrongKey) }, storeUrl(freshPrefix())),
      { backoffMs: 1 },
    );
    try {
      for (const call of [() => b.get('x/y'), () => b.put('x/y', Buffer.from('z')), () => b.size('x/y')]) {
        const e = await t.throwsAsync(call(), { instanceOf: FragfsError });
        t.is(e!.code, 'REMOTE_AUTH', e!.message);
        oneLine(t, e!);
        t.false(e!.message.includes(wrongKey) || e!.message.includes(accountKey));
        t.regex(e!.message, /AZURE_STORAGE_CONNECTION_STRING/);
      }
      t.is(b.retries, 0);
    } finally {
      await b.close();
    }
  });

  test('azure: a container that does not exist is one clear REMOTE error, not retried', async (t) => {
    const url = parseStoreUrl(`azure://${account}/no-such-container-${randomBytes(4).toString('hex')}/p`) as AzureStoreUrl;
    const b = new ResilientBackend(await openAzureBackend(url), { backoffMs: 1 });
    try {
      const calls: Array<() => Promise<unknown>> = [
        () => b.get('x/y'),
        () => b.size('x/y'),
        () => b.put('x/y', Buffer.from('z')),
        () => b.delete('x/y'),
        async () => {
          for await (const _ of b.list('')) void _;
        },
      ];
      for (const call of calls) {
        const e = await t.throwsAsync(call(), { instanceOf: FragfsError });
        t.is(e!.code, 'REMOTE');
        oneLine(t, e!);
        t.true(e!.message.includes(`the container ${url.container} does not exist in account ${account}`), e!.message);
      }
      t.is(b.retries, 0);
    } finally {
      await b.close();
    }
  });

  test('azure: a closed port is REMOTE quickly, after the attempts it was given', async (t) => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const dead = connectionString.replace(/BlobEndpoint=[^;]*/, `BlobEndpoint=http://127.0.0.1:${port}/${account}`);
    const b = new ResilientBackend(await openWith({ AZURE_STORAGE_CONNECTION_STRING: dead }, storeUrl('p')), {
      attempts: 2,
      backoffMs: 10,
      timeoutMs: 2000,
    });
    const started = Date.now();
    try {
      const e = await t.throwsAsync(b.get('x/y'), { instanceOf: FragfsError });
      const ms = Date.now() - started;
      t.is(e!.code, 'REMOTE');
      oneLine(t, e!);
      // The refusal itself, not the 2 s timeout; the bound leaves room for a loaded machine.
      t.regex(e!.message, /ECONNREFUSED.*\(2 attempts\)$/);
      t.true(ms < 5000, `${ms} ms`);
      t.log(`closed port: ${ms} ms: ${e!.message}`);
    } finally {
      await b.close();
    }
  });

  test('azure: credentials: none, another account, the emulator shorthand', async (t) => {
    const none = await t.throwsAsync(openWith({}, storeUrl()), { instanceOf: FragfsError });
    t.is(none!.code, 'REMOTE_AUTH');
    oneLine(t, none!);
    t.regex(none!.message, /AZURE_STORAGE_CONNECTION_STRING.*AZURE_STORAGE_KEY.*AZURE_STORAGE_SAS_TOKEN/);
    const other = parseStoreUrl(`azure://someotheraccount/${container}`) as AzureStoreUrl;
    const wrong = await t.throwsAsync(openWith({ AZURE_STORAGE_CONNECTION_STRING: connectionString }, other), { instanceOf: FragfsError });
    t.is(wrong!.code, 'USAGE');
    oneLine(t, wrong!);
    t.regex(wrong!.message, new RegExp(`for the account ${account}, not someotheraccount`));
    t.false(wrong!.message.includes(accountKey));
    const acct = await t.throwsAsync(openWith({ AZURE_STORAGE_ACCOUNT: 'someotheraccount', AZURE_STORAGE_KEY: accountKey }, storeUrl()), {
      instanceOf: FragfsError,
    });
    t.is(acct!.code, 'USAGE');
    const bad = await t.throwsAsync(openWith({ AZURE_STORAGE_CONNECTION_STRING: 'not a connection string' }, storeUrl()), { instanceOf: FragfsError });
    t.is(bad!.code, 'USAGE');
    // UseDevelopmentStorage=true points at the emulator's default port, not ours: only opening is checked.
    const dev = await openWith({ AZURE_STORAGE_CONNECTION_STRING: 'UseDevelopmentStorage=true' }, storeUrl());
    await dev.close();
    t.pass();
  });

  test('azure: an object larger than one Put Blob is staged blocks and one conditional commit', async (t) => {
    await ready();
    const url = storeUrl(freshPrefix());
    const b = await openAzureBackend(url, { singlePutMax: 1024 * 1024, blockSize: 256 * 1024 });
    try {
      const bytes = randomBytes(3 * 1024 * 1024 + 5);
      t.true(await b.put('big/one', bytes));
      t.true(Buffer.from((await b.get('big/one'))!).equals(bytes));
      t.is(await b.size('big/one'), bytes.length);
      t.false(await b.put('big/one', randomBytes(2 * 1024 * 1024), { ifAbsent: true }));
      t.true(Buffer.from((await b.get('big/one'))!).equals(bytes));
      const smaller = randomBytes(1024 * 1024 + 1);
      t.true(await b.put('big/one', smaller));
      t.true(Buffer.from((await b.get('big/one'))!).equals(smaller));
      // Writers staging at once: a commit drops the others' staged blocks, so they start again
      // (retried by ResilientBackend); the blob is one of them whole, never a mix.
      const writers = Array.from({ length: 4 }, () => randomBytes(2 * 1024 * 1024));
      const resilient = new ResilientBackend(b, { backoffMs: 5, attempts: 20 });
      await Promise.all(writers.map((w) => resilient.put('big/raced', w)));
      t.log(`4 racing staged puts: ${resilient.retries} retries`);
      const raced = Buffer.from((await b.get('big/raced'))!);
      t.true(
        writers.some((w) => w.equals(raced)),
        'a mix of writers',
      );
    } finally {
      await b.close();
      await removeAll(url);
    }
  });

  test('azure: an aborted put rejects promptly and leaves nothing or all of it', async (t) => {
    await ready();
    const url = storeUrl(freshPrefix());
    const b = await openAzureBackend(url);
    try {
      const bytes = randomBytes(16 * 1024 * 1024);
      const ac = new AbortController();
      const p = b.put('ab/x', bytes, { signal: ac.signal });
      let abortedAt = 0;
      setTimeout(() => {
        abortedAt = Date.now();
        ac.abort(new Error('stop'));
      }, 5);
      const outcome = await p.then(
        () => 'done',
        (e: unknown) => (e as Error).message,
      );
      // Measured from the abort, with room for the event loop of a loaded run (the other tests).
      const ms = abortedAt === 0 ? 0 : Date.now() - abortedAt;
      t.true(ms < 5000, `${ms} ms`);
      const got = await b.get('ab/x');
      t.true(got === undefined || Buffer.from(got).equals(bytes), `after ${outcome}: ${got?.length} bytes`);
      t.log(`aborted 16 MiB put: ${outcome} ${ms} ms after the abort; object afterwards: ${got === undefined ? 'absent' : 'whole'}`);
      const pre = new AbortController();
      pre.abort(new Error('already'));
      await t.throwsAsync(b.get('ab/x', { signal: pre.signal }), { message: 'already' });
    } finally {
      await b.close();
      await removeAll(url);
    }
  });
}

// The classification of service answers azurite cannot be made to give: a fake blob endpoint that
// answers every request with one status and x-ms-error-code.
const EMULATOR_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
for (const [status, code, expected, tries] of [
  [503, 'ServerBusy', 'REMOTE', 2],
  [500, 'InternalError', 'REMOTE', 2],
  [403, 'AuthorizationFailure', 'REMOTE_AUTH', 1],
  [409, 'AccountQuotaExceeded', 'NO_SPACE', 1],
  [400, 'InvalidHeaderValue', 'REMOTE', 1],
] as const) {
  test(`azure: HTTP ${status} ${code} is ${expected} after ${tries} attempt(s)`, async (t) => {
    let requests = 0;
    const fake = createHttpServer((req, res) => {
      requests++;
      req.resume();
      res.writeHead(status, { 'x-ms-error-code': code, 'content-type': 'application/xml' });
      res.end(req.method === 'HEAD' ? undefined : `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>fake ${code}\nRequestId:1</Message></Error>`);
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    const port = (fake.address() as { port: number }).port;
    const url = parseStoreUrl('azure://devstoreaccount1/fake/p') as AzureStoreUrl;
    const cs = `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${EMULATOR_KEY};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`;
    const b = new ResilientBackend(await openWith({ AZURE_STORAGE_CONNECTION_STRING: cs }, url), { attempts: 2, backoffMs: 1, timeoutMs: 5000 });
    try {
      for (const call of [() => b.get('x/y'), () => b.put('x/y', Buffer.from('z')), () => b.size('x/y')]) {
        requests = 0;
        const e = await t.throwsAsync(call(), { instanceOf: FragfsError });
        t.is(e!.code, expected, e!.message);
        t.false(/[\r\n]/.test(e!.message), e!.message);
        t.is(requests, tries, e!.message);
        t.true(e!.message.includes(code), e!.message);
      }
    } finally {
      await b.close();
      await new Promise((resolve) => fake.close(resolve));
    }
  });
}
