/**
 * Per-request state shared by the pipeline, the forwarder and telemetry. One object per
 * downstream request, with a fixed shape; telemetry reads it once the response is done.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TrafficDirection } from '../config/types.ts';
import type { ErrorKind } from '../errors.ts';
import type { HeaderMap, RouteRequest } from '../router/types.ts';
import { isGrpcContentType } from './grpc-status.ts';

/** What a request knows about the listener it arrived on. */
export interface ListenerInfo {
  readonly name: string;
  readonly direction: TrafficDirection;
  readonly port: number;
  readonly xffNumTrustedHops: number;
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
  clientAddress = '';
  /** The downstream peer's SPIFFE ID from its verified client certificate ('' when none). */
  sourcePrincipal = '';
  /** `mutual_tls` when the downstream connection was mTLS, else `none` (metrics label). */
  securityPolicy: 'mutual_tls' | 'none' = 'none';
  routeName = '';
  clusterName = '';
  upstreamHost = '';
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

  constructor(req: IncomingMessage, res: ServerResponse, listener: ListenerInfo, startMs: number) {
    this.req = req;
    this.res = res;
    this.listener = listener;
    this.startMs = startMs;
    this.grpc = isGrpcContentType(req.headers['content-type']);
  }
}
