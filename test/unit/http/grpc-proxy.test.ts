/**
 * gRPC in the forwarder, in process on loopback over HTTP/1.1 (the HTTP/2 path is covered end to
 * end in test/integration/grpc.test.ts): retries on a Trailers-Only `grpc-status` (any method,
 * body replayed) and never on a status in trailers or for a non-gRPC request; outcomes recorded
 * with the gRPC status's HTTP equivalent; mesh errors answered as gRPC Trailers-Only replies;
 * `grpc_response_status` and `request_protocol` in the request metrics.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, constants } from 'node:http2';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { RetryPolicy, Route } from '../../../sidecar/proxy/config/types.ts';
import { ProxyMetrics } from '../../../sidecar/proxy/telemetry/metrics.ts';
import {
  collectRetryEvents,
  endpointFor,
  route,
  send,
  sha256,
  startProxy,
  TestCluster,
  until,
} from './retry-helpers.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** A port on 127.0.0.1 with nothing listening. */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** What a fake gRPC upstream does with a call: a Trailers-Only status, or a body then trailers. */
type GrpcAction =
  | { readonly trailersOnly: number; readonly message?: string }
  | { readonly body: string; readonly trailerStatus: number }
  | 'hang';

interface GrpcUpstream {
  readonly port: number;
  /** sha256 of each request body received, in order. */
  readonly bodies: string[];
  close(): Promise<void>;
}

/**
 * An HTTP/1.1 server answering every request as `script(n)` says (gRPC-shaped heads and trailers);
 * `onRequest` sees each request first.
 */
