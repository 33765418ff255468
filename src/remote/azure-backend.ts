// The Azure Blob service as an ObjectBackend: where its credentials come from, how keys map to block
// blobs under the URL's container prefix, and how each service error is classified.

import {
  AnonymousCredential,
  BlobServiceClient,
  StorageSharedKeyCredential,
  newPipeline,
  type ContainerClient,
  type RequestPolicyFactory,
} from '@azure/storage-blob';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Readable } from 'node:stream';
import { FragfsError } from '../errors.js';
import type { CallOptions, ObjectBackend, ObjectEntry, PutOptions } from './object-backend.js';
import { RemoteFailure, failureToError, isTransientNetworkError } from './remote-failure.js';
import { formatStoreUrl, type AzureStoreUrl } from './store-url.js';

export interface AzureBackendOptions {
  /** Largest object written by one Put Blob; larger ones are staged blocks and one commit (both atomic). */
  singlePutMax?: number;
  /** Block size of a staged put. */
  blockSize?: number;
}

const SINGLE_PUT_MAX = 64 * 1024 * 1024;
const BLOCK_SIZE = 8 * 1024 * 1024;
const LIST_PAGE = 5000;
const IDLE_SOCKET_MS = 3000;
// The emulator's published account and key (azurite, the storage emulator): not a secret.
const DEV_ACCOUNT = 'devstoreaccount1';
const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const CREDENTIAL_VARS = 'AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY (with AZURE_STORAGE_ENDPOINT for an emulator) or AZURE_STORAGE_SAS_TOKEN';

interface Credentials {
  readonly endpoint: string;
  readonly credential: StorageSharedKeyCredential | AnonymousCredential;
  /** Without the leading '?'; only for the anonymous credential. */
  readonly sas?: string;
  /** Which variable they came from, for messages that help fix a refusal. */
  readonly source: string;
}

