/**
 * The request pipeline of one listener: check what the parser leaves to us (request-checks.ts),
 * read the target and normalize its path (the path routed, authorized and forwarded), prepare the upstream headers
 * (hop-by-hop removal, X-Forwarded-For, x-request-id, traceparent), run the filter chain,
 * then the router as the terminal step: a local answer (direct response, redirect, 404, 500
 * for an invalid backend) or an upstream exchange on the cluster (forward.ts: admission, endpoint
 * picks, attempts with the route's retry policy and deadlines). A route's fault
 * injection (fault.ts) runs right after the match; its request mirrors (mirror.ts) start beside
 * the upstream exchange.
 *
 * The route table and the cluster set are read through `PipelineState`, which the proxy swaps
 * as a whole when a new config version is applied; a request keeps the state it started with.
 */

import type { Http2ServerRequest } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { HttpFilter } from '../filters/filter.ts';
import type { TlsSource } from '../identity.ts';
import { requestId } from '../ids.ts';
import type { RouteMatchResult, RouteRequest, RouteTable } from '../router/types.ts';
import { requestCompleted } from '../telemetry/channels.ts';
import type { UpstreamCluster } from '../upstream/types.ts';
import type { RequestContext } from './context.ts';
import { injectFault } from './fault.ts';
import { UpstreamExchange } from './forward.ts';
import { applyForwardedFor, plainAddress, stripInternalFields, upstreamRequestHeaders } from './headers.ts';
import { sendError, sendReply } from './local-reply.ts';
import { mirrorRequest } from './mirror.ts';
import { normalizePath } from './normalize.ts';
import { DEFAULT_MAX_REQUEST_URL_BYTES, requestDefect } from './request-checks.ts';
import { parseTarget } from './target.ts';
import { propagateTrace } from './trace.ts';
import { forwardUpgrade } from './upgrade.ts';

/** What a request needs from the current config version. */
export interface PipelineState {
  readonly routeTable: RouteTable;
  readonly clusters: { get(name: string): UpstreamCluster | undefined };
  readonly filters: readonly HttpFilter[];
  /** The proxy's certificate source, for the dedicated connections of upgrades (upgrade.ts). */
  readonly tls?: TlsSource;
}

const NO_TLS: TlsSource = { material: undefined };

function hasRequestBody(ctx: RequestContext): boolean {
  // HTTP/2: a body unless the request HEADERS frame ended the stream (RFC 9113 §8.1).
  if (ctx.protocol === 'http/2') return !(ctx.req as Http2ServerRequest).stream.endAfterHeaders;
  const h = ctx.req.headers;
  if (h['transfer-encoding'] !== undefined) return true;
  const length = h['content-length'];
  return length !== undefined && length !== '0';
}

/** Handles one request with `state`; never throws (failures become local replies). */
export function handleRequest(ctx: RequestContext, state: PipelineState): void {
  const { req } = ctx;
  const defect = requestDefect(req, ctx.listener.maxRequestUrlBytes ?? DEFAULT_MAX_REQUEST_URL_BYTES);
  if (defect !== undefined) {
    ctx.res.shouldKeepAlive = false;
    sendError(ctx, defect.kind, defect.reason);
    return;
  }
  const target = parseTarget(req.url ?? '/', req.headers.host);
  if (target === undefined) {
    sendError(ctx, 'BAD_REQUEST', 'unsupported request target');
    return;
  }
  // Routes, filters and the upstream all see the normalized path (normalize.ts): what is matched
  // is what is forwarded.
  const routeRequest: RouteRequest = {
    host: target.host,
    path: normalizePath(target.path),
    query: target.query,
    method: req.method ?? 'GET',
    headers: req.headers,
  };
  ctx.routeRequest = routeRequest;

  const headers = upstreamRequestHeaders(req.rawHeaders, req.headers.connection);
  const direction = ctx.listener.direction;
  if (direction === 'GATEWAY' || (direction === 'INBOUND' && ctx.securityPolicy !== 'mutual_tls')) {
    stripInternalFields(headers);
  }
  headers.host = target.authority; // RFC 9112 §3.2.2: absolute-form authority wins over Host
  ctx.clientAddress = applyForwardedFor(
    headers,
    plainAddress(req.socket.remoteAddress),
    ctx.listener.xffNumTrustedHops,
  );
  const incomingId = headers['x-request-id'];
  if (typeof incomingId === 'string' && incomingId !== '') ctx.requestId = incomingId;
  else headers['x-request-id'] = ctx.requestId = requestId();
  const trace = propagateTrace(headers); // W3C traceparent and B3 (trace.ts)
  ctx.traceId = trace.traceId;
  ctx.spanId = trace.spanId;
  ctx.parentSpanId = trace.parentSpanId;
  ctx.traceSampled = trace.sampled;
  ctx.upstreamHeaders = headers;

  if (state.filters.length === 0) {
    route(ctx, state, routeRequest, target.port);
    return;
  }
  runFilters(ctx, state, 0).then(
    (proceed) => {
      // A request may have ended while a filter waited (e.g. answered by the stream idle timeout).
      if (proceed && !requestCompleted(ctx)) route(ctx, state, routeRequest, target.port);
    },
    (err: unknown) => sendError(ctx, 'BAD_REQUEST', String(err)),
  );
}

