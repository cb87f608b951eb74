/**
 * The proxy's own errors written to a gRPC client as gRPC statuses, Trailers-Only (gRPC over
 * HTTP/2, PROTOCOL-HTTP2.md: "Trailers-Only" is a single HEADERS frame with END_STREAM carrying
 * `:status`, `content-type` and `grpc-status`). A forwarded Trailers-Only response keeps that
 * shape too (forward.ts, `respondHeadOnly`).
 *
 * The head is set with `setHeader` and left to `end()`: on an HTTP/2 stream (Node's compatibility
 * API) a head first written by `end()` goes out as one HEADERS frame that ends the stream.
 * `writeHead` followed by `end()` would send HEADERS, then an empty DATA frame ending the stream,
 * with no trailers: gRPC clients (grpc-core) read that as status UNKNOWN ("Stream removed"), not
 * the status in the head. On HTTP/1.1 the head simply has `content-length: 0`.
 *
 * Invariants: a reply is written once; after a head went out an error can only cut the stream
 * (as Envoy resets it): the client then sees the transport's status (e.g. CANCELLED, INTERNAL).
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { ErrorKind } from '../errors.ts';
import { completeRequest } from '../telemetry/channels.ts';
import type { RequestContext } from './context.ts';
import { encodeGrpcMessage, grpcStatusForError } from './grpc-status.ts';

/** What a response writer needs: Node's `ServerResponse` or HTTP/2 compat `Http2ServerResponse`. */
interface HeadWriter {
  statusCode: number;
  readonly headersSent: boolean;
  setHeader(name: string, value: string | number | readonly string[]): unknown;
}

/** Sets a response head without sending it, so the response's `end()` (or first `write`) sends it. */
export function deferHead(res: HeadWriter, statusCode: number, headers: OutgoingHttpHeaders): void {
  res.statusCode = statusCode;
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value !== undefined) res.setHeader(name, value);
  }
}

/**
 * A mesh error of `kind` (answered to HTTP clients as `httpStatus`) as a gRPC Trailers-Only reply:
 * HTTP 200, `content-type: application/grpc`, `grpc-status` (`grpcStatusForError`), `grpc-message`
 * (`message`, percent-encoded) and `x-weft-error: <kind>`. Sets `ctx.status` (200) and
 * `ctx.grpcStatus`; when the head is already out, the stream is cut instead.
 */
export function sendGrpcError(
  ctx: RequestContext,
  kind: ErrorKind,
  httpStatus: number,
  message: string,
): void {
  const { res } = ctx;
  const code = grpcStatusForError(kind, httpStatus);
  ctx.grpcStatus = code;
  if (res.headersSent) {
    res.destroy();
    completeRequest(ctx);
    return;
  }
  ctx.status = 200;
  deferHead(res, 200, {
    'content-type': 'application/grpc',
    'grpc-status': String(code),
    'grpc-message': encodeGrpcMessage(message),
    'x-weft-error': kind,
  });
  res.end();
  completeRequest(ctx);
}