interface Connection {
  readonly container: ContainerClient;
  readonly agent: http.Agent | undefined;
  readonly source: string;
}

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function cleanEndpoint(display: string, from: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new FragfsError('USAGE', `${display}: ${from} is not a URL (e.g. https://ACCOUNT.blob.core.windows.net)`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new FragfsError('USAGE', `${display}: ${from} is not an http(s) URL`);
  if (u.search !== '') throw new FragfsError('USAGE', `${display}: ${from} has a query; give a SAS in AZURE_STORAGE_SAS_TOKEN`);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

function defaultEndpoint(display: string, account: string): string {
  const e = env('AZURE_STORAGE_ENDPOINT');
  return e === undefined ? `https://${account}.blob.core.windows.net` : cleanEndpoint(display, 'AZURE_STORAGE_ENDPOINT', e);
}

/** `Key=Value;` pairs; a value may hold '=' (base64 keys, SAS tokens). */
function parseConnectionString(display: string, cs: string): Map<string, string> {
  const parts = new Map<string, string>();
  for (const piece of cs.split(';')) {
    if (piece.trim() === '') continue;
    const eq = piece.indexOf('=');
    if (eq <= 0) throw new FragfsError('USAGE', `${display}: AZURE_STORAGE_CONNECTION_STRING is not a connection string (Key=Value;... pairs)`);
    parts.set(piece.slice(0, eq).trim().toLowerCase(), piece.slice(eq + 1).trim());
  }
  return parts;
}

/** The credentials the environment gives for the URL's account, most specific first. */
function credentialsFor(url: AzureStoreUrl): Credentials {
  const display = formatStoreUrl(url);
  const cs = env('AZURE_STORAGE_CONNECTION_STRING');
  if (cs !== undefined) {
    const source = 'AZURE_STORAGE_CONNECTION_STRING';
    const p = parseConnectionString(display, cs);
    if (p.get('usedevelopmentstorage')?.toLowerCase() === 'true') {
      if (url.account !== DEV_ACCOUNT) {
        throw new FragfsError('USAGE', `${display}: ${source} names the storage emulator, whose account is ${DEV_ACCOUNT}, not ${url.account}`);
      }
      return { endpoint: `http://127.0.0.1:10000/${DEV_ACCOUNT}`, credential: new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY), source };
    }
    const account = p.get('accountname');
    // A SAS connection string may name no account; its BlobEndpoint then says where it points.
    if (account !== undefined && account !== url.account) {
      throw new FragfsError('USAGE', `${display}: ${source} is for the account ${account}, not ${url.account}`);
    }
    const blobEndpoint = p.get('blobendpoint');
    let endpoint: string;
    if (blobEndpoint !== undefined) endpoint = cleanEndpoint(display, `the BlobEndpoint of ${source}`, blobEndpoint);
    else {
      const proto = (p.get('defaultendpointsprotocol') ?? 'https').toLowerCase();
      endpoint = cleanEndpoint(display, source, `${proto}://${url.account}.blob.${p.get('endpointsuffix') ?? 'core.windows.net'}`);
    }
    const key = p.get('accountkey');
    if (key !== undefined && key !== '') return { endpoint, credential: new StorageSharedKeyCredential(url.account, key), source };
    const sas = p.get('sharedaccesssignature');
    if (sas !== undefined && sas !== '') return { endpoint, credential: new AnonymousCredential(), sas: sas.replace(/^\?/, ''), source };
    throw new FragfsError('USAGE', `${display}: ${source} has neither an AccountKey nor a SharedAccessSignature`);
  }
  const accountVar = env('AZURE_STORAGE_ACCOUNT');
  const key = env('AZURE_STORAGE_KEY');
  const sas = env('AZURE_STORAGE_SAS_TOKEN');
  if ((key !== undefined || sas !== undefined) && accountVar !== undefined && accountVar !== url.account) {
    throw new FragfsError('USAGE', `${display}: AZURE_STORAGE_ACCOUNT is ${accountVar}, so its key or SAS is not for ${url.account}`);
  }
  if (key !== undefined) {
    return { endpoint: defaultEndpoint(display, url.account), credential: new StorageSharedKeyCredential(url.account, key), source: 'AZURE_STORAGE_KEY' };
  }
  if (sas !== undefined) {
    return {
      endpoint: defaultEndpoint(display, url.account),
      credential: new AnonymousCredential(),
      sas: sas.replace(/^\?/, ''),
      source: 'AZURE_STORAGE_SAS_TOKEN',
    };
  }
  throw new FragfsError('REMOTE_AUTH', `${display}: no Azure credentials: set ${CREDENTIAL_VARS}`);
}

function hasProxy(): boolean {
  return ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy'].some((n) => env(n) !== undefined);
}

function connect(url: AzureStoreUrl): Connection {
  const c = credentialsFor(url);
  // The SDK keeps one process-wide agent that nothing can close; an agent of our own lets `close`
  // drop this backend's sockets. A proxy needs the SDK's own proxy agent, which an agent set here
  // would replace, so then the SDK keeps its default. An idle socket is dropped before the server's
  // keep-alive limit (azurite's and Node's 5 s) closes it under a request sent on it ("socket hang up").
  const agentOptions = { keepAlive: true, timeout: IDLE_SOCKET_MS };
  const agent = hasProxy() ? undefined : c.endpoint.startsWith('https:') ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  // ResilientBackend retries with its own backoff and timeout; the SDK's retries would multiply them
  // and outlast its timeout.
  const pipeline = newPipeline(c.credential, { retryOptions: { maxTries: 1 } });
  if (agent !== undefined) {
    const useAgent: RequestPolicyFactory = {
      create: (next) => ({
        sendRequest: (request) => {
          request.agent ??= agent;
          return next.sendRequest(request);
        },
      }),
    };
    pipeline.factories.push(useAgent);
  }
  const service = new BlobServiceClient(c.sas === undefined ? c.endpoint : `${c.endpoint}?${c.sas}`, pipeline);
  return { container: service.getContainerClient(url.container), agent, source: c.source };
}

/** Keeps a SAS signature or an account key out of a message, wherever a service or node put it. */
function redact(s: string): string {
  return s.replace(/(sig|accountkey|sharedaccesssignature)=[^&;\s'"]*/gi, '$1=REDACTED');
}

function firstLine(s: string): string {
  const line = (s.split(/\r?\n/, 1)[0] ?? '').trim();
  return redact(line.length > 200 ? `${line.slice(0, 200)}…` : line);
}

interface ServiceError {
  statusCode?: number;
  code?: string;
  message?: string;
  details?: { errorCode?: string };
  response?: { headers?: { get?(name: string): string | undefined } };
}

/** The service's error code; the header also when a body the SDK could not parse hid it (PARSE_ERROR). */
function errorCode(e: unknown): string | undefined {
  const se = e as ServiceError | undefined;
  return se?.details?.errorCode ?? se?.response?.headers?.get?.('x-ms-error-code') ?? se?.code;
}

function isStatus(e: unknown, status: number, ...codes: string[]): boolean {
  return (e as ServiceError | undefined)?.statusCode === status && (codes.length === 0 || codes.includes(errorCode(e) ?? ''));
}

const QUOTA_RE = /quota|capacity|AccountLimit|SizeLimitReached/i;

class AzureBackend implements ObjectBackend {
  readonly url: string;
  readonly parallelism = 16;
  private readonly container: ContainerClient;
  private readonly root: string;

  constructor(
    private readonly where: AzureStoreUrl,
    private readonly conn: Connection,
    private readonly o: AzureBackendOptions,
  ) {
    this.url = formatStoreUrl(where);
    this.container = conn.container;
    this.root = where.prefix === '' ? '' : `${where.prefix}/`;
  }

  get(key: string, o: CallOptions = {}): Promise<Uint8Array | undefined> {
    return this.download(key, 0, undefined, o);
  }

  getRange(key: string, offset: number, length: number, o: CallOptions = {}): Promise<Uint8Array | undefined> {
    return this.download(key, offset, length, o);
  }

  /** From `offset`, `length` bytes or the rest of the blob; undefined if absent. */
  private async download(key: string, offset: number, length: number | undefined, o: CallOptions): Promise<Uint8Array | undefined> {
    try {
      // One GET, not the SDK's parallel ranged reads: a read racing a replace sees one version.
      const res = await this.container.getBlockBlobClient(this.root + key).download(offset, length, { abortSignal: o.signal, maxRetryRequests: 0 });
      const body = res.readableStreamBody as Readable | undefined;
      const bytes = body === undefined ? Buffer.alloc(0) : await collect(body, o.signal);
      if (res.contentLength !== undefined && bytes.length !== res.contentLength) {
        throw new RemoteFailure('retry', `the answer held ${bytes.length} of ${res.contentLength} bytes`);
      }
      return bytes;
    } catch (e) {
      if (isStatus(e, 404, 'BlobNotFound')) return undefined;
      // 416: the blob ends before `offset`.
      if (length !== undefined && isStatus(e, 416)) return Buffer.alloc(0);
      throw this.classify(e, o);
    }
  }

  async put(key: string, bytes: Uint8Array, o: PutOptions & CallOptions = {}): Promise<boolean> {
    const blob = this.container.getBlockBlobClient(this.root + key);
    const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const conditions = o.ifAbsent ? { ifNoneMatch: '*' } : undefined;
    try {
      if (body.length <= (this.o.singlePutMax ?? SINGLE_PUT_MAX)) {
        // Put Blob replaces the blob in one step: a reader sees the old or the new, never a part.
        await blob.upload(body, body.length, { conditions, abortSignal: o.signal });
      } else {
        // Staged blocks stay invisible (and are collected by the service) until the commit, which
        // is as atomic as a Put Blob and carries the create-only condition.
        // A put's own ids: two writers of one key staging block i at once must not commit each
        // other's block. The service wants every id of a blob equally long.
        const size = this.o.blockSize ?? BLOCK_SIZE;
        const nonce = randomBytes(12).toString('hex');
        const ids: string[] = [];
        for (let off = 0, i = 0; off < body.length; off += size, i++) {
          const id = Buffer.from(`${nonce}-${i.toString().padStart(6, '0')}`).toString('base64');
          const part = body.subarray(off, off + size);
          await blob.stageBlock(id, part, part.length, { abortSignal: o.signal });
          ids.push(id);
        }
        await blob.commitBlockList(ids, { conditions, abortSignal: o.signal });
      }
      return true;
    } catch (e) {
      if (o.ifAbsent && (isStatus(e, 409, 'BlobAlreadyExists') || isStatus(e, 412))) return false;
      // A commit of the same blob by another writer drops every uncommitted block, ours too; the
      // put can only start again (ResilientBackend does).
      if (isStatus(e, 400, 'InvalidBlockList') && !o.signal?.aborted) {
        throw new RemoteFailure('retry', `another writer committed ${key} while this put staged its blocks`, { cause: e });
      }
      throw this.classify(e, o);
    }
  }

  async size(key: string, o: CallOptions = {}): Promise<number | undefined> {
    try {
      const p = await this.container.getBlockBlobClient(this.root + key).getProperties({ abortSignal: o.signal });
      return p.contentLength ?? 0;
    } catch (e) {
      // A HEAD answer has no body: its error code is only in x-ms-error-code, which a proxy may drop.
      if ((e as ServiceError).statusCode === 404 && errorCode(e) !== 'ContainerNotFound') return undefined;
      throw this.classify(e, o);
    }
  }

  async delete(key: string, o: CallOptions = {}): Promise<void> {
    try {
      await this.container.getBlockBlobClient(this.root + key).deleteIfExists({ abortSignal: o.signal, deleteSnapshots: 'include' });
    } catch (e) {
      throw this.classify(e, o);
    }
  }

  async *list(prefix: string, o: CallOptions = {}): AsyncIterable<ObjectEntry> {
    const pages = this.container
      .listBlobsFlat({ prefix: this.root + prefix, includeMetadata: true, abortSignal: o.signal })
      .byPage({ maxPageSize: LIST_PAGE });
    for (;;) {
      let page;
      try {
        page = await pages.next();
      } catch (e) {
        throw this.classify(e, o);
      }
      if (page.done) return;
      for (const item of page.value.segment.blobItems) {
        // A hierarchical-namespace account lists its directories as empty blobs: not objects.
        if (item.metadata?.['hdi_isfolder'] === 'true') continue;
        if (!item.name.startsWith(this.root)) continue;
        yield { key: item.name.slice(this.root.length), size: item.properties.contentLength ?? 0 };
      }
    }
  }

  async close(): Promise<void> {
    this.conn.agent?.destroy();
  }

  private classify(e: unknown, o: CallOptions): unknown {
    if (o.signal?.aborted) return o.signal.reason;
    if (e instanceof RemoteFailure || e instanceof FragfsError) return e;
    return classifyAzureError(e, this.where, this.conn.source);
  }
}

/** One service error as a RemoteFailure, with a one-line message that holds no secret. */
function classifyAzureError(e: unknown, url: AzureStoreUrl, source: string): RemoteFailure {
  const se = (e ?? {}) as ServiceError;
  const status = se.statusCode;
  const code = errorCode(e);
  const what = `${code ?? 'error'}${status === undefined ? '' : ` (HTTP ${status})`}`;
  const text = se.code === 'PARSE_ERROR' ? '' : firstLine(se.message ?? String(e));
  const msg = text === '' || text === code ? what : `${what}: ${text}`;
  if (status === undefined) {
    if (isTransientNetworkError(e) || code === 'REQUEST_SEND_ERROR') return new RemoteFailure('retry', text || what, { cause: e });
    return new RemoteFailure('final', text || what, { cause: e });
  }
  if (status === 404 && code === 'ContainerNotFound') {
    return new RemoteFailure('final', `the container ${url.container} does not exist in account ${url.account}`, { cause: e });
  }
  if (status === 401 || status === 403) return new RemoteFailure('auth', `${msg} (credentials from ${source})`, { cause: e });
  if (status === 507 || (code !== undefined && QUOTA_RE.test(code))) return new RemoteFailure('no-space', msg, { cause: e });
  if (status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505)) return new RemoteFailure('retry', msg, { cause: e });
  return new RemoteFailure('final', msg, { cause: e });
}

/** The whole body, or a rejection as soon as the stream fails or the call is aborted. */
function collect(body: Readable, signal: AbortSignal | undefined): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onAbort = (): void => {
      body.destroy();
      reject(signal!.reason as Error);
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (err?: Error): void => {
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    body.on('data', (c: Buffer) => chunks.push(c));
    body.once('end', () => done());
    body.once('error', (err) => done(err));
  });
}

export async function openAzureBackend(url: AzureStoreUrl, o: AzureBackendOptions = {}): Promise<ObjectBackend> {
  return new AzureBackend(url, connect(url), o);
}

/** Creates the URL's container unless it exists (tests, and a later `init`); true when it made it. Throws a FragfsError. */
export async function createAzureContainer(url: AzureStoreUrl, o: CallOptions = {}): Promise<boolean> {
  const conn = connect(url);
  try {
    const res = await conn.container.createIfNotExists({ abortSignal: o.signal });
    return res.succeeded;
  } catch (e) {
    if (o.signal?.aborted) throw o.signal.reason;
    throw failureToError(classifyAzureError(e, url, conn.source), `creating the container ${url.container}`, formatStoreUrl(url), 1);
  } finally {
    conn.agent?.destroy();
  }
}
