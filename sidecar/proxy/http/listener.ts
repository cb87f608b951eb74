/**
 * A downstream HTTP listener feeding the pipeline: HTTP/1.1 (node:http, llhttp in strict mode) and
 * HTTP/2 (node:http2, h2-server.ts) on the same port. A plain-text connection that starts with the
 * HTTP/2 preface goes to the HTTP/2 server (h2c with prior knowledge, detect.ts), a TLS connection
 * that negotiated `h2` by ALPN too; everything else is HTTP/1.1. For HTTP/2 requests `:authority`
 * is copied into `Host` (RFC 9113 §8.3.1) before routing, after the checks node:http2 leaves to us
 * (h2-request-checks.ts: header count and list size → 431, a `host` other than `:authority` → 400).
 *
 * Limits are on by default (RFC 9110 §15.5.20 431 for oversized or too many header fields,
 * 408 when the header block is too slow, an idle keep-alive timeout, a connection cap), and so is
 * the stream idle timeout (408 or a reset for a request with no byte either way for 5 minutes; the
 * whole-request timeout, off by default, is 5 minutes on GATEWAY listeners; stream-timeouts.ts).
 * `Expect: 100-continue` is answered by Node before the handler runs (RFC 9110 §10.1.1), and
 * the `Expect` field is not forwarded. The pipeline state is read per request from a holder
 * the proxy swaps atomically; draining stops accepting, closes idle connections, marks
 * responses `Connection: close` and waits for in-flight requests up to the drain period.
 *
 * The node:http server owns the listening socket, but its own 'connection' listener is taken off
 * and called by `DownstreamTls` (tls.ts): plain connections go straight to it, TLS ones after the
 * handshake and the SPIFFE check, so one server (limits, keep-alive, draining) serves both.
 */
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Listener } from '../config/types.ts';
import { ERROR_CATALOGUE, type ErrorKind } from '../errors.ts';
import { type OverloadLimits, overloadLimits, shedReason } from '../overload.ts';
import { type ListenerInfo, RequestContext } from './context.ts';
import { detectHttpVersion } from './detect.ts';
import { h2RequestDefect } from './h2-request-checks.ts';
import { DownstreamH2, HTTP2_LIMIT_DEFAULTS } from './h2-server.ts';
import { sendError } from './local-reply.ts';
import { handleRequest, type PipelineState } from './pipeline.ts';
import { DEFAULT_MAX_REQUEST_URL_BYTES } from './request-checks.ts';
import { TerminatingTls } from './server-tls.ts';
import { DEFAULT_STREAM_IDLE_TIMEOUT_MS, directionLimitDefaults, StreamTimeouts } from './stream-timeouts.ts';
import { DownstreamTls } from './tls.ts';
import { handleUpgrade } from './upgrade.ts';

/** Defaults for `HttpConnectionLimits` (see proto/weft/v1/config.proto). */
export const LIMIT_DEFAULTS = {
  maxRequestHeadersBytes: 16384,
  maxRequestHeadersCount: 100,
  requestHeadersTimeoutMs: 10000,
  idleTimeoutMs: 60000,
  maxConnections: 10000,
  requestTimeoutMs: 0,
  maxRequestUrlBytes: DEFAULT_MAX_REQUEST_URL_BYTES,
  streamIdleTimeoutMs: DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  ...HTTP2_LIMIT_DEFAULTS,
} as const;

export const DEFAULT_DRAIN_MS = 5000;

/** Node parser rejections (no request object exists yet) as error kinds; anything else is BAD_REQUEST. */
const CLIENT_ERROR_KINDS: Readonly<Record<string, ErrorKind>> = {
  HPE_HEADER_OVERFLOW: 'REQUEST_HEADERS_TOO_LARGE', // too many bytes, or more than maxHeadersCount fields
  ERR_HTTP_REQUEST_TIMEOUT: 'DOWNSTREAM_HEADERS_TIMEOUT',
};

/**
 * Answers a message Node's parser rejected like any other local error reply (the catalogue's status
 * and `x-weft-error`, instead of Node's bare default), then closes the connection. As Node's default
 * handler does, nothing is written when a response is already under way on the socket.
 */