/** Runs filters from index `i`; resolves true when the request should be routed. */
async function runFilters(ctx: RequestContext, state: PipelineState, i: number): Promise<boolean> {
  for (; i < state.filters.length; i++) {
    const filter = state.filters[i] as HttpFilter;
    if (filter.onRequest === undefined) continue;
    const result = await filter.onRequest(ctx);
    if (result.kind === 'continue') continue;
    if (result.kind === 'respond') sendReply(ctx, result.status, result.body ?? '', result.headers);
    else sendError(ctx, result.error, result.detail);
    return false;
  }
  return true;
}

function route(ctx: RequestContext, state: PipelineState, rr: RouteRequest, port: number | undefined): void {
  const match = ctx.routeMatch ?? state.routeTable.match(rr); // a filter may have matched already
  if (match === undefined) {
    sendError(ctx, 'NO_ROUTE');
    return;
  }
  ctx.routeName = match.routeName;
  const fault = match.fault;
  if (fault !== undefined) {
    const resume = (): void => {
      if (!requestCompleted(ctx)) act(ctx, state, rr, port, match);
    };
    if (injectFault(ctx, fault, Math.random, resume)) return;
  }
  act(ctx, state, rr, port, match);
}

/** The matched route's action (after any injected delay): a local answer or the upstream exchange. */
function act(
  ctx: RequestContext,
  state: PipelineState,
  rr: RouteRequest,
  port: number | undefined,
  match: RouteMatchResult,
): void {
  const action = match.action;
  if (action.kind === 'direct') {
    sendReply(ctx, action.status, action.body, { 'content-type': action.contentType });
    return;
  }
  if (action.kind === 'redirect') {
    // The port the client addressed: an authority without one means the scheme's default
    // (RFC 9110 §4.2.1), i.e. the Service port in the mesh, never the sidecar's own listener port.
    // A gateway listener terminating TLS was reached over https; mesh hops present plain http.
    const scheme =
      ctx.listener.direction === 'GATEWAY' && (ctx.req.socket as TLSSocket).encrypted === true
        ? 'https'
        : 'http';
    const { status, location } = action.redirect(rr, scheme, port);
    sendReply(ctx, status, '', { location });
    return;
  }
  const backend = action.pickBackend(Math.random());
  ctx.clusterName = backend.cluster;
  if (backend.invalidReason !== undefined) {
    sendError(ctx, 'INVALID_BACKEND', backend.invalidReason);
    return;
  }
  const cluster = state.clusters.get(backend.cluster);
  if (cluster === undefined) {
    sendError(ctx, 'CLUSTER_NOT_FOUND', backend.cluster);
    return;
  }
  const headers = ctx.upstreamHeaders;
  let hashKey: string | undefined;
  if (cluster.hashHeader !== undefined) {
    const v = headers[cluster.hashHeader];
    hashKey = Array.isArray(v) ? v[0] : v;
  }

  match.requestHeaderModifier?.apply(headers);
  backend.requestHeaderModifier?.apply(headers);
  // The query is forwarded byte for byte: everything from the first '?' of the target.
  const url = ctx.req.url ?? '/';
  const q = url.indexOf('?');
  const rewrite = match.rewrite(rr);
  let path: string;
  if (rewrite !== undefined) {
    path = q === -1 ? rewrite.path : rewrite.path + url.slice(q);
    if (rewrite.host !== undefined) headers.host = rewrite.host;
  } else {
    path = q === -1 ? rr.path : rr.path + url.slice(q);
  }

  if (ctx.upgrade !== undefined) {
    const tls = state.tls ?? NO_TLS;
    forwardUpgrade(ctx, { cluster, hashKey, path, requestMs: match.timeouts.requestMs, tls });
    return;
  }
  if (match.mirrors.length > 0) {
    const source = { method: rr.method, path, headers, body: hasRequestBody(ctx) ? ctx.req : undefined };
    mirrorRequest(source, match.mirrors, state.clusters, Math.random, match.timeouts.requestMs);
  }
  // Admission, endpoint picks, attempts, retries and deadlines: forward.ts.
  new UpstreamExchange(ctx, {
    cluster,
    hashKey,
    path,
    hasBody: hasRequestBody(ctx),
    requestMs: match.timeouts.requestMs,
    backendRequestMs: match.timeouts.backendRequestMs,
    retry: match.retry,
    responseModifiers: [match.responseHeaderModifier, backend.responseHeaderModifier],
  }).start();
}
