/**
 * Per-request state shared by the pipeline, the forwarder and telemetry. One object per
 * downstream request, with a fixed shape; telemetry reads it once the response is done.
 *
 * The downstream request and response are node:http's `IncomingMessage`/`ServerResponse` for
 * HTTP/1.1 and node:http2's compatibility `Http2ServerRequest`/`Http2ServerResponse` for HTTP/2;
 * the pipeline sees them through `DownstreamRequest`/`DownstreamResponse`, the part both share.
 * For HTTP/2 the listener has copied `:authority` into `headers.host` (RFC 9113 §8.3.1) before the
 * pipeline runs, and `rawHeaders` still holds the pseudo-header fields (`:method`, ...), which
 * `upstreamRequestHeaders` drops.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { TrafficDirection } from '../config/types.ts';
import type { ErrorKind } from '../errors.ts';
import type { HeaderMap, RouteMatchResult, RouteRequest } from '../router/types.ts';
import type { UpgradeRequest } from './upgrade.ts';

/**
 * The authenticated client of a request, set by the edge auth filters (API key or JWT) and read
 * by the edge rate limits: `clientId` (API-key client, else the JWT `sub`), its `plan` ('' when
 * none), the JWT `sub` and verified claims ({} without a JWT).
 */
export interface Principal {
  readonly clientId: string;
  readonly plan: string;
  readonly sub: string;
  readonly claims: Readonly<Record<string, unknown>>;
}

/**
 * Observes the response the upstream exchange streams downstream (edge filters: response cache,
 * rate-limit headers). `head` may edit the headers before they are written; `end` comes only for
 * a response that ended whole (never after a failure).
 */
export interface ResponseTap {
  head(status: number, headers: HeaderMap): void;
  data?(chunk: Buffer): void;
  end?(): void;
}

import { isGrpcContentType } from './grpc-status.ts';

/** The downstream request: a readable body plus the request head (HTTP/1.1 or HTTP/2). */
export interface DownstreamRequest extends Readable {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  /** Field names and values as received, alternating (HTTP/2: pseudo-headers included). */
  readonly rawHeaders: string[];
  /** `'1.1'` or `'2.0'`. */
  readonly httpVersion: string;
  /** Trailer fields, filled once the body ended (empty when none). */
  readonly trailers: NodeJS.Dict<string | string[]>;
  readonly socket: Socket | TLSSocket;
}

/** The downstream response (node:http `ServerResponse` or node:http2 `Http2ServerResponse`). */
export interface DownstreamResponse {
  readonly headersSent: boolean;
  /** The status the head will carry when `end()` writes it (grpc-response.ts: Trailers-Only). */
  statusCode: number;
  /** Sets a field of a head not yet sent. */
  setHeader(name: string, value: string | number | readonly string[]): unknown;
  readonly writableFinished: boolean;
  writeHead(statusCode: number, headers?: OutgoingHttpHeaders): unknown;
  write(chunk: Buffer | string): boolean;
  end(): unknown;
  end(chunk: Uint8Array | string): unknown;
  /** HTTP/1.1 only (node:http): false closes the connection after this response. */
  shouldKeepAlive?: boolean;
  destroy(error?: Error): unknown;
  /** Trailer fields sent after the body (HTTP/1.1: only on a chunked response). */
  addTrailers(headers: OutgoingHttpHeaders): void;
  on(event: 'close' | 'drain' | 'finish', listener: () => void): unknown;
  once(event: 'close' | 'drain' | 'finish', listener: () => void): unknown;
  off(event: 'close' | 'drain' | 'finish', listener: () => void): unknown;
}

/** Downstream protocol of a request, as the `request_protocol` metric label says it. */
export type DownstreamProtocol = 'http/1.1' | 'http/2';

/** What a request knows about the listener it arrived on. */
export interface ListenerInfo {
  readonly name: string;
  readonly direction: TrafficDirection;
  readonly port: number;
  readonly xffNumTrustedHops: number;
  /** Longest request target, bytes (see request-checks.ts; default 8192). */
  readonly maxRequestUrlBytes?: number;
}

/** What telemetry reads of the upstream endpoint a request went to. */
export interface UpstreamPeer {
  readonly labels: Readonly<Record<string, string>>;
  /** SPIFFE ID the endpoint presents ('' or absent for plain text). */
  readonly identity?: string;
}

