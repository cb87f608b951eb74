/**
 * Per-request downstream timeouts of one HTTP listener, beside node's per-connection ones (the header
 * block's `requestHeadersTimeoutMs`, the keep-alive `idleTimeoutMs`). Slow clients (slowloris, slow or
 * stalled bodies, clients that stop reading) must not hold a request, and its upstream request, forever.
 *
 * Stream idle timeout (`HttpConnectionLimits.streamIdleTimeoutMs`, default 300 000 ms, Envoy's
 * `stream_idle_timeout`; 0 disables). A request in progress, from its head to the end of its response,
 * during which no byte moves either way for that long is ended as Envoy ends it:
 * - no response head sent yet: 408 `STREAM_IDLE_TIMEOUT` (RFC 9110 §15.5.9) in the usual error format,
 *   the upstream request (if one started) aborted, so the upstream never sees it complete; an HTTP/1.1
 *   connection is closed after the reply (the rest of the body is not read), an HTTP/2 stream is closed
 *   with RST_STREAM NO_ERROR once its response is out (RFC 9113 §8.1);
 * - response under way: the HTTP/2 stream is reset (RST_STREAM INTERNAL_ERROR), the HTTP/1.1
 *   connection closed.
 * What counts as a byte: HTTP/1.1, anything read from or written to the connection (it carries one
 * request at a time); HTTP/2, DATA received on the request's stream and response head and body bytes
 * handed to it, per stream (other streams of the connection are unaffected). So a stalled body, a client
 * that stops reading (the response is flow-controlled), and an upstream that does not answer all leave a
 * request idle. The last one is Envoy's semantics too: its stream idle timer runs while the router waits
 * for the upstream, so a request that waits longer than the stream idle timeout for its first response
 * byte gets 408, even within a longer route timeout (raise the listener's `streamIdleTimeoutMs`, or set
 * it to 0, for upstreams that think longer; a route timeout below it answers 504 first). Active
 * long-lived streams (gRPC streaming, a slow but steady download) are never cut. WebSocket and other
 * upgraded connections are not requests here (upgrade.ts hands them their own idle handling), nor are
 * TCP proxy connections (tcp/).
 *
 * Request timeout (`requestTimeoutMs`): the whole request must have been received within it, else 408
 * `DOWNSTREAM_REQUEST_TIMEOUT`, the upstream request aborted. HTTP/1.1: node's `requestTimeout` (from
 * the first byte of the request; node checks every `connectionsCheckingInterval`); the listener passes
 * its 'clientError' here (`requestTimedOut`) so the reply goes through the request's exchange. HTTP/2:
 * checked here per stream, from its HEADERS to its END_STREAM, except for gRPC requests (a streaming
 * call legitimately sends its request for as long as it lasts; the call's own `grpc-timeout` and the
 * stream idle timeout bound it, as Envoy advises against a request timeout for streaming APIs).
 * Default 0 (none), except on GATEWAY listeners: 300 000 ms (node's own default; the edge faces the
 * internet, while a sidecar carries long uploads from its local app). Node requires it to be 0 or at
 * least `requestHeadersTimeoutMs` (`checkStreamTimeouts`).
 *
 * Trickling: a client that sends one byte just before each idle period keeps a request active. The header
 * block is bounded as a whole by `requestHeadersTimeoutMs`; a body only by `requestTimeoutMs`.
 *
 * Cost: nothing runs per byte. One sweep per listener, on the shared coarse timer (timers.ts), compares
 * each request's byte counters with the previous sweep's, every eighth of the shortest timeout (at least
 * one tick): a timeout fires between its value and an eighth more (plus a tick), never early.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants, type Http2ServerRequest, type ServerHttp2Stream } from 'node:http2';
import type { Listener } from '../config/types.ts';
import type { ErrorKind } from '../errors.ts';
import { completeRequest } from '../telemetry/channels.ts';
import { armTimer, cancelTimer, TICK_MS, type TimerEntry } from '../timers.ts';
import type { DownstreamResponse, RequestContext } from './context.ts';
import { sendError } from './local-reply.ts';

/** Envoy's `stream_idle_timeout` default (ms). */
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000;
/** `requestTimeoutMs` of a GATEWAY listener that sets none (ms; node's own `requestTimeout` default). */
export const GATEWAY_REQUEST_TIMEOUT_MS = 300_000;

