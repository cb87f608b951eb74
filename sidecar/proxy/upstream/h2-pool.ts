/**
 * HTTP/2 connection pool for one upstream endpoint (clusters with `protocol: HTTP2`): multiplexed
 * node:http2 client sessions, h2c with prior knowledge in plain text (RFC 9113 §3.3) or h2 over the
 * mTLS connector of upstream/tls.ts (ALPN `h2`, RFC 7301). It speaks undici's dispatcher contract
 * (`dispatch(options, handler)` with a `DispatchHandler`), so the forwarder, mirrors and health
 * checks use it exactly like an undici `Pool`.
 *
 * Invariants:
 * - a session carries at most the peer's SETTINGS_MAX_CONCURRENT_STREAMS streams (and at most
 *   `maxStreamsPerSession`); when every session is full another one is opened, up to
 *   `maxSessions` (the endpoint's connection share); beyond that requests wait in a FIFO queue;
 * - a session that received GOAWAY takes no new stream; streams it did not process (closed with
 *   REFUSED_STREAM, RFC 9113 §6.8 and §8.7) are sent again on another session when their body can
 *   be replayed (none, or a Buffer), like the HTTP/1.1 keep-alive race; otherwise they fail;
 * - a session idle (no stream) for `idleTimeoutMs` is closed gracefully; connect (TCP + TLS + the
 *   peer's SETTINGS) is bounded by `connectTimeoutMs` (`UND_ERR_CONNECT_TIMEOUT`);
 * - every dispatched request ends with exactly one of `onResponseEnd` or `onResponseError`
 *   (`controller.abort` included); errors carry `code`s the forwarder classifies: the TCP codes
 *   (ECONNREFUSED, ...) and `WEFT_UPSTREAM_TLS` for connect failures, `WEFT_H2_STREAM_RESET` /
 *   `WEFT_H2_SESSION_CLOSED` for resets (502 UPSTREAM_RESET), `WEFT_H2_PROTOCOL` for a malformed
 *   response (502 UPSTREAM_PROTOCOL_ERROR);
 * - request trailers (RFC 9113 §8.1) are sent when the request body is a stream whose `trailers` are
 *   filled at its end (a downstream request); response trailers go to `onResponseEnd`;
 * - connection-specific fields (RFC 9113 §8.2.2) are never sent; `Host` becomes `:authority`.
 */
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  constants,
  connect as h2connect,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { type buildConnector, Dispatcher, errors } from 'undici';

const {
  NGHTTP2_CANCEL,
  NGHTTP2_REFUSED_STREAM,
  NGHTTP2_NO_ERROR,
  NGHTTP2_FLAG_END_STREAM,
  NGHTTP2_PROTOCOL_ERROR,
  HTTP2_HEADER_STATUS,
} = constants;

/** Fields never sent on an HTTP/2 request (RFC 9113 §8.2.2), plus `host` (sent as `:authority`). */
const NOT_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'host',
]);

/** node:http2 errors of a stream that never left this process (its session was closing). */
const NEVER_SENT = new Set([
  'ERR_HTTP2_GOAWAY_SESSION',
  'ERR_HTTP2_INVALID_SESSION',
  'ERR_HTTP2_OUT_OF_STREAMS',
]);

/** Times a request refused by the peer (GOAWAY, REFUSED_STREAM) is sent again. */
const MAX_REFUSED_RETRIES = 2;

export interface H2PoolOptions {
  /** `http://host:port` (h2c) or `https://host:port` (h2 over `connector`). */
  readonly origin: string;
  /** mTLS connector (upstream/tls.ts, `alpn: 'h2'`); absent: plain TCP, h2c prior knowledge. */
  readonly connector?: buildConnector.connector | undefined;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Sessions (connections) this pool may open; `Infinity`: unlimited. */
  readonly maxSessions: number;
  /** Our own cap on streams per session (besides the peer's setting). */
  readonly maxStreamsPerSession?: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE we advertise (bytes). */
  readonly initialStreamWindowBytes?: number;
  /** Connection flow-control window we advertise (bytes). */
  readonly initialConnectionWindowBytes?: number;
}