function onClientError(err: NodeJS.ErrnoException, socket: Duplex, timeouts: StreamTimeouts): void {
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  // node's requestTimeout while a request's body is still arriving: that request answers 408.
  if (
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' &&
    inFlight !== undefined &&
    timeouts.requestTimedOut(inFlight)
  ) {
    return;
  }
  const kind = CLIENT_ERROR_KINDS[err.code ?? ''] ?? 'BAD_REQUEST';
  const { status, message } = ERROR_CATALOGUE[kind];
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nx-weft-error: ${kind}\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

/**
 * How often node:http checks its header and request timeouts (ms): every second, more often for
 * timeouts under four seconds (a quarter of the shortest, at least 100 ms), so they fire within a
 * quarter of their value.
 */
function checkingIntervalMs(headersTimeoutMs: number, requestTimeoutMs: number): number {
  const shortest = Math.min(headersTimeoutMs || 4000, requestTimeoutMs || 4000);
  return Math.max(100, Math.min(1000, Math.floor(shortest / 4)));
}

/** Bound address of a listener. */
export interface BoundAddress {
  readonly address: string;
  readonly port: number;
}

export class HttpListener {
  readonly config: Listener;
  #state: PipelineState;
  readonly #server: Server;
  readonly #info: {
    name: string;
    direction: Listener['direction'] & string;
    port: number;
    xffNumTrustedHops: number;
    maxRequestUrlBytes: number;
  };
  readonly #maxHeadersCount: number;
  readonly #maxHeadersBytes: number;
  readonly #overload: OverloadLimits;
  readonly #tls: DownstreamTls;
  /** TLS termination for clients outside the mesh (`serverTls`, server-tls.ts); off by default. */
  readonly #serverTls: TerminatingTls;
  readonly #h2: DownstreamH2;
  /** Stream idle timeout and request timeout of the requests in progress (stream-timeouts.ts). */
  readonly #timeouts: StreamTimeouts;
  #inflight = 0;
  /** In-flight responses, so that draining can mark those whose head is not out yet `Connection: close`. */
  readonly #responses = new Set<ServerResponse>();
  #draining = false;
  /** Connections taken over by an upgrade (WebSocket), until they close. */
  readonly #upgraded = new Set<Duplex>();
  #drained: (() => void) | undefined;
  readonly #onResponseClose = (): void => {
    this.#inflight--;
    if (this.#draining && this.#inflight === 0) this.#drained?.();
  };

  constructor(config: Listener, state: PipelineState) {
    this.config = config;
    this.#state = state;
    const limits = { ...LIMIT_DEFAULTS, ...directionLimitDefaults(config.direction), ...config.limits };
    this.#maxHeadersCount = limits.maxRequestHeadersCount;
    this.#maxHeadersBytes = limits.maxRequestHeadersBytes;
    this.#overload = overloadLimits(config.limits);
    this.#info = {
      name: config.name,
      direction: config.direction ?? 'TRAFFIC_DIRECTION_UNSPECIFIED',
      port: config.port,
      xffNumTrustedHops: config.xffNumTrustedHops ?? 0,
      maxRequestUrlBytes: limits.maxRequestUrlBytes,
    };
    this.#server = createServer(
      {
        maxHeaderSize: limits.maxRequestHeadersBytes,
        headersTimeout: limits.requestHeadersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.idleTimeoutMs,
        connectionsCheckingInterval: checkingIntervalMs(
          limits.requestHeadersTimeoutMs,
          limits.requestTimeoutMs,
        ),
        requireHostHeader: true,
        joinDuplicateHeaders: false,
      },
      (req, res) => this.#onRequest(req, res),
    );
    // One more than the limit so that "too many" is visible instead of silently truncated.
    this.#server.maxHeadersCount = limits.maxRequestHeadersCount + 1;
    this.#server.maxConnections = limits.maxConnections;
    this.#timeouts = new StreamTimeouts(limits);
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
      onClientError(err, socket, this.#timeouts),
    );
    const server = this.#server;
    const [serveHttp] = server.listeners('connection') as ((this: Server, socket: Duplex) => void)[];
    if (serveHttp === undefined) throw new Error('node:http server without its connection listener');
    server.removeListener('connection', serveHttp);
    const h2 = new DownstreamH2(
      limits,
      (req, res) => this.#onH2Request(req, res),
      (session, socket) => {
        if ((socket as TLSSocket).encrypted === true) this.#tls.attachH2(socket as TLSSocket, session);
      },
    );
    this.#h2 = h2;
    const headersTimeoutMs = limits.requestHeadersTimeoutMs;
    const serveDetected = (socket: Socket, http2: boolean): void => {
      if (http2) h2.serve(socket);
      else serveHttp.call(server, socket);
    };
    this.#tls = new DownstreamTls({
      serve: (socket) => {
        if ((socket as TLSSocket).encrypted === true) {
          if ((socket as TLSSocket).alpnProtocol === 'h2') h2.serve(socket);
          else serveHttp.call(server, socket);
          return;
        }
        detectHttpVersion(socket, headersTimeoutMs, serveDetected);
      },
      handshakeTimeoutMs: limits.requestHeadersTimeoutMs,
    });
    this.#tls.configure(config.tls?.mode, config.tls?.maxConnectionAgeMs, config.drainTimeoutMs);
    this.#serverTls = new TerminatingTls({
      serve: (socket) =>
        (socket as TLSSocket).alpnProtocol === 'h2' ? h2.serve(socket) : serveHttp.call(server, socket),
      handshakeTimeoutMs: limits.requestHeadersTimeoutMs,
    });
    server.on('connection', (socket: Socket) =>
      this.#serverTls.enabled ? this.#serverTls.accept(socket) : this.#tls.accept(socket),
    );
    // HTTP/1.1 Upgrade (WebSocket): upgrade.ts. Upgraded sockets leave node:http: `close` ends them.
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.#upgraded.add(socket);
      socket.once('close', () => this.#upgraded.delete(socket));
      handleUpgrade(req, socket, head, this.#info, this.#state, this.#tls);
    });
  }

  /** The listener's TLS termination side (`serverTls`; see server-tls.ts). */
  get serverTls(): TerminatingTls {
    return this.#serverTls;
  }

  /** The listener's TLS side: mode, certificate, authenticated connections (see tls.ts). */
  get tls(): DownstreamTls {
    return this.#tls;
  }

  /** The listener's view for request contexts (port is the bound one once listening). */
  get info(): ListenerInfo {
    return this.#info;
  }

  /** Swaps the routes, clusters and filters used by requests that arrive from now on. */
  setState(state: PipelineState): void {
    this.#state = state;
  }

  /** Binds the socket; resolves with the bound address (port 0 picks a free port). */
  async listen(): Promise<BoundAddress> {
    const { address = '127.0.0.1', port } = this.config;
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: address, port }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const bound = this.#server.address() as AddressInfo;
    this.#info.port = bound.port;
    return { address: bound.address, port: bound.port };
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.#inflight++;
    res.once('close', this.#onResponseClose);
    this.#responses.add(res);
    res.once('close', () => this.#responses.delete(res));
    const ctx = new RequestContext(req, res, this.#info, performance.now());
    if ((req.socket as TLSSocket).encrypted === true) this.#tls.onRequest(ctx, req.socket as TLSSocket, res);
    if (this.#draining) res.shouldKeepAlive = false;
    const shed = shedReason(this.#inflight, this.#overload);
    if (shed !== undefined) {
      sendError(ctx, 'OVERLOADED', shed);
      return;
    }
    if (req.rawHeaders.length > this.#maxHeadersCount * 2) {
      res.shouldKeepAlive = false;
      sendError(ctx, 'REQUEST_HEADERS_TOO_LARGE', `more than ${this.#maxHeadersCount} header fields`);
      return;
    }
    this.#timeouts.watch(ctx);
    handleRequest(ctx, this.#state);
  }

  #onH2Request(req: Http2ServerRequest, res: Http2ServerResponse): void {
    this.#inflight++;
    res.once('close', this.#onResponseClose);
    const headers = req.headers;
    const authority = headers[':authority'];
    if (authority !== undefined) headers.host = authority; // RFC 9113 §8.3.1: :authority wins
    const ctx = new RequestContext(req, res, this.#info, performance.now());
    const socket = this.#h2.socketOf(req.stream.session);
    if (socket !== undefined && (socket as TLSSocket).encrypted === true) {
      this.#tls.onRequest(ctx, socket as TLSSocket, undefined);
    }
    const shed = shedReason(this.#inflight, this.#overload);
    if (shed !== undefined) {
      sendError(ctx, 'OVERLOADED', shed);
      return;
    }
    const defect = h2RequestDefect(req, this.#maxHeadersCount, this.#maxHeadersBytes);
    if (defect !== undefined) {
      sendError(ctx, defect.kind, defect.reason);
      return;
    }
    this.#timeouts.watch(ctx);
    handleRequest(ctx, this.#state);
  }

  /** The listener's HTTP/2 server (sessions, limits). */
  get http2(): DownstreamH2 {
    return this.#h2;
  }

  /** Requests currently being handled. */
  get inflight(): number {
    return this.#inflight;
  }

  /**
   * Stops accepting, lets in-flight requests finish for up to `drainMs` (ms), then closes every
   * remaining connection. Resolves when the server is closed.
   */
  async close(drainMs: number = this.config.drainTimeoutMs ?? DEFAULT_DRAIN_MS): Promise<void> {
    this.#draining = true;
    for (const res of this.#responses) if (!res.headersSent) res.shouldKeepAlive = false;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    this.#h2.closeAll();
    if (this.#inflight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainMs);
        this.#drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.#server.closeAllConnections();
    for (const socket of this.#upgraded) socket.destroy();
    this.#h2.destroyAll();
    this.#tls.destroyAll();
    this.#serverTls.destroyAll();
    this.#timeouts.close();
    await closed;
  }
}
