/**
 * Per-request state shared by the pipeline, the forwarder and telemetry. One object per
 * downstream request, with a fixed shape; telemetry reads it once the response is done.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TrafficDirection } from '../config/types.ts';
import type { ErrorKind } from '../errors.ts';
import type { HeaderMap, RouteRequest } from '../router/types.ts';

/** What a request knows about the listener it arrived on. */
export interface ListenerInfo {
  readonly name: string;
  readonly direction: TrafficDirection;
  readonly port: number;
  readonly xffNumTrustedHops: number;
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

  constructor(req: IncomingMessage, res: ServerResponse, listener: ListenerInfo, startMs: number) {
    this.req = req;
    this.res = res;
    this.listener = listener;
    this.startMs = startMs;
  }
}