async function grpcUpstream(
  script: (n: number) => GrpcAction,
  onRequest?: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<GrpcUpstream> {
  const bodies: string[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    onRequest?.(req, res);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const n = bodies.length;
      bodies.push(sha256(Buffer.concat(chunks)));
      const action = script(n);
      if (action === 'hang') return;
      if ('trailersOnly' in action) {
        res.writeHead(200, {
          'content-type': 'application/grpc',
          'grpc-status': String(action.trailersOnly),
          'grpc-message': action.message ?? 'scripted',
          'content-length': '0',
        });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/grpc', trailer: 'grpc-status' });
      res.write(action.body);
      res.addTrailers({ 'grpc-status': String(action.trailerStatus) });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const upstream = {
    port,
    bodies,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  cleanups.push(() => upstream.close());
  return upstream;
}

/** Upstreams behind cluster `c` (round robin from the first) and a proxy with `routes` (default: one route with `retry`). */
async function rig(
  upstreams: readonly GrpcUpstream[],
  retry?: RetryPolicy,
  routes?: readonly Route[],
  extraPorts: readonly number[] = [],
) {
  const cluster = new TestCluster('c', [...extraPorts, ...upstreams.map((u) => u.port)].map(endpointFor));
  cleanups.push(() => cluster.close());
  const proxy = await startProxy(routes ?? [route('r', 'c', retry === undefined ? {} : { retry })], [
    cluster,
  ]);
  cleanups.push(() => proxy.close());
  const collector = collectRetryEvents();
  cleanups.push(() => collector.stop());
  return { port: proxy.port, cluster, events: collector.events };
}

const GRPC_HEADERS = { 'content-type': 'application/grpc', te: 'trailers' };
const unavailableRetry: RetryPolicy = { numRetries: 2, retryOnGrpcStatus: [14], backoffBaseMs: 1 };

/** A gRPC call (POST with a length-prefixed message) through the proxy on `port`. */
function call(port: number, body: Buffer = randomBytes(64), headers: Record<string, string> = {}) {
  return send(port, {
    method: 'POST',
    path: '/weft.test.Echo/Unary',
    headers: { ...GRPC_HEADERS, ...headers },
    body,
  });
}

describe('retry on a Trailers-Only gRPC status', () => {
  it('retries UNAVAILABLE on another endpoint, whatever the method, replaying the body', async () => {
    const a = await grpcUpstream(() => ({ trailersOnly: 14 }));
    const b = await grpcUpstream(() => ({ body: 'ok', trailerStatus: 0 }));
    const r = await rig([a, b], unavailableRetry);
    const body = randomBytes(300);
    const reply = await call(r.port, body);
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('ok');
    expect(a.bodies).toEqual([sha256(body)]);
    expect(b.bodies).toEqual([sha256(body)]);
    expect(r.events).toEqual([{ cluster: 'c', retried: true, reason: 'grpc_unavailable' }]);
    // The UNAVAILABLE in HTTP 200 counts as a 503 for outlier detection and breakers.
    expect(r.cluster.outcomes.map((o) => o.outcome)).toEqual([
      { kind: 'response', status: 503 },
      { kind: 'response', status: 200 },
    ]);
    expect(r.cluster.activeRetries).toBe(0);
    expect(r.cluster.activeRequests).toBe(0);
  });

  it('forwards the last Trailers-Only status when the retries run out', async () => {
    const a = await grpcUpstream(() => ({ trailersOnly: 14, message: 'down' }));
    const r = await rig([a], { ...unavailableRetry, numRetries: 1 });
    const reply = await call(r.port);
    expect(reply.status).toBe(200);
    expect(reply.headers['grpc-status']).toBe('14');
    expect(reply.headers['grpc-message']).toBe('down');
    expect(reply.headers['x-weft-error']).toBeUndefined();
    expect(a.bodies).toHaveLength(2);
    expect(r.events).toEqual([{ cluster: 'c', retried: true, reason: 'grpc_unavailable' }]);
  });

  it('does not retry a status the policy does not list', async () => {
    const a = await grpcUpstream(() => ({ trailersOnly: 5, message: 'not found' }));
    const b = await grpcUpstream(() => ({ body: 'ok', trailerStatus: 0 }));
    const r = await rig([a, b], unavailableRetry);
    const reply = await call(r.port);
    expect(reply.headers['grpc-status']).toBe('5');
    expect(b.bodies).toHaveLength(0);
    expect(r.events).toEqual([]);
    expect(r.cluster.outcomes.map((o) => o.outcome)).toEqual([{ kind: 'response', status: 404 }]);
  });

  it('does not retry a status that arrives in trailers after the body', async () => {
    const a = await grpcUpstream(() => ({ body: 'partial', trailerStatus: 14 }));
    const b = await grpcUpstream(() => ({ body: 'ok', trailerStatus: 0 }));
    const r = await rig([a, b], unavailableRetry);
    const reply = await call(r.port);
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('partial');
    expect(b.bodies).toHaveLength(0);
    expect(r.events).toEqual([]);
    // Recorded once, when the trailers brought the status: UNAVAILABLE as 503.
    expect(r.cluster.outcomes.map((o) => o.outcome)).toEqual([{ kind: 'response', status: 503 }]);
  });

  it('retries a gRPC call whose connection failed on another endpoint, whatever the method', async () => {
    const closed = await closedPort();
    const b = await grpcUpstream(() => ({ body: 'ok', trailerStatus: 0 }));
    const r = await rig([b], { numRetries: 1, retryOnConnectFailure: true, backoffBaseMs: 1 }, undefined, [
      closed,
    ]);
    const body = randomBytes(100);
    const reply = await call(r.port, body);
    expect(reply.body).toBe('ok');
    expect(b.bodies).toEqual([sha256(body)]);
    expect(r.events).toEqual([{ cluster: 'c', retried: true, reason: 'connect_failure' }]);
  });

  it('does not retry a non-gRPC request on a grpc-status in its response head', async () => {
    const a = await grpcUpstream(() => ({ trailersOnly: 14 }));
    const b = await grpcUpstream(() => ({ body: 'ok', trailerStatus: 0 }));
    const r = await rig([a, b], { ...unavailableRetry, retryMethods: ['POST'] });
    const reply = await call(r.port, randomBytes(10), { 'content-type': 'application/json' });
    expect(reply.headers['grpc-status']).toBe('14');
    expect(b.bodies).toHaveLength(0);
    expect(r.events).toEqual([]);
  });
});

describe('mesh errors to a gRPC client', () => {
  it('answers no healthy upstream as HTTP 200 Trailers-Only UNAVAILABLE with x-weft-error', async () => {
    const r = await rig([]);
    const reply = await call(r.port);
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/grpc');
    expect(reply.headers['grpc-status']).toBe('14');
    expect(reply.headers['grpc-message']).toBe('the cluster has no healthy endpoint: c');
    expect(reply.headers['x-weft-error']).toBe('NO_HEALTHY_UPSTREAM');
    expect(reply.headers['content-length']).toBe('0');
    expect(reply.body).toBe('');
  });

  it('answers a request no route matches as UNIMPLEMENTED', async () => {
    const only: Route = {
      name: 'only',
      matches: [{ path: { type: 'EXACT', value: '/weft.test.Echo/Other' } }],
      route: { clusters: [{ name: 'c' }] },
    };
    const r = await rig([], undefined, [only]);
    const reply = await call(r.port);
    expect(reply.headers['grpc-status']).toBe('12');
    expect(reply.headers['x-weft-error']).toBe('NO_ROUTE');
  });

  it('answers an expired grpc-timeout as DEADLINE_EXCEEDED', async () => {
    const a = await grpcUpstream(() => 'hang');
    const r = await rig([a]);
    const reply = await call(r.port, randomBytes(8), { 'grpc-timeout': '50m' });
    expect(reply.status).toBe(200);
    expect(reply.headers['grpc-status']).toBe('4');
    expect(reply.headers['x-weft-error']).toBe('REQUEST_TIMEOUT');
  });

  it('percent-encodes the detail in grpc-message and still answers HTTP clients as before', async () => {
    const r = await rig([], undefined, [
      { name: 'bad', route: { clusters: [{ name: 'gone ☕ 100%' }] } } as Route,
    ]);
    const grpcReply = await call(r.port);
    expect(grpcReply.headers['grpc-status']).toBe('14');
    expect(grpcReply.headers['grpc-message']).toBe(
      'the route names a cluster the proxy does not know: gone %E2%98%95 100%25',
    );
    const httpReply = await send(r.port, { path: '/' });
    expect(httpReply.status).toBe(503);
    expect(httpReply.headers['grpc-status']).toBeUndefined();
    expect(httpReply.headers['x-weft-error']).toBe('CLUSTER_NOT_FOUND');
  });
});

describe('a gRPC client that cancels (HTTP/2 RST_STREAM)', () => {
  it('aborts the upstream call at once, and a late Trailers-Only answer harms nothing', async () => {
    let upstreamClosed: () => void = () => undefined;
    const closed = new Promise<void>((resolve) => {
      upstreamClosed = resolve;
    });
    let answerLate: (() => void) | undefined;
    const a = await grpcUpstream(
      (n) => (n === 0 ? 'hang' : { trailersOnly: 0 }),
      (req, res) => {
        if (answerLate !== undefined) return;
        req.socket.once('close', () => upstreamClosed());
        answerLate = () => {
          if (!res.writableEnded && !res.destroyed) {
            res.writeHead(200, {
              'content-type': 'application/grpc',
              'grpc-status': '4',
              'content-length': '0',
            });
            res.end();
          }
        };
      },
    );
    const r = await rig([a]);
    const session = connect(`http://127.0.0.1:${r.port}`);
    cleanups.push(() => new Promise<void>((resolve) => session.close(() => resolve())));
    const stream = session.request({
      ':method': 'POST',
      ':path': '/weft.test.Echo/Unary',
      ':authority': 'svc',
      ...GRPC_HEADERS,
    });
    stream.on('error', () => undefined);
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
    await until(() => a.bodies.length === 1, 5000, 'the call to reach the upstream');
    stream.close(constants.NGHTTP2_CANCEL);
    await closed; // the proxy gave up the upstream request (its connection closed)
    answerLate?.();
    // The proxy is still serving.
    const reply = await call(r.port);
    expect(reply.status).toBe(200);
    expect(reply.headers['grpc-status']).toBe('0');
  });
});

describe('gRPC request metrics', () => {
  it('labels gRPC requests request_protocol="grpc" with grpc_response_status from a Trailers-Only head or trailers alike', async () => {
    const metrics = new ProxyMetrics({ service: 'web', workload: 'web-v1', namespace: 'default' });
    cleanups.push(() => metrics.close());
    const script: GrpcAction[] = [
      { trailersOnly: 7 },
      { trailersOnly: 0 },
      { body: 'plain', trailerStatus: 0 },
      { body: 'streamed', trailerStatus: 15 },
    ];
    const a = await grpcUpstream((n) => script[n] as GrpcAction);
    const r = await rig([a]);
    await call(r.port);
    await call(r.port);
    const plain = await send(r.port, { path: '/' });
    expect(plain.status).toBe(200);
    await call(r.port);
    const { body } = await metrics.expose();
    const lines = body.split('\n').filter((l) => l.startsWith('weft_requests_total{'));
    const count = (match: string[]): number =>
      lines
        .filter((l) => match.every((m) => l.includes(m)))
        .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    expect(count(['request_protocol="grpc"', 'grpc_response_status="7"', 'response_code="200"'])).toBe(1);
    expect(count(['request_protocol="grpc"', 'grpc_response_status="0"'])).toBe(1);
    expect(count(['request_protocol="http/1.1"', 'grpc_response_status=""'])).toBe(1);
    // The same status in trailers counts alike.
    expect(count(['request_protocol="grpc"', 'grpc_response_status="15"', 'response_code="200"'])).toBe(1);
  });
});
