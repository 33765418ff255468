// The S3 service (AWS, Ceph radosgw, MinIO and other S3-compatible stores) as an ObjectBackend: the
// client's configuration from the usual AWS environment, the key mapping under the URL's prefix,
// and the classification of every S3 error into a RemoteFailure.

import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type BucketLocationConstraint,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { takeBuffer } from '../store/buffer-recycle.js';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { FragfsError } from '../errors.js';
import type { CallOptions, ObjectBackend, ObjectEntry, PutOptions } from './object-backend.js';
import { RemoteFailure, failureToError, isTransientNetworkError } from './remote-failure.js';
import { formatStoreUrl, type S3StoreUrl } from './store-url.js';

/** What a caller may set instead of the environment (tests; a program holding its own credentials). */
export interface S3BackendOptions {
  /** The service's URL, as AWS_ENDPOINT_URL_S3 gives it; implies path-style addressing. */
  readonly endpoint?: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  readonly region?: string;
}

const PARALLELISM = 32;

function envValue(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

function endpointFrom(o: S3BackendOptions): string | undefined {
  const raw = o.endpoint ?? envValue('AWS_ENDPOINT_URL_S3') ?? envValue('AWS_ENDPOINT_URL');
  if (raw === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new FragfsError('USAGE', `the S3 endpoint is not a URL (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL): ${raw.slice(0, 200)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new FragfsError('USAGE', `the S3 endpoint is not an http(s) URL: ${u.protocol}//${u.host}`);
  if (u.username !== '' || u.password !== '') throw new FragfsError('USAGE', `the S3 endpoint must not hold credentials: ${u.protocol}//${u.host}`);
  return raw;
}

/**
 * A client on the environment. The region: AWS_REGION, AWS_DEFAULT_REGION (which the JS SDK ignores
 * but the CLI reads) or the profile's, else us-east-1, which every S3-compatible service accepts.
 */
async function makeClient(o: S3BackendOptions): Promise<{ client: S3Client; region: string; endpoint: string | undefined }> {
  const endpoint = endpointFrom(o);
  const pathStyleEnv = envValue('FRAGFS_S3_PATH_STYLE');
  // Path-style by default on an endpoint: Ceph and MinIO seldom have the wildcard DNS that
  // virtual-hosted addressing (BUCKET.host) needs.
  const forcePathStyle = pathStyleEnv !== undefined ? pathStyleEnv !== '0' : endpoint !== undefined;
  const https = endpoint === undefined || endpoint.startsWith('https:');
  const connections = Number(envValue('FRAGFS_REMOTE_CONNECTIONS') ?? 0);
  const maxSockets = Math.max(2 * PARALLELISM, Number.isFinite(connections) ? connections : 0);
  const timeoutS = Number(envValue('FRAGFS_REMOTE_TIMEOUT') ?? 60);
  const config: S3ClientConfig = {
    forcePathStyle,
    // ResilientBackend retries, with its own backoff and classification: two layers would multiply.
    maxAttempts: 1,
    followRegionRedirects: endpoint === undefined,
    requestHandler: {
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets, ...(https ? caBundle() : {}) }),
      connectionTimeout: 10_000,
      // ResilientBackend bounds each call but not a listing's pages; a connection silent this long is dead.
      socketTimeout: Number.isFinite(timeoutS) && timeoutS > 0 ? timeoutS * 1000 : 60_000,
    },
  };
  // No CRC32 of each upload unless the environment asks (AWS_REQUEST_CHECKSUM_CALCULATION, which
  // the SDK reads itself): every fragment is checked against its BLAKE3 id when it is read, the
  // checksum costs 0.3 ms of CPU a request (measured: 2.10 vs 1.84 ms per 4 KiB PUT), and some
  // S3-compatible services refuse its headers.
  if (envValue('AWS_REQUEST_CHECKSUM_CALCULATION') === undefined) config.requestChecksumCalculation = 'WHEN_REQUIRED';
  if (endpoint !== undefined) config.endpoint = endpoint;
  if (o.credentials !== undefined) config.credentials = { ...o.credentials };
  // fragfs pins the SDK's last release that runs on Node 20 on purpose: its warning that later ones
  // will not would be printed by every command on an S3 store.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  let region = o.region ?? envValue('AWS_REGION') ?? envValue('AWS_DEFAULT_REGION');
  if (region === undefined) {
    // A bare client only to run the SDK's own lookup (AWS_PROFILE, ~/.aws/config), which throws when none is set.
    const probe = new S3Client({});
    try {
      region = await probe.config.region();
    } catch {
      region = 'us-east-1';
    } finally {
      probe.destroy();
    }
  }
  return { client: new S3Client({ ...config, region }), region, endpoint };
}

/**
 * AWS_CA_BUNDLE as the AWS CLI reads it (the JS SDK does not): the certificates to trust instead of
 * Node's, for a service behind a private CA.
 */
function caBundle(): { ca?: Buffer } {
  const file = envValue('AWS_CA_BUNDLE');
  if (file === undefined) return {};
  try {
    return { ca: readFileSync(file) };
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new FragfsError('USAGE', `AWS_CA_BUNDLE names ${file}, which cannot be read (${why})`, { cause: e });
  }
}

interface ServiceError {
  name?: string;
  Code?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

const AUTH_CODES = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'AllAccessDisabled',
  'AccountProblem',
  'InvalidSecurity',
  'Forbidden',
]);
const NO_SPACE_CODES = new Set(['EntityTooLarge', 'QuotaExceeded', 'InsufficientStorage', 'InsufficientCapacity', 'XMinioStorageFull']);
const RETRY_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'ServiceUnavailable',
  'BadDigest',
  'IncompleteBody',
  'TimeoutError',
  // The SDK corrects its clock from the refusal, so the next attempt is signed right.
  'RequestTimeTooSkewed',
]);
const AUTH_HINTS: Record<string, string> = {
  InvalidAccessKeyId: 'the access key is not known to the service',
  SignatureDoesNotMatch: 'the secret key does not match the access key',
  ExpiredToken: 'the session token has expired',
  AccessDenied: 'the credentials may not do this',
  Forbidden: 'the credentials are refused or may not do this',
};