export const DEFAULT_H2_STREAMS_PER_SESSION = 100;
export const DEFAULT_UPSTREAM_STREAM_WINDOW_BYTES = 1 << 20;
export const DEFAULT_UPSTREAM_CONNECTION_WINDOW_BYTES = 1 << 24;

function hasFields(map: NodeJS.Dict<unknown>): boolean {
  for (const _ in map) return true;
  return false;
}

/** An error with the `code` the forwarder classifies. */
export class H2UpstreamError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'H2UpstreamError';
    this.code = code;
  }
}

/** The request as undici's `dispatch` gets it, plus the source of request trailers. */
type DispatchOptions = Dispatcher.DispatchOptions & {
  /** Read at the end of a streamed body: its `trailers` are sent as request trailers. */
  readonly trailersFrom?: { readonly trailers: NodeJS.Dict<string | string[]> } | undefined;
};

/** One client session and its stream count. */
class SessionEntry {
  readonly session: ClientHttp2Session;
  active = 0;
  ready = false;
  /** GOAWAY received or closing: no new streams. */
  closing = false;
  /** Made with a previous certificate (`renew`): used only until a fresh session is ready. */
  stale = false;
  idleTimer: NodeJS.Timeout | undefined;
  constructor(session: ClientHttp2Session) {
    this.session = session;
  }
  /** Streams this session may still open now. */
  capacity(cap: number): number {
    if (!this.ready || this.closing || this.session.closed || this.session.destroyed) return 0;
    const peer = this.session.remoteSettings.maxConcurrentStreams ?? cap;
    return Math.min(peer, cap) - this.active;
  }
}

/** One request on the pool: its handler, the controller undici's contract gives it, its stream. */
class H2Request implements Dispatcher.DispatchController {
  readonly opts: DispatchOptions;
  readonly handler: Dispatcher.DispatchHandler;
  readonly #pool: H2Pool;
  stream: ClientHttp2Stream | undefined;
  entry: SessionEntry | undefined;
  refusedRetries = 0;
  /** The stream failed before it was sent (its session was going away). */
  neverSent = false;
  /** A response head arrived (no more transparent retry). */
  responded = false;
  /** The response head came with END_STREAM (no body, no trailers: e.g. a gRPC Trailers-Only response). */
  headersEndStream = false;
  #trailers: IncomingHttpHeaders | undefined;
  /**
   * Body chunks read before the response head was delivered: node:http2 emits 'response' on the
   * next tick, while DATA frames that came in the same read are pushed (and emitted) at once.
   */
  #early: Buffer[] | undefined;
  /** The stream ended before the head was delivered. */
  #endedEarly = false;
  #done = false;
  #aborted = false;
  #paused = false;
  #reason: Error | null = null;

  constructor(pool: H2Pool, opts: DispatchOptions, handler: Dispatcher.DispatchHandler) {
    this.#pool = pool;
    this.opts = opts;
    this.handler = handler;
  }