/** The two limits this module enforces (ms; 0: off). */
export interface StreamTimeoutLimits {
  readonly streamIdleTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

/** Limit defaults that depend on the listener's direction (over the common `LIMIT_DEFAULTS`). */
export function directionLimitDefaults(direction: Listener['direction']): { requestTimeoutMs?: number } {
  return direction === 'GATEWAY' ? { requestTimeoutMs: GATEWAY_REQUEST_TIMEOUT_MS } : {};
}

/**
 * Config problems of a listener's timeouts (`id`: "Listener <name>"): `requestTimeoutMs`, when set,
 * must be at least `requestHeadersTimeoutMs` (node:http refuses anything else).
 */
export function checkStreamTimeouts(l: Listener, id: string, defaultHeadersTimeoutMs: number): string[] {
  if (l.tcpProxy !== undefined) return [];
  const requestMs = l.limits?.requestTimeoutMs ?? directionLimitDefaults(l.direction).requestTimeoutMs ?? 0;
  const headersMs = l.limits?.requestHeadersTimeoutMs ?? defaultHeadersTimeoutMs;
  if (requestMs === 0 || headersMs === 0 || requestMs >= headersMs) return [];
  return [
    `${id}: limits.requestTimeoutMs: must be 0 (none) or at least requestHeadersTimeoutMs (${headersMs} ms), got ${requestMs}`,
  ];
}

/** One request being watched. */
class Watch {
  readonly ctx: RequestContext;
  /** HTTP/2: the request's stream; undefined for HTTP/1.1. */
  readonly stream: ServerHttp2Stream | undefined;
  /** HTTP/2: DATA bytes received on the stream. */
  received = 0;
  /** The byte counter at the last sweep that saw it move. */
  activity: number;
  /** When `activity` last moved (ms since epoch, at sweep precision). */
  activeAtMs: number;
  /** HTTP/2: when the whole request must have been received (ms since epoch); 0: no deadline. */
  readonly requestDeadlineMs: number;

  constructor(ctx: RequestContext, stream: ServerHttp2Stream | undefined, nowMs: number, requestMs: number) {
    this.ctx = ctx;
    this.stream = stream;
    this.activity = -1;
    this.activeAtMs = nowMs;
    // gRPC is exempt: a streaming call sends its request for as long as the call lasts.
    this.requestDeadlineMs = stream !== undefined && requestMs > 0 && !ctx.grpc ? nowMs + requestMs : 0;
    this.activity = this.bytes();
  }

  /** Bytes moved so far (a counter that only grows while the request is active). */
  bytes(): number {
    const { ctx } = this;
    if (this.stream === undefined) {
      const socket = ctx.socket;
      return socket.bytesRead + socket.bytesWritten;
    }
    return this.received + ctx.responseBytes + (ctx.res.headersSent ? 1 : 0);
  }

  /** HTTP/2: the client ended the request (END_STREAM), or the stream is gone. */
  requestReceived(): boolean {
    const stream = this.stream;
    if (stream === undefined || stream.endAfterHeaders || stream.destroyed) return true;
    return (stream.state.remoteClose ?? 1) !== 0;
  }
}

/** The stream idle and (HTTP/2) request timeouts of one listener's requests. */
export class StreamTimeouts implements TimerEntry {
  deadlineMs = 0;
  readonly #idleMs: number;
  readonly #requestMs: number;
  readonly #stepMs: number;
  readonly #watches = new Map<DownstreamResponse, Watch>();
  #armed = false;

