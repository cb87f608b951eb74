/**
 * Per-request state shared by the pipeline, the forwarder and telemetry. One object per
 * downstream request, with a fixed shape; telemetry reads it once the response is done.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
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
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
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

  constructor(req: IncomingMessage, res: ServerResponse, listener: ListenerInfo, startMs: number) {
    this.req = req;
    this.res = res;
    this.listener = listener;
    this.startMs = startMs;
  }
}

/** Adds `tap` to the request's response observers (called in order at the response head). */
export function addResponseTap(ctx: RequestContext, tap: ResponseTap): void {
  if (ctx.responseTaps === undefined) ctx.responseTaps = [tap];
  else ctx.responseTaps.push(tap);
}
