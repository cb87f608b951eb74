/**
 * A downstream HTTP/1.1 listener (node:http, llhttp in strict mode) feeding the pipeline.
 *
 * Limits are on by default (RFC 9110 §15.5.20 431 for oversized or too many header fields,
 * 408 when the header block is too slow, an idle keep-alive timeout, a connection cap).
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
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Listener } from '../config/types.ts';
import { ERROR_CATALOGUE, type ErrorKind } from '../errors.ts';
import { type OverloadLimits, overloadLimits, shedReason } from '../overload.ts';
import { type ListenerInfo, RequestContext } from './context.ts';
import { sendError } from './local-reply.ts';
import { handleRequest, type PipelineState } from './pipeline.ts';
import { DEFAULT_MAX_REQUEST_URL_BYTES } from './request-checks.ts';
import { DownstreamTls } from './tls.ts';

/** Defaults for `HttpConnectionLimits` (see proto/weft/v1/config.proto). */
export const LIMIT_DEFAULTS = {
  maxRequestHeadersBytes: 16384,
  maxRequestHeadersCount: 100,
  requestHeadersTimeoutMs: 10000,
  idleTimeoutMs: 60000,
  maxConnections: 10000,
  requestTimeoutMs: 0,
  maxRequestUrlBytes: DEFAULT_MAX_REQUEST_URL_BYTES,
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
function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
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
  readonly #overload: OverloadLimits;
  readonly #tls: DownstreamTls;
  #inflight = 0;
  /** In-flight responses, so that draining can mark those whose head is not out yet `Connection: close`. */
  readonly #responses = new Set<ServerResponse>();
  #draining = false;
  #drained: (() => void) | undefined;
  readonly #onResponseClose = (): void => {
    this.#inflight--;
    if (this.#draining && this.#inflight === 0) this.#drained?.();
  };

  constructor(config: Listener, state: PipelineState) {
    this.config = config;
    this.#state = state;
    const limits = { ...LIMIT_DEFAULTS, ...config.limits };
    this.#maxHeadersCount = limits.maxRequestHeadersCount;
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
        connectionsCheckingInterval: 1000,
        requireHostHeader: true,
        joinDuplicateHeaders: false,
      },
      (req, res) => this.#onRequest(req, res),
    );
    // One more than the limit so that "too many" is visible instead of silently truncated.
    this.#server.maxHeadersCount = limits.maxRequestHeadersCount + 1;
    this.#server.maxConnections = limits.maxConnections;
    this.#server.on('clientError', onClientError);
    const server = this.#server;
    const [serveHttp] = server.listeners('connection') as ((this: Server, socket: Duplex) => void)[];
    if (serveHttp === undefined) throw new Error('node:http server without its connection listener');
    server.removeListener('connection', serveHttp);
    this.#tls = new DownstreamTls({
      serve: (socket) => serveHttp.call(server, socket),
      handshakeTimeoutMs: limits.requestHeadersTimeoutMs,
    });
    this.#tls.configure(config.tls?.mode, config.tls?.maxConnectionAgeMs, config.drainTimeoutMs);
    server.on('connection', (socket: Socket) => this.#tls.accept(socket));
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
    if ((req.socket as TLSSocket).encrypted === true) this.#tls.onRequest(ctx, req.socket as TLSSocket);
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
    handleRequest(ctx, this.#state);
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
    this.#tls.destroyAll();
    await closed;
  }
}
