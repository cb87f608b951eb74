/**
 * The HTTP/2 side of a downstream listener (RFC 9113): a node:http2 server that never listens itself;
 * the listener hands it connections that start with the h2c preface (detect.ts) or negotiated `h2` by
 * ALPN (tls.ts). Requests reach the pipeline through node:http2's compatibility API
 * (`Http2ServerRequest`/`Http2ServerResponse`), like HTTP/1.1 ones.
 *
 * Limits, on by default (`HttpConnectionLimits` fields 7-12, and the header limits shared with
 * HTTP/1.1):
 * - SETTINGS_MAX_CONCURRENT_STREAMS (100): streams above it are refused by nghttp2 (REFUSED_STREAM);
 * - SETTINGS_MAX_HEADER_LIST_SIZE = `maxRequestHeadersBytes`: a larger header block resets its stream
 *   (node:http2 enforces it once the client ACKed our SETTINGS, including header data spread over
 *   CONTINUATION frames; before that ACK the listener answers 431, h2-request-checks.ts; nghttp2
 *   ≥ 1.61 also caps the CONTINUATION frames per header block, CVE-2024-27316);
 * - flow control: SETTINGS_INITIAL_WINDOW_SIZE per stream and the connection window we advertise;
 * - rapid reset (CVE-2023-44487): streams reset (RST_STREAM, by the client; see `#onStreamAborted`
 *   for what is left out) before their response completed are counted per connection over
 *   `http2ResetWindowMs`, including streams reset in the same read as their HEADERS (node:http2
 *   emits those already closed; they never reach the pipeline); above `http2MaxResetsPerWindow`
 *   the connection is closed at once with GOAWAY ENHANCE_YOUR_CALM (RFC 9113 §7). nghttp2's own
 *   stream-reset rate limit (node `streamResetBurst` 1000, `streamResetRate` 33/s; it also counts
 *   RST_STREAM on closed streams, which JS never sees) stays on behind it, with INTERNAL_ERROR;
 * - invalid frames: `http2MaxInvalidFrames` before the session is closed (node `maxSessionInvalidFrames`),
 *   refused streams: node's `maxSessionRejectedStreams` (100);
 * - floods of PING/SETTINGS (ACKs queued unread, CVE-2019-9512/9515) and of more than 32 SETTINGS
 *   entries are nghttp2's and node's own limits; a session they end gets GOAWAY ENHANCE_YOUR_CALM,
 *   and one ended on nghttp2's protocol errors the code of the error, instead of node's
 *   INTERNAL_ERROR (h2-errors.ts);
 * - an idle session (no frame for `idleTimeoutMs`) is closed gracefully (GOAWAY; open streams finish);
 *   a client that ends its side of the TCP connection ends the session (the listener's sockets are
 *   half-open capable for node:http, which would keep it until the idle timeout).
 * Only the offending connection is closed; others on the listener are unaffected. What each kind of
 * bad input gets is the HTTP/2 corpus (test/corpus/http2.jsonl, docs/reliability.md).
 */
import {
  constants,
  createServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { goawayCodeOf } from './h2-errors.ts';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR } = constants;

/** Defaults of the HTTP/2 fields of `HttpConnectionLimits`. */
export const HTTP2_LIMIT_DEFAULTS = {
  http2MaxConcurrentStreams: 100,
  http2InitialStreamWindowBytes: 262_144,
  http2InitialConnectionWindowBytes: 1_048_576,
  http2MaxResetsPerWindow: 200,
  http2ResetWindowMs: 10_000,
  http2MaxInvalidFrames: 100,
} as const;

export interface Http2Limits {
  readonly http2MaxConcurrentStreams: number;
  readonly http2InitialStreamWindowBytes: number;
  readonly http2InitialConnectionWindowBytes: number;
  readonly http2MaxResetsPerWindow: number;
  readonly http2ResetWindowMs: number;
  readonly http2MaxInvalidFrames: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE (bytes). */
  readonly maxRequestHeadersBytes: number;
  /** Header fields per request (pseudo-header fields not counted); the listener answers 431 above. */
  readonly maxRequestHeadersCount: number;
  /** Idle time before a session is closed gracefully (ms). */
  readonly idleTimeoutMs: number;
}

/** Per-session count of streams reset by the client before their response completed. */
class ResetCounter {
  count = 0;
  windowStartMs = 0;
}

const COUNTERS = new WeakMap<ServerHttp2Session, ResetCounter>();

/** The downstream HTTP/2 server of one listener. */
export class DownstreamH2 {
  readonly #server: Http2Server;
  readonly #limits: Http2Limits;
  readonly #sessions = new Set<ServerHttp2Session>();
  /** The raw socket of each session (`session.socket` is a proxy, not the socket itself). */
  readonly #sockets = new WeakMap<ServerHttp2Session, Socket | TLSSocket>();
  #handing: Socket | TLSSocket | undefined;
  /** Sessions closed for too many resets (for tests and metrics). */
  resetFloodsClosed = 0;
  readonly #onSession: ((session: ServerHttp2Session, socket: Socket | TLSSocket) => void) | undefined;