  constructor(limits: StreamTimeoutLimits) {
    this.#idleMs = limits.streamIdleTimeoutMs;
    this.#requestMs = limits.requestTimeoutMs;
    const shortest = Math.min(this.#idleMs || Infinity, this.#requestMs || Infinity);
    this.#stepMs = Number.isFinite(shortest) ? Math.max(TICK_MS, Math.floor(shortest / 8)) : 0;
  }

  /** Requests watched now (for tests). */
  get size(): number {
    return this.#watches.size;
  }

  /** Watches `ctx` from now until its response closes. A no-op when both timeouts are off. */
  watch(ctx: RequestContext): void {
    if (this.#stepMs === 0) return;
    const stream = ctx.protocol === 'http/2' ? (ctx.req as unknown as Http2ServerRequest).stream : undefined;
    const w = new Watch(ctx, stream, Date.now(), this.#requestMs);
    if (stream !== undefined && this.#idleMs > 0) countReceived(stream, w);
    const { res } = ctx;
    this.#watches.set(res, w);
    res.once('close', () => this.#watches.delete(res));
    if (!this.#armed) {
      this.#armed = true;
      armTimer(this, this.#stepMs);
    }
  }

  /**
   * node:http's request timeout fired on a connection whose request `res` answers (its 'clientError'
   * ERR_HTTP_REQUEST_TIMEOUT with a response in flight): ends that request with 408
   * DOWNSTREAM_REQUEST_TIMEOUT. False when `res` is not a watched request still receiving its body
   * (the caller answers on the socket itself).
   */
  requestTimedOut(res: ServerResponse): boolean {
    const w = this.#watches.get(res);
    if (w === undefined || (w.ctx.req as IncomingMessage).complete) return false;
    this.#expire(w, 'DOWNSTREAM_REQUEST_TIMEOUT');
    return true;
  }

  /** @internal The sweep (timers.ts). */
  onTimeout(): void {
    const now = Date.now();
    const idleMs = this.#idleMs;
    for (const w of this.#watches.values()) {
      if (w.requestDeadlineMs !== 0 && now >= w.requestDeadlineMs && !w.requestReceived()) {
        this.#expire(w, 'DOWNSTREAM_REQUEST_TIMEOUT');
        continue;
      }
      if (idleMs === 0) continue;
      const bytes = w.bytes();
      if (bytes !== w.activity) {
        w.activity = bytes;
        w.activeAtMs = now;
      } else if (now - w.activeAtMs >= idleMs) {
        this.#expire(w, 'STREAM_IDLE_TIMEOUT');
      }
    }
    if (this.#watches.size > 0) armTimer(this, this.#stepMs);
    else this.#armed = false;
  }

  /** Stops the sweep (the listener closed). */
  close(): void {
    cancelTimer(this);
    this.#armed = false;
    this.#watches.clear();
  }

  /**
   * Ends `w`'s request with `kind`: through its upstream exchange when there is one (the attempt is
   * aborted; 408 when no response head went out, else the stream is cut), else with a local reply, or
   * by cutting a response already under way.
   */
  #expire(w: Watch, kind: ErrorKind): void {
    const { ctx } = w;
    const { res } = ctx;
    this.#watches.delete(res);
    const started = res.headersSent;
    const stream = w.stream;
    if (stream === undefined) res.shouldKeepAlive = false;
    else if (!started) closeAfterResponse(stream);
    // A response under way is cut with RST_STREAM INTERNAL_ERROR, as this side cuts a broken upstream
    // response (h2-server.ts does not count those against the client's resets).
    else if (!stream.destroyed && !stream.closed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    if (ctx.exchange !== undefined) ctx.exchange.fail(kind);
    else if (!started) sendError(ctx, kind);
    if (started) {
      if (ctx.flags === '') ctx.flags = kind;
      res.destroy();
      completeRequest(ctx);
    }
  }
}

/**
 * HTTP/2: counts the DATA bytes of `stream` into `w.received`. The listener joins the request's own
 * (node:http2's compatibility request starts reading its stream on its first read): listening
 * earlier would start the flow with no one to take the bytes (as mirror.ts does for the same reason).
 */
function countReceived(stream: ServerHttp2Stream, w: Watch): void {
  const onData = (chunk: Buffer): void => {
    w.received += chunk.length;
  };
  if (stream.listenerCount('data') > 0) {
    stream.on('data', onData);
    return;
  }
  const onNewListener = (event: string | symbol): void => {
    if (event !== 'data') return;
    stream.off('newListener', onNewListener);
    stream.on('data', onData);
  };
  stream.on('newListener', onNewListener);
}

/**
 * HTTP/2: once the local reply is out (the stream's writable side finished), closes a stream whose request is still open with RST_STREAM
 * NO_ERROR, asking the client to stop sending (RFC 9113 §8.1).
 */
function closeAfterResponse(stream: ServerHttp2Stream): void {
  stream.once('finish', () => {
    if (!stream.destroyed && !stream.closed) stream.close(constants.NGHTTP2_NO_ERROR);
  });
}