/** One line, without the SDK's prefixes and never longer than a terminal can take in. */
function oneLine(s: string): string {
  const line = s.replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

const STATUS_CODES: Record<number, string> = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 412: 'PreconditionFailed' };

/**
 * The S3 error code of a failure: the service's, else (a HEAD's error has no body, and the SDK then
 * says "Unknown") the name of the HTTP status.
 */
function codeOf(e: ServiceError): string {
  const code = e.Code ?? e.name;
  if (code !== undefined && code !== 'Unknown' && code !== 'UnknownError' && code !== 'Error') return code;
  const status = e.$metadata?.httpStatusCode;
  return status === undefined ? (code ?? 'Error') : (STATUS_CODES[status] ?? `HTTP${status}`);
}

/** Turns anything the SDK threw into a RemoteFailure (or the caller's abort reason, or a FragfsError). */
function classify(e: unknown, bucket: string, o?: CallOptions): Error {
  if (o?.signal?.aborted) {
    const reason: unknown = o.signal.reason;
    return reason instanceof Error ? reason : new FragfsError('INTERRUPTED', 'the remote call was cancelled');
  }
  if (e instanceof RemoteFailure || e instanceof FragfsError) return e;
  const err = (typeof e === 'object' && e !== null ? e : { message: String(e) }) as ServiceError;
  const status = err.$metadata?.httpStatusCode;
  const code = codeOf(err);
  const msg = oneLine(err.message ?? '') || code;
  if (status === undefined) {
    if (code === 'CredentialsProviderError') {
      return new RemoteFailure('auth', 'no AWS credentials found (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials)', { cause: e });
    }
    if (code === 'TimeoutError') return new RemoteFailure('retry', 'the connection to the service timed out', { cause: e });
    if (isTransientNetworkError(e)) {
      // Node's AggregateError of a refused connection (one per address family) has no message.
      return new RemoteFailure('retry', oneLine(err.message || err.code || code), { cause: e });
    }
    if (err.$retryable) return new RemoteFailure('retry', msg, { cause: e });
    return new RemoteFailure('final', msg, { cause: e });
  }
  if (code === 'NoSuchBucket') return new RemoteFailure('final', `the bucket ${bucket} does not exist`, { cause: e });
  if (NO_SPACE_CODES.has(code) || status === 507) return new RemoteFailure('no-space', `${code}: ${msg}`, { cause: e });
  if (RETRY_CODES.has(code) || status === 429 || status >= 500) return new RemoteFailure('retry', `${code} (HTTP ${status})`, { cause: e });
  if (AUTH_CODES.has(code) || status === 401 || status === 403) {
    const hint = AUTH_HINTS[code];
    return new RemoteFailure('auth', `${code} (HTTP ${status})${hint ? `: ${hint}` : ''}`, { cause: e });
  }
  if (code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed' || status === 301) {
    return new RemoteFailure('final', `${code}: the bucket ${bucket} is in another region than the client's (set AWS_REGION)`, { cause: e });
  }
  const detail = msg !== code && !/^Unknown(Error)?$/.test(msg) ? `: ${msg}` : '';
  return new RemoteFailure('final', `${code} (HTTP ${status})${detail}`, { cause: e });
}