export class RequestContext {
  readonly req: DownstreamRequest;
  readonly res: DownstreamResponse;
  /**
   * The downstream connection (HTTP/2: its session's socket), kept because `req.socket` does not last:
   * undici sets it to null when it aborts an upstream request whose body is `req`.
   */
  readonly socket: Socket | TLSSocket;
  /** `http/2` for HTTP/2 downstream (h2c or h2), else `http/1.1`. */
  readonly protocol: DownstreamProtocol;
  readonly listener: ListenerInfo;
  /** `performance.now()` at arrival (ms). */
  readonly startMs: number;
  /** The routing view of the request; set once the target parsed. */
  routeRequest: RouteRequest | undefined = undefined;
  /** Headers to send upstream (hop-by-hop removed); filters and modifiers edit them. */
  upstreamHeaders: HeaderMap = {};
  requestId = '';
  traceId = '';
  /** This hop's span id and the caller's ('' when the trace started here); see trace.ts. */
  spanId = '';
  parentSpanId = '';
  /** The trace's sampled flag as forwarded (spans are exported only when true). */
  traceSampled = false;
  clientAddress = '';
  /** The downstream peer's SPIFFE ID from its verified client certificate ('' when none). */
  sourcePrincipal = '';
  /** `mutual_tls` when the downstream connection was mTLS, else `none` (metrics label). */
  securityPolicy: 'mutual_tls' | 'none' = 'none';
  routeName = '';
  clusterName = '';
  upstreamHost = '';
  /** The endpoint of the latest attempt (its labels and SPIFFE ID feed the destination metric labels). */
  upstreamEndpoint: UpstreamPeer | undefined = undefined;
  /** Response body bytes written downstream (by the forwarder or a local reply). */
  responseBytes = 0;
  /** Request body bytes when the forwarder buffered the body (-1: not counted; see telemetry/metrics.ts). */
  requestBytes = -1;
  /** Final status sent downstream (0 until the head is written). */
  status = 0;
  /** The request is gRPC (`content-type: application/grpc*`, grpc-status.ts). */
  readonly grpc: boolean;
  /**
   * The response's gRPC status (from its trailers, or its head when Trailers-Only, or the local
   * reply's); -1 when none was seen.
   */
  grpcStatus = -1;
  /** The error kind of a local reply or a broken exchange; '' when none. */
  flags: ErrorKind | '' = '';
  /** Attempts made upstream (a keep-alive race retry makes 2). */
  attempts = 0;
  durationMs = 0;
  /** The authenticated client (edge auth filters); undefined when none. */
  principal: Principal | undefined = undefined;
  /** The route match, when a filter needed it before routing (the router then reuses it). */
  routeMatch: RouteMatchResult | undefined = undefined;
  /** Response observers added by filters (forward.ts calls them); undefined when none. */
  responseTaps: ResponseTap[] | undefined = undefined;
  /** The upstream exchange once it started (forward.ts); `fail` ends it with an error kind. */
  exchange: { fail(kind: ErrorKind): void } | undefined = undefined;
  /** Set for a WebSocket upgrade request (upgrade.ts): the pipeline forwards it with `forwardUpgrade`. */
  upgrade: UpgradeRequest | undefined = undefined;
  /**
   * The downstream accepts response trailers: always over HTTP/2, over HTTP/1.1 when it sent
   * `TE: trailers` (RFC 9110 §10.1.4; then a response with trailers is sent chunked).
   */
  acceptsTrailers: boolean;

  constructor(req: DownstreamRequest, res: DownstreamResponse, listener: ListenerInfo, startMs: number) {
    this.req = req;
    this.res = res;
    this.socket = req.socket;
    const h2 = req.httpVersion === '2.0';
    this.protocol = h2 ? 'http/2' : 'http/1.1';
    const te = req.headers.te;
    this.acceptsTrailers = h2 || (te !== undefined && String(te).toLowerCase().includes('trailers'));
    this.listener = listener;
    this.startMs = startMs;
    this.grpc = isGrpcContentType(req.headers['content-type']);
  }
}

/** Adds `tap` to the request's response observers (called in order at the response head). */
export function addResponseTap(ctx: RequestContext, tap: ResponseTap): void {
  if (ctx.responseTaps === undefined) ctx.responseTaps = [tap];
  else ctx.responseTaps.push(tap);
}