  get aborted(): boolean {
    return this.#aborted;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }
  get done(): boolean {
    return this.#done;
  }

  abort(reason: Error): void {
    if (this.#done) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#pool.dequeue(this);
    const stream = this.stream;
    if (stream !== undefined && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
    this.fail(reason);
  }

  pause(): void {
    this.#paused = true;
    this.stream?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.stream?.resume();
  }

  /** Starts the request on `entry`'s session. */
  start(entry: SessionEntry, scheme: string): void {
    const opts = this.opts;
    const headers: OutgoingHttpHeaders = {
      ':method': opts.method,
      ':path': opts.path,
      ':scheme': scheme,
    };
    const source = (opts.headers ?? {}) as Record<string, string | string[] | undefined>;
    for (const name in source) {
      const value = source[name];
      if (value === undefined) continue;
      const lower = name.toLowerCase();
      if (NOT_FORWARDED.has(lower)) {
        if (lower === 'host') headers[':authority'] = value;
        continue;
      }
      if (lower === 'te' && value !== 'trailers') continue;
      headers[lower] = value;
    }
    headers[':authority'] ??= this.#pool.authority;
    const body = opts.body as Buffer | Readable | string | null | undefined;
    const streamed =
      body !== null && body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body);
    // A streamed body's trailers are known at its end; a body in memory was read whole, so its
    // trailers are known now (sent only when there are some).
    const trailersFrom =
      streamed || (opts.trailersFrom !== undefined && hasFields(opts.trailersFrom.trailers))
        ? opts.trailersFrom
        : undefined;
    let stream: ClientHttp2Stream;
    try {
      stream = entry.session.request(headers, {
        endStream: body === null || body === undefined,
        waitForTrailers: trailersFrom !== undefined,
      });
    } catch (err) {
      // The session is going away (GOAWAY, closed): the request never left, send it elsewhere.
      entry.closing = true;
      if (!this.#pool.retryRefused(this)) {
        this.fail(new H2UpstreamError('WEFT_H2_SESSION_CLOSED', (err as Error).message, { cause: err }));
      }
      return;
    }
    this.stream = stream;
    this.entry = entry;
    entry.active++;
    stream.on('response', (h: IncomingHttpHeaders, flags: number) => this.#onResponse(h, flags));
    stream.on('trailers', (t: IncomingHttpHeaders) => {
      this.#trailers = t;
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.#done) return;
      if (this.responded) {
        this.handler.onResponseData?.(this, chunk);
        return;
      }
      this.#early ??= [];
      this.#early.push(chunk);
    });
    stream.once('end', () => this.#onEnd());
    stream.on('error', (err: Error & { code?: string }) => {
      // The 'close' handler reports it; a stream the session never sent (it was going away) is
      // as good as refused.
      if (NEVER_SENT.has(err.code ?? '')) this.neverSent = true;
    });
    stream.once('close', () => this.#onClose(stream));
    if (trailersFrom !== undefined) {
      stream.once('wantTrailers', () => {
        const t = trailersFrom.trailers;
        const out: OutgoingHttpHeaders = {};
        for (const name in t) if (!NOT_FORWARDED.has(name) && name !== 'te') out[name] = t[name];
        stream.sendTrailers(out);
      });
    }
    if (this.#paused) stream.pause();
    if (body === null || body === undefined) return;
    if (typeof body === 'string' || Buffer.isBuffer(body)) {
      stream.end(body);
      return;
    }
    body.pipe(stream);
    body.once('error', () => {
      if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
    });
  }

  #onResponse(h: IncomingHttpHeaders, flags: number): void {
    if (this.#done) return;
    const status = Number(h[HTTP2_HEADER_STATUS]);
    const headers: Record<string, string | string[]> = {};
    for (const name in h) {
      if (name.charCodeAt(0) === 58) continue; // pseudo-header
      const value = h[name];
      if (value !== undefined) headers[name] = value;
    }
    this.responded = true;
    this.headersEndStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    this.handler.onResponseStart?.(this, status, headers, '');
    const early = this.#early;
    if (early !== undefined) {
      this.#early = undefined;
      for (const chunk of early) if (!this.#done) this.handler.onResponseData?.(this, chunk);
    }
    if (this.#endedEarly) this.#onEnd();
  }

  #onEnd(): void {
    if (this.#done) return;
    if (!this.responded) {
      this.#endedEarly = true;
      return;
    }
    this.#done = true;
    this.handler.onResponseEnd?.(this, (this.#trailers ?? {}) as Record<string, string | string[]>);
  }

  #onClose(stream: ClientHttp2Stream): void {
    const entry = this.entry;
    if (entry !== undefined) this.#pool.streamClosed(entry);
    if (this.#done) return;
    const code = stream.rstCode ?? NGHTTP2_NO_ERROR;
    if (
      (code === NGHTTP2_REFUSED_STREAM || this.neverSent) &&
      !this.responded &&
      this.#pool.retryRefused(this)
    ) {
      return;
    }
    if (code === NGHTTP2_NO_ERROR && !this.responded) {
      // 'response' may still be on its way (node:http2 emits it on the next tick).
      setImmediate(() => this.#closedWithoutHead(entry));
      return;
    }
    if (this.responded && code === NGHTTP2_NO_ERROR) {
      // The stream closed cleanly but 'end' has not been seen (no body was read): end it now.
      this.#onEnd();
      return;
    }
    this.fail(
      new H2UpstreamError(
        code === NGHTTP2_PROTOCOL_ERROR
          ? 'WEFT_H2_PROTOCOL'
          : entry?.session.destroyed === true && code === NGHTTP2_NO_ERROR
            ? 'WEFT_H2_SESSION_CLOSED'
            : 'WEFT_H2_STREAM_RESET',
        `upstream HTTP/2 stream closed with error code ${code}`,
      ),
    );
  }

  #closedWithoutHead(entry: SessionEntry | undefined): void {
    if (this.#done || this.responded) return;
    this.fail(
      new H2UpstreamError(
        entry?.session.destroyed === true ? 'WEFT_H2_SESSION_CLOSED' : 'WEFT_H2_STREAM_RESET',
        'upstream HTTP/2 stream closed without a response',
      ),
    );
  }

  /** Ends the request with `err` (once). */
  fail(err: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.handler.onResponseError?.(this, err);
  }

  /** Forgets the stream (for a transparent retry on another session). */
  reset(): void {
    this.stream = undefined;
    this.entry = undefined;
    this.neverSent = false;
  }
}

/**
 * Multiplexed HTTP/2 sessions to one endpoint behind undici's dispatcher contract. See the module
 * header for the guarantees.
 */
export class H2Pool extends Dispatcher {
  readonly #options: H2PoolOptions;
  readonly #url: URL;
  readonly #scheme: string;
  readonly #streamCap: number;
  readonly #sessions: SessionEntry[] = [];
  /** Sessions being connected (not in `#sessions` yet). */
  #connecting = 0;
  readonly #queue: H2Request[] = [];
  #closed = false;
  #destroyed = false;
  #onClosed: (() => void) | undefined;

  constructor(options: H2PoolOptions) {
    super();
    this.#options = options;
    this.#url = new URL(options.origin);
    this.#scheme = this.#url.protocol === 'https:' ? 'https' : 'http';
    this.#streamCap = options.maxStreamsPerSession ?? 1000;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** `host:port` of the endpoint (`:authority` of requests without `Host`). */
  get authority(): string {
    return this.#url.host;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Open sessions (for tests and metrics). */
  get sessionCount(): number {
    return this.#sessions.length;
  }

  /** Sends a request (undici's `Dispatcher.dispatch` contract). Always returns true. */
  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const request = new H2Request(this, opts, handler);
    if (this.#closed) {
      request.fail(new errors.ClientClosedError());
      return true;
    }
    handler.onRequestStart?.(request, {});
    if (request.done) return true;
    this.#schedule(request);
    return true;
  }

  #schedule(request: H2Request): void {
    const entry = this.#pick();
    if (entry !== undefined) {
      this.#startOn(entry, request);
      return;
    }
    this.#queue.push(request);
    this.#maybeConnect();
  }

  #startOn(entry: SessionEntry, request: H2Request): void {
    if (entry.idleTimer !== undefined) {
      clearTimeout(entry.idleTimer);
      entry.idleTimer = undefined;
    }
    request.start(entry, this.#scheme);
  }

  /**
   * The ready session with the most free streams (ties: the oldest), or undefined; a stale session
   * (see `renew`) only when no fresh one has room.
   */
  #pick(): SessionEntry | undefined {
    let best: SessionEntry | undefined;
    let bestFree = 0;
    let stale: SessionEntry | undefined;
    for (const entry of this.#sessions) {
      const free = entry.capacity(this.#streamCap);
      if (free <= 0) continue;
      if (entry.stale) {
        stale ??= entry;
        continue;
      }
      if (free > bestFree) {
        best = entry;
        bestFree = free;
      }
    }
    return best ?? stale;
  }

  /**
   * After a certificate rotation: make before break. A new session is opened (with the current
   * certificate, read by the connector); the sessions open now serve requests until it is ready, and
   * are then closed gracefully (GOAWAY, streams in flight finish). Should the new connection fail,
   * they keep serving, so a peer whose own renewal is late does not turn a rotation into errors.
   */
  renew(): void {
    if (this.#closed) return;
    let any = false;
    for (const entry of this.#sessions) {
      if (!entry.closing) {
        entry.stale = true;
        any = true;
      }
    }
    if (any && this.#connecting === 0) {
      this.#connecting++;
      this.#openSession();
    }
  }

  /** A fresh session is ready: stale ones close gracefully. */
  #retireStale(): void {
    for (const entry of this.#sessions) {
      if (entry.stale && !entry.closing) {
        entry.closing = true;
        entry.session.close();
      }
    }
  }

  /** Opens a session when requests wait and no connecting session will take them. */
  #maybeConnect(): void {
    if (this.#queue.length === 0 || this.#destroyed) return;
    if (this.#connecting > 0) return;
    if (this.#sessions.length + this.#connecting >= this.#options.maxSessions) return;
    this.#connecting++;
    this.#openSession();
  }

  #openSession(): void {
    const { connector, connectTimeoutMs } = this.#options;
    const hostname = this.#url.hostname.startsWith('[')
      ? this.#url.hostname.slice(1, -1)
      : this.#url.hostname;
    const port = Number(this.#url.port);
    let settled = false;
    const timer = setTimeout(() => {
      fail(
        new errors.ConnectTimeoutError(`connect to ${this.#url.host} timed out after ${connectTimeoutMs} ms`),
      );
    }, connectTimeoutMs);
    let session: ClientHttp2Session | undefined;
    let socket: Socket | TLSSocket | undefined;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.#connecting--;
      session?.destroy();
      socket?.destroy();
      this.#connectFailed(err);
    };
    const withSocket = (s: Socket | TLSSocket): void => {
      socket = s;
      if (settled) {
        s.destroy();
        return;
      }
      const s2 = h2connect(this.#options.origin, {
        createConnection: () => s,
        settings: {
          enablePush: false,
          initialWindowSize: this.#options.initialStreamWindowBytes ?? DEFAULT_UPSTREAM_STREAM_WINDOW_BYTES,
        },
      });
      session = s2;
      const entry = new SessionEntry(s2);
      s2.on('error', () => {
        // 'close' follows; streams report their own errors
      });
      s2.once('remoteSettings', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#connecting--;
        try {
          s2.setLocalWindowSize(
            this.#options.initialConnectionWindowBytes ?? DEFAULT_UPSTREAM_CONNECTION_WINDOW_BYTES,
          );
        } catch {
          // the session is already going away; 'close' cleans up
        }
        entry.ready = true;
        this.#retireStale();
        this.#sessions.push(entry);
        this.#drainQueue();
        this.#armIdle(entry);
      });
      s2.on('goaway', () => {
        entry.closing = true;
        this.#maybeConnect();
      });
      s2.once('close', () => {
        if (!settled) {
          fail(new H2UpstreamError('WEFT_H2_SESSION_CLOSED', `HTTP/2 session to ${this.#url.host} closed`));
          return;
        }
        entry.closing = true;
        if (entry.idleTimer !== undefined) clearTimeout(entry.idleTimer);
        const i = this.#sessions.indexOf(entry);
        if (i !== -1) this.#sessions.splice(i, 1);
        this.#checkClosed();
        this.#maybeConnect();
      });
    };
    if (connector !== undefined) {
      connector(
        {
          hostname,
          host: this.#url.host,
          protocol: 'https:',
          port: this.#url.port,
          servername: null,
          localAddress: null,
          httpSocket: undefined,
        } as unknown as buildConnector.Options,
        (err, s) => {
          if (err !== null || s === null) fail(err ?? new Error('connect failed'));
          else withSocket(s as TLSSocket);
        },
      );
      return;
    }
    const s = netConnect({ host: hostname, port, noDelay: true });
    const onError = (err: Error): void => fail(err);
    s.once('error', onError);
    s.once('connect', () => {
      s.off('error', onError);
      withSocket(s);
    });
  }

  /** A connect failed: the waiting requests fail with its error unless another session can take them. */
  #connectFailed(err: Error): void {
    if (this.#sessions.some((e) => e.ready && !e.closing)) {
      this.#drainQueue();
      return;
    }
    const waiting = this.#queue.splice(0);
    for (const request of waiting) request.fail(err);
    this.#checkClosed();
  }

  #drainQueue(): void {
    while (this.#queue.length > 0) {
      const entry = this.#pick();
      if (entry === undefined) break;
      this.#startOn(entry, this.#queue.shift() as H2Request);
    }
    this.#maybeConnect();
  }

  #armIdle(entry: SessionEntry): void {
    if (entry.active > 0 || entry.idleTimer !== undefined) return;
    entry.idleTimer = setTimeout(() => {
      entry.idleTimer = undefined;
      if (entry.active === 0) {
        entry.closing = true;
        entry.session.close();
      }
    }, this.#options.idleTimeoutMs);
    entry.idleTimer.unref();
  }

  /** @internal A stream of `entry` closed. */
  streamClosed(entry: SessionEntry): void {
    entry.active--;
    if (this.#queue.length > 0) this.#drainQueue();
    if (entry.active === 0) {
      if (this.#closed) entry.session.close();
      else this.#armIdle(entry);
    }
  }

  /** @internal Removes a request still waiting for a session (aborted). */
  dequeue(request: H2Request): void {
    const i = this.#queue.indexOf(request);
    if (i !== -1) this.#queue.splice(i, 1);
  }

  /**
   * @internal A stream the peer refused (REFUSED_STREAM, or above a GOAWAY's last stream id): sends
   * it again when its body can be replayed. Returns false when it cannot (the caller fails it).
   */
  retryRefused(request: H2Request): boolean {
    const body = request.opts.body;
    const replayable =
      body === null || body === undefined || typeof body === 'string' || Buffer.isBuffer(body);
    // A closed pool still finishes what it admitted: the retry may open a session of its own.
    if (!replayable || request.refusedRetries >= MAX_REFUSED_RETRIES || this.#destroyed) return false;
    request.refusedRetries++;
    if (request.entry !== undefined) request.entry.closing = true;
    request.reset();
    this.#schedule(request);
    return true;
  }

  #checkClosed(): void {
    if (this.#closed && this.#sessions.length === 0 && this.#connecting === 0) this.#onClosed?.();
  }

  /**
   * Takes no new requests; queued ones and streams in flight finish, then sessions close (GOAWAY).
   * Resolves once every session closed.
   */
  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | undefined {
    const done = this.#close();
    if (callback === undefined) return done;
    void done.then(callback);
    return undefined;
  }

  #close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      for (const entry of this.#sessions) {
        if (entry.active === 0) entry.session.close();
      }
    }
    if (this.#sessions.length === 0 && this.#connecting === 0 && this.#queue.length === 0) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const prev = this.#onClosed;
      this.#onClosed = () => {
        prev?.();
        resolve();
      };
    });
  }

  /** Closes every session at once; requests in flight fail. */
  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | undefined {
    this.#destroy();
    const callback = typeof a === 'function' ? a : b;
    if (callback === undefined) return Promise.resolve();
    queueMicrotask(callback);
    return undefined;
  }

  #destroy(): void {
    this.#closed = true;
    this.#destroyed = true;
    for (const request of this.#queue.splice(0)) request.fail(new errors.ClientDestroyedError());
    for (const entry of this.#sessions) entry.session.destroy();
  }
}