function isMissing(e: unknown): boolean {
  const err = e as ServiceError;
  const code = codeOf(err);
  // A HEAD has no body to tell NoSuchKey from NoSuchBucket: its 404 is a missing object.
  return code === 'NoSuchKey' || code === 'NotFound' || (err.$metadata?.httpStatusCode === 404 && code !== 'NoSuchBucket');
}

function isPreconditionRefusal(e: unknown): boolean {
  const err = e as ServiceError;
  const code = codeOf(err);
  const status = err.$metadata?.httpStatusCode;
  return code === 'PreconditionFailed' || code === 'ConditionalRequestConflict' || status === 412;
}

type Body = { transformToByteArray(): Promise<Uint8Array>; destroy?: (e?: Error) => void } & Partial<Pick<Readable, 'on' | 'off'>>;

/**
 * Reads a response body, destroying the socket when the call is aborted mid-body: the SDK's abort
 * covers the request until the headers only. `expectedBytes` (Content-Length) sizes one buffer the
 * chunks are copied into as they come, which then owns its memory: the SDK's own reader keeps every
 * chunk and joins them at the end, a second pass over fresh memory (a tenth of a cold read's time
 * on a remote mount's JS thread).
 */
async function readBody(body: Body | undefined, expectedBytes: number | undefined, o?: CallOptions): Promise<Uint8Array> {
  if (body === undefined) return new Uint8Array(0);
  const signal = o?.signal;
  const onAbort = (): void => body.destroy?.(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (expectedBytes === undefined || body.on === undefined || body.off === undefined) return await body.transformToByteArray();
    return await collectInto(body as Body & Pick<Readable, 'on' | 'off'>, expectedBytes);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function collectInto(body: Pick<Readable, 'on' | 'off'>, expectedBytes: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const out = takeBuffer(expectedBytes);
    let got = 0;
    const onData = (chunk: Buffer): void => {
      if (got + chunk.length > expectedBytes) {
        finish(new RemoteFailure('retry', `the response is longer than its Content-Length (${expectedBytes} bytes)`));
        return;
      }
      chunk.copy(out, got);
      got += chunk.length;
    };
    const onEnd = (): void => {
      finish(got === expectedBytes ? undefined : new RemoteFailure('retry', `the response ended after ${got} of ${expectedBytes} bytes`));
    };
    // Stays on after the end: an error the stream emits later must not go unhandled.
    const onError = (e: Error): void => finish(e);
    let done = false;
    const finish = (e: Error | undefined): void => {
      if (done) return;
      done = true;
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('close', onClose);
      if (e) {
        (body as Partial<Body>).destroy?.(e);
        reject(e);
      } else resolve(out);
    };
    // A socket closed mid-body may end the stream with 'close' and no 'end'.
    const onClose = (): void => finish(got === expectedBytes ? undefined : new RemoteFailure('retry', `the connection closed after ${got} of ${expectedBytes} bytes`));
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onError);
    body.on('close', onClose);
  });
}

class S3Backend implements ObjectBackend {
  readonly parallelism = PARALLELISM;
  /** '' or the URL's prefix and '/': what every key is stored under. */
  private readonly root: string;

  constructor(
    readonly url: string,
    private readonly bucket: string,
    prefix: string,
    private readonly client: S3Client,
  ) {
    this.root = prefix === '' ? '' : `${prefix}/`;
  }

