/**
 * HTTP/1.1 Upgrade through the proxy (RFC 9110 §7.8), for WebSocket (RFC 6455 §4): node:http
 * hands a request with `Connection: upgrade` (read as a token list, so `keep-alive, Upgrade`
 * counts) and an `Upgrade` field to `handleUpgrade` with the raw socket.
 *
 * - The request goes through the normal pipeline (pipeline.ts): target, hop-by-hop removal,
 *   X-Forwarded-For, x-request-id, traceparent, the filters (RBAC included), route match, fault,
 *   the route's request header modifiers and URL rewrite. Local answers (404, 403, 503, ...) are
 *   written as HTTP on the socket, which then closes.
 * - `Upgrade: websocket`: instead of the pooled upstream exchange, the pipeline calls
 *   `forwardUpgrade`: the cluster admits it and picks an endpoint (as for a request), a dedicated
 *   connection is opened to it (tcp/connect.ts: plain, or mTLS with the endpoint's SPIFFE ID and
 *   ALPN `http/1.1`, whatever the cluster's pools speak), and the request head is written with
 *   `Connection: upgrade` and the `Upgrade` value restored (every other hop-by-hop field removed).
 *   - 101: the response head is relayed as received, then the two sockets are spliced
 *     (tcp/splice.ts: backpressure, half-close, idle timeout `UPGRADE_IDLE_TIMEOUT_MS`). The
 *     request is recorded (metrics, access log) with status 101 when the spliced connection ends.
 *   - anything else: the connection stays HTTP. The response (hop-by-hop fields removed) is relayed
 *     with `Connection: close`, and the connection closes after it.
 * - Any other upgrade token (e.g. `h2c`, RFC 9113 §3.1 dropped the h2c upgrade): the upgrade is
 *   ignored, as RFC 9110 §7.8 allows: the request is forwarded as a plain request (Upgrade and
 *   Connection removed) and answered with `Connection: close`. A request body is not supported on
 *   upgrade requests (node:http no longer parses the socket): WebSocket handshakes are GETs.
 * - Failures map to the closed error set as for requests: no endpoint → NO_HEALTHY_UPSTREAM /
 *   CIRCUIT_OPEN, over a limit → OVERFLOW, connect or mTLS failure → UPSTREAM_CONNECT_FAILURE,
 *   reset before a response → UPSTREAM_RESET, malformed response → UPSTREAM_PROTOCOL_ERROR, the
 *   route's request timeout before the response head → REQUEST_TIMEOUT.
 */
import {
  type ClientRequest,
  request as httpRequest,
  type IncomingMessage,
  ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { ErrorKind } from '../errors.ts';
import type { TlsSource } from '../identity.ts';
import { connectStream } from '../tcp/connect.ts';
import { Splice } from '../tcp/splice.ts';
import { completeRequest } from '../telemetry/channels.ts';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../upstream/pool.ts';
import type { UpstreamCluster } from '../upstream/types.ts';
import { type ListenerInfo, RequestContext } from './context.ts';
import { sendError } from './local-reply.ts';
import { handleRequest, type PipelineState } from './pipeline.ts';
import type { DownstreamTls } from './tls.ts';

/** Idle timeout of a spliced upgraded connection (ms): 1 h, as for TCP proxying. */
export const UPGRADE_IDLE_TIMEOUT_MS = 3_600_000;
/** After a non-101 answer: how long the client may keep its side open before the socket is destroyed (ms). */
const END_GRACE_MS = 2000;

/** Response fields never relayed (RFC 9110 §7.6.1), besides those `Connection` lists. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);

/** What the pipeline needs to finish an upgrade request (set on `RequestContext.upgrade`). */
export interface UpgradeRequest {
  readonly socket: Socket;
  /** Bytes the client sent after the request head (data of the new protocol). */
  readonly head: Buffer;
  /** The `Upgrade` field value as received, e.g. `websocket`. */
  readonly protocol: string;
}

function tokens(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '');
}

/** True when the `Upgrade` field offers WebSocket (RFC 6455 §4.1: `websocket`, case-insensitive). */
export function offersWebSocket(upgrade: string | undefined): boolean {
  return tokens(upgrade).some((t) => t === 'websocket' || t.startsWith('websocket/'));
}

/**
 * node:http 'upgrade' on a listener: runs the pipeline for the request on `socket` (see the
 * module header). `tls` marks mTLS connections (principal, security policy). Never throws.
 */
export function handleUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  listener: ListenerInfo,
  state: PipelineState,
  tls: DownstreamTls,
): void {
  const raw = socket as Socket;
  raw.on('error', () => raw.destroy());
  const res = new ServerResponse(req);
  res.assignSocket(raw);
  res.shouldKeepAlive = false;
  // A local reply or a relayed response: the connection closes once it is written (destroyed if
  // the client has not closed its side `END_GRACE_MS` later).
  res.once('finish', () => {
    raw.end();
    setTimeout(() => raw.destroy(), END_GRACE_MS).unref();
  });
  const ctx = new RequestContext(req, res, listener, performance.now());
  if ((raw as TLSSocket).encrypted === true) tls.onRequest(ctx, raw as TLSSocket, res);
  const protocol = req.headers.upgrade ?? '';
  if (offersWebSocket(protocol)) ctx.upgrade = { socket: raw, head, protocol };
  handleRequest(ctx, state);
}