  constructor(
    limits: Http2Limits,
    onRequest: (req: Http2ServerRequest, res: Http2ServerResponse) => void,
    onSession?: (session: ServerHttp2Session, socket: Socket | TLSSocket) => void,
  ) {
    this.#limits = limits;
    this.#onSession = onSession;
    this.#server = createServer(
      {
        settings: {
          maxConcurrentStreams: limits.http2MaxConcurrentStreams,
          initialWindowSize: limits.http2InitialStreamWindowBytes,
          maxHeaderListSize: limits.maxRequestHeadersBytes,
          enablePush: false,
        },
        maxHeaderListPairs: limits.maxRequestHeadersCount + 16,
        maxSessionInvalidFrames: limits.http2MaxInvalidFrames,
        maxSessionRejectedStreams: 100,
      },
      (req, res) => {
        // A stream the client reset before node:http2 handed it over (its HEADERS and RST_STREAM
        // came in one read): nothing to answer, nothing to forward. Counted below.
        if (req.stream.closed || req.stream.destroyed) return;
        onRequest(req, res);
      },
    );
    this.#server.on('session', (session: ServerHttp2Session) => this.#setup(session));
  }

  /** Serves `socket` (h2c after its preface was detected, or TLS that negotiated `h2`). */
  serve(socket: Socket | TLSSocket): void {
    this.#handing = socket;
    try {
      this.#server.emit('connection', socket);
    } finally {
      this.#handing = undefined;
    }
  }

  /** The socket a session runs on (undefined once forgotten). */
  socketOf(session: Http2Session | undefined): Socket | TLSSocket | undefined {
    return session === undefined ? undefined : this.#sockets.get(session as ServerHttp2Session);
  }

  #setup(session: ServerHttp2Session): void {
    const socket = this.#handing;
    if (socket !== undefined) this.#sockets.set(session, socket);
    this.#sessions.add(session);
    COUNTERS.set(session, new ResetCounter());
    session.on('stream', (stream: ServerHttp2Stream) => {
      // a stream reset in the same read as its HEADERS is aborted before it is emitted
      if (stream.aborted) this.#onStreamAborted(session, stream);
      else stream.once('aborted', () => this.#onStreamAborted(session, stream));
    });
    session.once('close', () => this.#sessions.delete(session));
    session.on('error', () => {
      // the session closes; its streams report to their requests
    });
    // node:http2 ends a session on a protocol error or a flood with `destroy(error)`, i.e. GOAWAY
    // INTERNAL_ERROR; the GOAWAY says what the peer did instead (h2-errors.ts).
    const destroy = session.destroy.bind(session);
    session.destroy = (error?: Error, code?: number): void => destroy(error, code ?? goawayCodeOf(error));
    // The listener's sockets allow half-open connections (node:http needs that); HTTP/2 has no use
    // for them: when the client ends its side, the session goes as it would on a node:http2 server.
    socket?.once('end', () => session.destroy());
    session.setTimeout(this.#limits.idleTimeoutMs, () => session.close());
    try {
      session.setLocalWindowSize(this.#limits.http2InitialConnectionWindowBytes);
    } catch {
      // a session already going away
    }
    if (socket !== undefined) this.#onSession?.(session, socket);
  }

  /**
   * A stream of `session` was aborted: reset before its response completed. Not counted: streams
   * refused by this side (REFUSED_STREAM, e.g. above a GOAWAY), streams this side reset on an
   * internal error (INTERNAL_ERROR: an upstream broke mid-response), and anything once the
   * session is going away.
   */
  #onStreamAborted(session: ServerHttp2Session, stream: ServerHttp2Stream): void {
    if (session.closed || session.destroyed) return;
    const code = stream.rstCode;
    if (code === NGHTTP2_REFUSED_STREAM || code === NGHTTP2_INTERNAL_ERROR) return;
    this.#countReset(session);
  }

  /** A stream of `session` was reset by the client before its response completed. */
  #countReset(session: ServerHttp2Session): void {
    const counter = COUNTERS.get(session);
    if (counter === undefined || session.destroyed) return;
    const now = Date.now();
    if (now - counter.windowStartMs > this.#limits.http2ResetWindowMs) {
      counter.windowStartMs = now;
      counter.count = 0;
    }
    counter.count++;
    if (counter.count > this.#limits.http2MaxResetsPerWindow) {
      this.resetFloodsClosed++;
      session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
      session.destroy(undefined, NGHTTP2_ENHANCE_YOUR_CALM);
    }
  }

  /** Open sessions. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Graceful close of every session: GOAWAY, streams in flight finish. */
  closeAll(): void {
    for (const session of this.#sessions) session.close();
  }

  /** Destroys every session (after the drain period). */
  destroyAll(): void {
    for (const session of this.#sessions) session.destroy();
  }
}