  async get(key: string, o?: CallOptions): Promise<Uint8Array | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.root + key }), { abortSignal: o?.signal });
      return await readBody(res.Body as Body | undefined, res.ContentLength, o);
    } catch (e) {
      if (isMissing(e) && !o?.signal?.aborted) return undefined;
      throw classify(e, this.bucket, o);
    }
  }

  async getRange(key: string, offset: number, length: number, o?: CallOptions): Promise<Uint8Array | undefined> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.root + key, Range: `bytes=${offset}-${offset + length - 1}` }),
        { abortSignal: o?.signal },
      );
      const bytes = await readBody(res.Body as Body | undefined, res.ContentLength, o);
      // A service that ignores Range answers 200 with the whole object: the range is cut from it.
      if (res.ContentRange === undefined) return bytes.subarray(Math.min(offset, bytes.length), Math.min(offset + length, bytes.length));
      return bytes;
    } catch (e) {
      if (isMissing(e) && !o?.signal?.aborted) return undefined;
      // 416: the object ends before `offset`.
      if ((e as ServiceError).$metadata?.httpStatusCode === 416 && !o?.signal?.aborted) return new Uint8Array(0);
      throw classify(e, this.bucket, o);
    }
  }

  async put(key: string, bytes: Uint8Array, o: PutOptions & CallOptions = {}): Promise<boolean> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.root + key,
          Body: bytes,
          ContentLength: bytes.byteLength,
          ...(o.ifAbsent ? { IfNoneMatch: '*' } : {}),
        }),
        { abortSignal: o.signal },
      );
      return true;
    } catch (e) {
      // 412: the key exists; 409 (AWS): another conditional write of it is in flight and will win.
      if (o.ifAbsent && isPreconditionRefusal(e) && !o.signal?.aborted) return false;
      throw classify(e, this.bucket, o);
    }
  }

  async size(key: string, o?: CallOptions): Promise<number | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.root + key }), { abortSignal: o?.signal });
      return res.ContentLength ?? 0;
    } catch (e) {
      if (isMissing(e) && !o?.signal?.aborted) return undefined;
      throw classify(e, this.bucket, o);
    }
  }

  async delete(key: string, o?: CallOptions): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.root + key }), { abortSignal: o?.signal });
    } catch (e) {
      if (isMissing(e) && !o?.signal?.aborted) return;
      throw classify(e, this.bucket, o);
    }
  }

  async *list(prefix: string, o?: CallOptions): AsyncIterable<ObjectEntry> {
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.root + prefix, ContinuationToken: token }),
          { abortSignal: o?.signal },
        );
      } catch (e) {
        throw classify(e, this.bucket, o);
      }
      for (const obj of page.Contents ?? []) {
        const full = obj.Key;
        // Folder markers ("a/b/", made by consoles) and anything outside the root are not objects of ours.
        if (full === undefined || !full.startsWith(this.root) || full.endsWith('/')) continue;
        yield { key: full.slice(this.root.length), size: obj.Size ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/**
 * Opens `s3://BUCKET/PREFIX` on the usual AWS environment (credentials chain, AWS_REGION,
 * AWS_ENDPOINT_URL[_S3], AWS_CA_BUNDLE), without a call to the service: a missing bucket or refused
 * credentials show on the first call, as a RemoteFailure ResilientBackend reports.
 */
export async function openS3Backend(url: S3StoreUrl, o: S3BackendOptions = {}): Promise<ObjectBackend> {
  const { client } = await makeClient(o);
  return new S3Backend(formatStoreUrl(url), url.bucket, url.prefix, client);
}

/**
 * Creates the URL's bucket (tests, `init` on a fresh service); one that is already ours is fine.
 * Throws the FragfsError a failed call gives.
 */
export async function createS3Bucket(url: S3StoreUrl, o: S3BackendOptions = {}): Promise<void> {
  const { client, region, endpoint } = await makeClient(o);
  try {
    // AWS wants the region named outside us-east-1; other services have their own (Ceph: its zonegroup).
    const where = endpoint === undefined && region !== 'us-east-1' ? { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } } : {};
    await client.send(new CreateBucketCommand({ Bucket: url.bucket, ...where }));
  } catch (e) {
    if (codeOf(e as ServiceError) === 'BucketAlreadyOwnedByYou') return;
    if (codeOf(e as ServiceError) === 'BucketAlreadyExists') {
      throw new FragfsError('EXISTS', `${formatStoreUrl(url)}: the bucket ${url.bucket} exists and belongs to another account`, { cause: e });
    }
    throw failureToError(classify(e, url.bucket), 'creating the bucket', formatStoreUrl(url), 1);
  } finally {
    client.destroy();
  }
}
