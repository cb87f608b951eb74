/**
 * Helpers for the retry unit tests (test/unit/http/retry*.test.ts): a scriptable upstream on
 * 127.0.0.1:0 (answer with a status, hang, reset before the head or in the middle of the body),
 * a fake cluster that implements the `UpstreamCluster` hooks with counters (admission, retry slots,
 * recorded outcomes) and a switchable retry budget, an in-process listener running the real pipeline
 * on them, and a collector for `weft:retry` events.
 */
import { createHash } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Pool, request } from 'undici';
import type { Route } from '../../../sidecar/proxy/config/types.ts';
import { HttpListener } from '../../../sidecar/proxy/http/listener.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';
import type { RetryEvent } from '../../../sidecar/proxy/telemetry/channels.ts';
import type {
  AttemptOutcome,
  PickContext,
  UpstreamCluster,
  UpstreamEndpoint,
} from '../../../sidecar/proxy/upstream/types.ts';

/** What a scripted upstream does with one request (after reading its whole body). */
export type Action =
  | { readonly status: number; readonly body?: string }
  | 'hang'
  | 'reset-before-headers'
  | 'reset-mid-body';

/** One request as a scripted upstream saw it. */
export interface Seen {
  readonly upstream: string;
  readonly method: string;
  readonly attempt: string | undefined;
  readonly grpcTimeout: string | undefined;
  readonly bodyBytes: number;
  readonly bodySha256: string;
  /** Fake-able clock (Date.now) when the request head arrived. */
  readonly atMs: number;
}

export interface ScriptedUpstream {
  readonly name: string;
  readonly port: number;
  /** Requests this upstream received, in order (shared log across upstreams in `log`). */
  readonly seen: Seen[];
  /** TCP connections accepted so far. */
  readonly connections: () => number;
  close(): Promise<void>;
}

/**
 * Starts an upstream named `name` whose `script(n)` (n = 0-based request index on this upstream)
 * says what to do; every request is also appended to `log`.
 */