/** Options the pipeline resolved for the upgrade request. */
export interface UpgradeForward {
  readonly cluster: UpstreamCluster;
  readonly hashKey: string | undefined;
  readonly path: string;
  /** The route's request timeout (ms, 0: none), up to the response head. */
  readonly requestMs: number;
  /** The proxy's certificate, for mTLS clusters. */
  readonly tls: TlsSource;
}

/**
 * The upgrade request's upstream leg, in place of the pooled exchange: see the module header.
 * `ctx.upgrade` must be set.
 */
export function forwardUpgrade(ctx: RequestContext, options: UpgradeForward): void {
  const upgrade = ctx.upgrade as UpgradeRequest;
  const { cluster } = options;
  if (cluster.admitRequest() !== undefined) {
    sendError(ctx, 'OVERFLOW');
    return;
  }
  const endpoint = cluster.pick({ hashKey: options.hashKey, random: Math.random });
  if (endpoint === undefined) {
    cluster.releaseRequest();
    sendError(ctx, cluster.lastPickFailure ?? 'NO_HEALTHY_UPSTREAM');
    return;
  }
  endpoint.activeRequests++;
  ctx.upstreamHost = endpoint.key;
  ctx.attempts = 1;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    endpoint.activeRequests--;
    cluster.releaseRequest();
  };
  const fail = (kind: ErrorKind, detail?: string): void => {
    cluster.record(endpoint, { kind: 'error', error: kind });
    release();
    sendError(ctx, kind, detail);
  };
  const identity = endpoint.identity ?? '';
  const downstream = upgrade.socket;
  let timer: NodeJS.Timeout | undefined;
  let creq: ClientRequest | undefined;
  if (options.requestMs > 0) {
    timer = setTimeout(() => {
      creq?.destroy();
      fail('REQUEST_TIMEOUT');
    }, options.requestMs);
  }
  const onDownstreamClose = (): void => {
    clearTimeout(timer);
    creq?.destroy();
    if (!released) {
      ctx.flags = 'DOWNSTREAM_DISCONNECT';
      release();
      completeRequest(ctx);
    }
  };
  downstream.once('close', onDownstreamClose);

  connectStream({
    origin: endpoint.origin,
    mtls: identity !== '' ? { tls: options.tls, expectedIdentity: identity } : undefined,
    alpn: ['http/1.1'],
    connectTimeoutMs: cluster.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
  }).then(
    (upstream) => {
      if (released) {
        upstream.destroy();
        return;
      }
      const headers = ctx.upstreamHeaders;
      headers.connection = 'upgrade';
      headers.upgrade = upgrade.protocol;
      const method = ctx.req.method ?? 'GET';
      creq = httpRequest({ method, path: options.path, headers, createConnection: () => upstream });
      creq.on('upgrade', (ures: IncomingMessage, usock: Socket, uhead: Buffer) => {
        clearTimeout(timer);
        downstream.off('close', onDownstreamClose);
        cluster.record(endpoint, { kind: 'response', status: 101 });
        if (downstream.destroyed) {
          usock.destroy();
          ctx.flags = 'DOWNSTREAM_DISCONNECT';
          release();
          completeRequest(ctx);
          return;
        }
        ctx.status = 101;
        downstream.write(responseHead(ures));
        if (uhead.length > 0) downstream.write(uhead);
        if (upgrade.head.length > 0) usock.write(upgrade.head);
        new Splice(downstream, usock, UPGRADE_IDLE_TIMEOUT_MS, () => {
          release();
          completeRequest(ctx);
        });
      });
      creq.on('response', (ures: IncomingMessage) => {
        clearTimeout(timer);
        cluster.record(endpoint, { kind: 'response', status: ures.statusCode ?? 0 });
        relay(ctx, ures, upstream, release);
      });
      creq.on('error', (err: Error & { code?: string }) => {
        clearTimeout(timer);
        if (released || ctx.res.headersSent) {
          downstream.destroy();
          return;
        }
        const kind: ErrorKind = err.code?.startsWith('HPE_') ? 'UPSTREAM_PROTOCOL_ERROR' : 'UPSTREAM_RESET';
        fail(kind, err.message);
      });
      creq.end();
    },
    (err: Error) => {
      clearTimeout(timer);
      if (!released) fail('UPSTREAM_CONNECT_FAILURE', err.message);
    },
  );
}

/** `HTTP/1.1 101 Switching Protocols` and the upstream's header fields, as received. */
function responseHead(ures: IncomingMessage): string {
  let head = `HTTP/1.1 ${ures.statusCode} ${ures.statusMessage || STATUS_CODES[ures.statusCode ?? 101]}\r\n`;
  const raw = ures.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/** Relays a non-101 response on the still-HTTP connection, then closes it. */
function relay(ctx: RequestContext, ures: IncomingMessage, upstream: Socket, release: () => void): void {
  // An upgrade request only arrives over HTTP/1.1 (listener.ts 'upgrade'): a node:http response.
  const res = ctx.res as unknown as ServerResponse;
  const listed = new Set(tokens(ures.headers.connection));
  const fields: string[] = [];
  const raw = ures.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (HOP_BY_HOP.has(name) || listed.has(name)) continue;
    fields.push(raw[i] as string, raw[i + 1] as string);
  }
  ctx.status = ures.statusCode ?? 502;
  res.writeHead(ctx.status, ures.statusMessage, fields);
  ures.pipe(res);
  const done = (): void => {
    upstream.destroy();
    release();
    completeRequest(ctx);
  };
  res.once('finish', done);
  res.once('close', done);
}
