/**
 * Local replies: answers the proxy writes itself (no route, upstream failures, filter
 * decisions). Every error reply carries its kind in `x-weft-error` and a one-line text body.
 * HEAD requests and 204/304 statuses get no body (RFC 9110 §9.3.2, §15.3.5, §15.4.5).
 *
 * A gRPC request (`ctx.grpc`: `content-type: application/grpc*`) gets its error as gRPC, as Envoy's
 * local replies do: HTTP 200 Trailers-Only with `grpc-status`, `grpc-message` and `x-weft-error`
 * (grpc-response.ts).
 */
import { constants, type Http2ServerRequest } from 'node:http2';
import { ERROR_CATALOGUE, type ErrorKind } from '../errors.ts';
import { completeRequest } from '../telemetry/channels.ts';
import type { RequestContext } from './context.ts';
import { sendGrpcError } from './grpc-response.ts';

/**
 * Cuts a response already under way, so the client cannot take it for complete: on HTTP/2 the stream
 * is reset with INTERNAL_ERROR (RFC 9113 §5.4.2, §7; NO_ERROR, what a bare destroy sends, would
 * read as "stop sending your request"), on HTTP/1.1 the connection is closed before the body's end.
 */
export function cutResponse(ctx: RequestContext): void {
  if (ctx.protocol === 'http/2') {
    const { stream } = ctx.req as unknown as Http2ServerRequest;
    if (!stream.destroyed && !stream.closed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  }
  ctx.res.destroy();
}

/** Sends `status` with `body` unless the head is already out; then the stream is cut. */
export function sendReply(
  ctx: RequestContext,
  status: number,
  body: string | Uint8Array,
  headers?: Readonly<Record<string, string | string[]>>,
): void {
  const { res } = ctx;
  ctx.status = status;
  if (res.headersSent) {
    cutResponse(ctx);
    completeRequest(ctx);
    return;
  }
  const noBody = ctx.req.method === 'HEAD' || status === 204 || status === 304;
  const out: Record<string, string | string[] | number> = { ...headers };
  if (!noBody || body.length > 0) {
    out['content-type'] ??= 'text/plain; charset=utf-8';
    out['content-length'] = Buffer.byteLength(body);
  }
  res.writeHead(status, out);
  if (noBody || body === '') res.end();
  else res.end(body);
  if (!noBody) ctx.responseBytes = Buffer.byteLength(body);
  completeRequest(ctx);
}

/**
 * Answers with the catalogue's status for `kind` (as a gRPC status to a gRPC request) and records
 * the kind as the response flag.
 */
export function sendError(ctx: RequestContext, kind: ErrorKind, detail?: string): void {
  ctx.flags = kind;
  const entry = ERROR_CATALOGUE[kind];
  if (ctx.grpc) {
    sendGrpcError(ctx, kind, entry.status, detail ? `${entry.message}: ${detail}` : entry.message);
    return;
  }
  const body = detail ? `${entry.message}: ${detail}\n` : `${entry.message}\n`;
  sendReply(ctx, entry.status, body, { 'x-weft-error': kind });
}