export async function scriptedUpstream(
  name: string,
  script: (n: number, req: IncomingMessage) => Action,
  log: Seen[] = [],
): Promise<ScriptedUpstream> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const n = seen.length;
    const atMs = Date.now();
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      const entry: Seen = {
        upstream: name,
        method: req.method ?? '',
        attempt: header(req, 'x-weft-attempt'),
        grpcTimeout: header(req, 'grpc-timeout'),
        bodyBytes: bytes,
        bodySha256: hash.digest('hex'),
        atMs,
      };
      seen.push(entry);
      log.push(entry);
      const action = script(n, req);
      if (action === 'hang') return;
      if (action === 'reset-before-headers') {
        req.socket.destroy();
        return;
      }
      if (action === 'reset-mid-body') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
        res.write('the first bytes', () => res.socket?.destroy());
        return;
      }
      const body = action.body ?? `${name} ${action.status}`;
      res.writeHead(action.status, { 'content-type': 'text/plain', 'x-upstream': name });
      res.end(body);
    });
  });
  let connections = 0;
  server.on('connection', () => {
    connections++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    name,
    port,
    seen,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** sha256 of `data`, hex. */
export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** An endpoint with a real undici pool to 127.0.0.1:`port`. */
export function endpointFor(port: number): UpstreamEndpoint {
  const origin = `http://127.0.0.1:${port}`;
  return {
    key: `127.0.0.1:${port}`,
    origin,
    pool: new Pool(origin, { pipelining: 1, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 4000 }),
    labels: {},
    weight: 1,
    activeRequests: 0,
  };
}

/**
 * A cluster implementing the resilience hooks with counters: round robin that honours `exclude`,
 * `admitRetry` refusing when `budget` or `retrySlots` is off (saying why in `lastRetryDenial`),
 * `admitRequest` answering OVERFLOW when `overflow` is on.
 */
export class TestCluster implements UpstreamCluster {
  readonly name: string;
  readonly hashHeader = undefined;
  readonly endpoints: UpstreamEndpoint[];
  /** `admitRetry` refuses with BUDGET_EXHAUSTED when false. */
  budget = true;
  /** `admitRetry` refuses with OVERFLOW (max active retries) when false. */
  retrySlots = true;
  /** `admitRequest` answers OVERFLOW when true. */
  overflow = false;
  lastRetryDenial: 'OVERFLOW' | 'BUDGET_EXHAUSTED' | undefined;
  activeRequests = 0;
  admittedRequests = 0;
  activeRetries = 0;
  /** Most retries held at once (back-off included). */
  peakRetries = 0;
  admittedRetries = 0;
  readonly outcomes: { endpoint: string; outcome: AttemptOutcome }[] = [];
  #next = 0;

  constructor(name: string, endpoints: UpstreamEndpoint[]) {
    this.name = name;
    this.endpoints = endpoints;
  }

  pick(_ctx: PickContext, exclude?: UpstreamEndpoint): UpstreamEndpoint | undefined {
    const n = this.endpoints.length;
    if (n === 0) return undefined;
    for (let i = 0; i < n; i++) {
      const e = this.endpoints[(this.#next + i) % n] as UpstreamEndpoint;
      if (e !== exclude || n === 1) {
        this.#next = (this.#next + i + 1) % n;
        return e;
      }
    }
    return undefined;
  }

  admitRequest(): 'OVERFLOW' | undefined {
    if (this.overflow) return 'OVERFLOW';
    this.activeRequests++;
    this.admittedRequests++;
    return undefined;
  }

  releaseRequest(): void {
    this.activeRequests--;
  }

  admitRetry(): boolean {
    if (!this.retrySlots) {
      this.lastRetryDenial = 'OVERFLOW';
      return false;
    }
    if (!this.budget) {
      this.lastRetryDenial = 'BUDGET_EXHAUSTED';
      return false;
    }
    this.activeRetries++;
    this.admittedRetries++;
    this.peakRetries = Math.max(this.peakRetries, this.activeRetries);
    return true;
  }

  releaseRetry(): void {
    this.activeRetries--;
  }

  record(endpoint: UpstreamEndpoint, outcome: AttemptOutcome): void {
    this.outcomes.push({ endpoint: endpoint.key, outcome });
  }

  async close(): Promise<void> {
    await Promise.all(this.endpoints.map((e) => e.pool.close()));
  }
}

/** A forwarding route `name` for every path on every host, to cluster `cluster`. */
export function route(name: string, cluster: string, extra: Partial<Route> = {}): Route {
  return { name, route: { clusters: [{ name: cluster }] }, ...extra };
}

/** An in-process listener (real node:http server, real pipeline) on 127.0.0.1:0. */
export async function startProxy(
  routes: readonly Route[],
  clusters: readonly TestCluster[],
): Promise<{ port: number; close(): Promise<void> }> {
  const table = compileRouteTable({ name: 'r', virtualHosts: [{ name: 'all', domains: ['*'], routes }] });
  const byName = new Map<string, UpstreamCluster>(clusters.map((c) => [c.name, c]));
  const listener = new HttpListener(
    { name: 'outbound', address: '127.0.0.1', port: 0, direction: 'OUTBOUND', routeConfigName: 'r' },
    { routeTable: table, clusters: byName, filters: [] },
  );
  const { port } = await listener.listen();
  return { port, close: () => listener.close(0) };
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** Sends one request through the proxy on `port` (a fresh connection per call). */
export async function send(
  port: number,
  options: {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: Buffer | string | AsyncIterable<Buffer>;
  } = {},
): Promise<Reply> {
  const res = await request(`http://127.0.0.1:${port}${options.path ?? '/'}`, {
    method: options.method ?? 'GET',
    headers: { host: 'svc', ...options.headers },
    body: options.body ?? null,
    reset: true,
  } as Parameters<typeof request>[1]);
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body };
}

/** Collects `weft:retry` events until `stop()`. */
export function collectRetryEvents(): { readonly events: RetryEvent[]; stop(): void } {
  const events: RetryEvent[] = [];
  const onEvent = (message: unknown): void => {
    events.push(message as RetryEvent);
  };
  diagnostics.subscribe('weft:retry', onEvent);
  return { events, stop: () => diagnostics.unsubscribe('weft:retry', onEvent) };
}

/** Resolves once `cond()` holds; rejects after `timeoutMs` of real time (polls on real timers). */
export async function until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Yields `data` in `chunkBytes` chunks: sent as a body without Content-Length (chunked). */
export async function* chunked(data: Buffer, chunkBytes = 4096): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += chunkBytes) yield data.subarray(i, i + chunkBytes);
}
