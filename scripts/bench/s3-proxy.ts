// A counting HTTP reverse proxy in front of one S3 endpoint, for benchmarks: every request is forwarded
// unchanged (Host included, so SigV4 signatures still hold), bodies streamed both ways over keep-alive
// connections, and counted by kind (GET, PUT, HEAD, POST, DELETE, LIST for a GET on a bucket) with the
// bytes each way, the time requests were open, the most in flight at once, and the proxy's CPU time.

import { Agent, createServer, request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxyCounts {
  /** Requests by kind: GET, PUT, HEAD, POST, DELETE, LIST (a GET on the bucket itself), OTHER. */
  requests: Record<string, number>;
  total: number;
  /** Request body bytes forwarded to the service. */
  bytesUp: number;
  /** Response body bytes forwarded to the clients. */
  bytesDown: number;
  /** 404 answers (a HEAD or GET for an object that is not there: often a tool's look before a write). */
  notFound: number;
  /** Other answers of 400 or more, and requests the service never answered. */
  errors: number;
  /** Seconds from each request's arrival to the end of its response, summed: over wall time, the mean concurrency. */
  openSeconds: number;
  /** Most requests in flight at once since the last resetPeak(). */
  maxInFlight: number;
  /** CPU seconds of this process (the proxy runs in it) since the proxy started. */
  cpuSeconds: number;
}

export interface CountingProxy {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly port: number;
  counts(): ProxyCounts;
  resetPeak(): void;
  close(): Promise<void>;
}

// Hop-by-hop headers are the proxy's own business on each side; Expect is answered here (Node sends
// the 100 Continue itself), so the service gets the body at once.
const REQUEST_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'upgrade', 'expect']);
const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade']);

function strip(h: IncomingHttpHeaders, drop: Set<string>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !drop.has(k)) out[k] = v;
  return out;
}

function kindOf(method: string, url: string): string {
  const path = url.split('?')[0] ?? '';
  const segments = path.split('/').filter((s) => s.length > 0);
  if (method === 'GET' && segments.length <= 1) return 'LIST';
  return ['GET', 'PUT', 'HEAD', 'POST', 'DELETE'].includes(method) ? method : 'OTHER';
}

/** counts() minus an earlier counts(): what happened in between (maxInFlight is the later one's). */
export function diffCounts(after: ProxyCounts, before: ProxyCounts): ProxyCounts {
  const requests: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.requests)) {
    const d = v - (before.requests[k] ?? 0);
    if (d !== 0) requests[k] = d;
  }
  return {
    requests,
    total: after.total - before.total,
    bytesUp: after.bytesUp - before.bytesUp,
    bytesDown: after.bytesDown - before.bytesDown,
    notFound: after.notFound - before.notFound,
    errors: after.errors - before.errors,
    openSeconds: after.openSeconds - before.openSeconds,
    maxInFlight: after.maxInFlight,
    cpuSeconds: after.cpuSeconds - before.cpuSeconds,
  };
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const t = new URL(target);
  if (t.protocol !== 'http:') throw new Error(`the counting proxy forwards to http only, not ${t.protocol}`);
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 512, noDelay: true } as ConstructorParameters<typeof Agent>[0]);
  const requests: Record<string, number> = {};
  let total = 0;
  let bytesUp = 0;
  let bytesDown = 0;
  let errors = 0;
  let notFound = 0;
  let openSeconds = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const cpu0 = process.cpuUsage();

  const server = createServer({ noDelay: true, requestTimeout: 0, headersTimeout: 120_000 }, (req, res) => {
    const method = req.method ?? 'GET';
    const kind = kindOf(method, req.url ?? '/');
    requests[kind] = (requests[kind] ?? 0) + 1;
    total++;
    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
    let done = false;
    const started = process.hrtime.bigint();
    const finish = (): void => {
      if (done) return;
      done = true;
      inFlight--;
      openSeconds += Number(process.hrtime.bigint() - started) / 1e9;
    };
    res.on('close', finish);

    const up = request({
      agent,
      host: t.hostname,
      port: t.port === '' ? 80 : Number(t.port),
      method,
      path: req.url,
      headers: strip(req.headers, REQUEST_DROP),
    });
    up.on('response', (ur) => {
      const status = ur.statusCode ?? 0;
      if (status === 404) notFound++;
      else if (status >= 400) errors++;
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, strip(ur.headers, RESPONSE_DROP));
      ur.on('data', (c: Buffer) => {
        bytesDown += c.length;
      });
      ur.pipe(res);
      ur.on('error', () => res.destroy());
    });
    up.on('error', (e) => {
      errors++;
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`proxy: ${e.message}\n`);
      } else res.destroy();
    });
    // A client that goes away mid-request takes the forwarded request with it.
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.on('data', (c: Buffer) => {
      bytesUp += c.length;
    });
    req.pipe(up);
  });
  // The clients' keep-alive pools hold sockets for a while between phases: do not close them under them.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    counts(): ProxyCounts {
      const c = process.cpuUsage(cpu0);
      return { requests: { ...requests }, total, bytesUp, bytesDown, notFound, errors, openSeconds, maxInFlight, cpuSeconds: (c.user + c.system) / 1e6 };
    },
    resetPeak(): void {
      maxInFlight = inFlight;
    },
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
