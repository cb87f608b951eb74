/**
 * Downstream mTLS for one listener: per accepted TCP connection, decides by the listener's mode
 * whether it speaks TLS, terminates TLS with the proxy's current certificate, authenticates the
 * peer's SPIFFE X.509-SVID and hands the decrypted stream to the listener's HTTP server.
 *
 * Modes (`Listener.tls.mode`, config.proto `TlsMode`):
 * - DISABLE (or absent): plain text; the socket goes straight to HTTP, nothing is peeked.
 * - STRICT: TLS only. The client must present a certificate that chains to the trust bundle
 *   (`requestCert`, `rejectUnauthorized`) and carries exactly one `spiffe://` URI SAN in our
 *   trust domain; otherwise the connection is closed and no HTTP byte is read.
 * - PERMISSIVE: the first byte decides (0x16 is a TLS handshake record, RFC 8446 §5.1): TLS is
 *   handled as in STRICT (mutual, so a TLS client without a mesh certificate is refused), anything
 *   else is plain HTTP. Both feed the same HTTP server and pipeline.
 * Until the proxy has an identity, TLS connections are closed at once (a plain-text connection in
 * PERMISSIVE still works): `apply` never waits for a certificate, the listener simply refuses mTLS.
 *
 * Connection lifetime: a TLS connection is retired at the earliest of `maxConnectionAgeMs` after
 * it was made (default 1 h), our certificate's expiry and the peer certificate's expiry, so none
 * outlives the certificates it was made with; a new certificate (`setMaterial` with a new
 * generation) retires every connection made with an older one. Retiring is graceful: responses
 * not yet started, and the response to any later request, carry `Connection: close` (the client
 * closes after it); a connection that stays idle is ended after the listener's drain period
 * (`drainTimeoutMs`, default 5 s), i.e. after a Weft client would have closed it itself (its pools
 * drop idle connections after 4 s), so the server's close does not race a client's next request
 * (the HTTP/1.1 keep-alive race, which a request with a body could not survive). New handshakes
 * use the new certificate at once (`setSecureContext`).
 *
 * ALPN: `h2` and `http/1.1` (RFC 7301; the server's order wins, so a client offering both gets h2);
 * the listener serves an `h2` connection with its HTTP/2 server, anything else with HTTP/1.1. An
 * HTTP/2 connection retires by GOAWAY (`session.close()`: streams in flight finish). TLS 1.3 only.
 * Spec: RFC 8446, RFC 5280 §6 (done by OpenSSL), SPIFFE X.509-SVID §4 (leaf checks).
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import type { TlsMode } from '../config/types.ts';
import { MIN_TLS_VERSION, publishHandshake, svidSpiffeId, type TlsMaterial } from '../identity.ts';
import type { RequestContext } from './context.ts';

export const DEFAULT_MAX_CONNECTION_AGE_MS = 3_600_000;
/** How long a retiring connection may stay idle before the server ends it (ms; `drainTimeoutMs`). */
export const DEFAULT_RETIRE_DRAIN_MS = 5000;
/** After ending a retired idle connection, destroy it if the peer has not closed by then (ms). */
const END_GRACE_MS = 2000;
/** RFC 8446 §5.1 ContentType handshake(22): the first byte of every TLS ClientHello. */
const TLS_HANDSHAKE_RECORD = 0x16;

/** The effective mode: proto3's unspecified value means DISABLE. */
export type DownstreamMode = 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export function downstreamMode(mode: TlsMode | undefined): DownstreamMode {
  return mode === 'STRICT' || mode === 'PERMISSIVE' ? mode : 'DISABLE';
}

/**
 * One authenticated downstream mTLS connection: the peer's SPIFFE ID and the bookkeeping that
 * retires the connection gracefully (requests in flight, responses not yet started).
 */
class MtlsConnection {
  readonly socket: TLSSocket;
  readonly principal: string;
  readonly generation: number;
  /** Requests on this connection whose response has not closed yet. */
  active = 0;
  retiring = false;
  readonly responses = new Set<ServerResponse>();
  /** The HTTP/2 session on this connection, if it negotiated h2. */
  h2Session: { close(): void } | undefined;
  /** Fires at the connection's deadline (max age, certificate expiry). */
  timer: NodeJS.Timeout | undefined;
  /** While retiring and idle: ends the connection unless a request arrives first. */
  #idleTimer: NodeJS.Timeout | undefined;
  #drainMs = DEFAULT_RETIRE_DRAIN_MS;
  /** `res.once('close')` listener, one per connection (EventEmitter passes the response as `this`). */
  readonly onResponseClose: (this: unknown) => void;

  constructor(socket: TLSSocket, principal: string, generation: number) {
    this.socket = socket;
    this.principal = principal;
    this.generation = generation;
    const conn = this;
    this.onResponseClose = function (this: unknown): void {
      conn.responses.delete(this as ServerResponse);
      conn.active--;
      if (conn.active === 0 && conn.retiring) conn.#endWhenIdle();
    };
  }

  /**
   * No keep-alive from now on: responses not yet started (and those of later requests) say
   * `Connection: close`; if the connection stays idle for `drainMs`, it is ended.
   */
  retire(drainMs: number, fresh = false): void {
    if (this.retiring) return;
    this.retiring = true;
    this.#drainMs = drainMs;
    const session = this.h2Session;
    if (session !== undefined) {
      // HTTP/2: GOAWAY (streams in flight finish). With a fresh certificate in place, at once;
      // at the connection's deadline, after the drain period, as an idle HTTP/1.1 connection:
      // while a late certificate renewal is pending, new handshakes would fail.
      if (fresh) session.close();
      else setTimeout(() => session.close(), drainMs).unref();
      return;
    }
    for (const res of this.responses) if (!res.headersSent) res.shouldKeepAlive = false;
    if (this.active === 0) this.#endWhenIdle();
  }

  #endWhenIdle(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      if (this.active === 0) this.end();
    }, this.#drainMs);
    this.#idleTimer.unref();
  }

  /** Ends the connection (TLS close_notify, then FIN); destroys it if the peer lingers. */
  end(): void {
    if (this.socket.destroyed) return;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), END_GRACE_MS).unref();
  }

  /** Stops the connection's timers (it closed). */
  stop(): void {
    clearTimeout(this.timer);
    clearTimeout(this.#idleTimer);
  }
}

export interface DownstreamTlsOptions {
  /** Where a plain-text or decrypted connection goes: the listener's HTTP server. */
  readonly serve: (socket: Socket | TLSSocket) => void;
  /** Limit for the TLS handshake and for the first byte in PERMISSIVE mode (ms). */
  readonly handshakeTimeoutMs: number;
}

/** The TLS side of one listener. See the module header for the guarantees. */
export class DownstreamTls {
  readonly #serve: (socket: Socket | TLSSocket) => void;
  readonly #firstByteTimeoutMs: number;
  readonly #server: TlsServer;
  #mode: DownstreamMode = 'DISABLE';
  #maxAgeMs = DEFAULT_MAX_CONNECTION_AGE_MS;
  #drainMs = DEFAULT_RETIRE_DRAIN_MS;
  #material: TlsMaterial | undefined;
  /** Raw TCP sockets accepted for TLS or peeking, until they close (destroyed by `close`). */
  readonly #raw = new Set<Socket>();
  readonly #connections = new Map<TLSSocket, MtlsConnection>();

  constructor(options: DownstreamTlsOptions) {
    this.#serve = options.serve;
    this.#firstByteTimeoutMs = options.handshakeTimeoutMs;
    this.#server = createTlsServer({
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2', 'http/1.1'],
      handshakeTimeout: options.handshakeTimeoutMs,
      minVersion: MIN_TLS_VERSION,
    });
    this.#server.on('secureConnection', (socket: TLSSocket) => this.#onSecure(socket));
    this.#server.on('tlsClientError', (err: Error & { code?: string }) =>
      publishHandshake('downstream', false, err.code ?? err.message),
    );
  }

  /** The mode for connections accepted from now on. */
  get mode(): DownstreamMode {
    return this.#mode;
  }

  /**
   * Sets the mode and max connection age (ms, 0/absent: 1 h) for connections accepted from now
   * on, and how long a retiring connection may stay idle (ms, 0/absent: 5 s).
   */
  configure(
    mode: TlsMode | undefined,
    maxConnectionAgeMs: number | undefined,
    retireDrainMs: number | undefined,
  ): void {
    this.#mode = downstreamMode(mode);
    this.#maxAgeMs = maxConnectionAgeMs || DEFAULT_MAX_CONNECTION_AGE_MS;
    this.#drainMs = retireDrainMs || DEFAULT_RETIRE_DRAIN_MS;
  }

  /**
   * Installs new material: new handshakes use it at once. When its certificate generation is newer
   * than a connection's, that connection is retired gracefully.
   */
  setMaterial(material: TlsMaterial): void {
    this.#server.setSecureContext({
      cert: material.certChainPem,
      key: material.keyPem,
      ca: [...material.caPem],
      minVersion: MIN_TLS_VERSION,
    });
    this.#material = material;
    for (const conn of this.#connections.values()) {
      if (conn.generation < material.generation) conn.retire(this.#drainMs, true);
    }
  }

  /** Takes a freshly accepted TCP connection (the listening server's 'connection'). */
  accept(socket: Socket): void {
    const mode = this.#mode;
    if (mode === 'DISABLE') {
      this.#serve(socket);
      return;
    }
    this.#raw.add(socket);
    socket.once('close', () => this.#raw.delete(socket));
    if (mode === 'STRICT') {
      this.#handshake(socket);
      return;
    }
    const giveUp = (): void => {
      socket.destroy();
    };
    socket.on('error', giveUp);
    socket.setTimeout(this.#firstByteTimeoutMs);
    socket.once('timeout', giveUp);
    socket.once('data', (chunk: Buffer) => {
      socket.setTimeout(0);
      socket.off('timeout', giveUp);
      socket.off('error', giveUp);
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] === TLS_HANDSHAKE_RECORD) {
        this.#handshake(socket);
      } else {
        this.#raw.delete(socket);
        this.#serve(socket);
      }
      process.nextTick(() => socket.resume());
    });
  }

  #handshake(socket: Socket): void {
    if (this.#material === undefined) {
      publishHandshake('downstream', false, 'this proxy has no workload certificate yet');
      socket.destroy();
      return;
    }
    this.#server.emit('connection', socket);
  }

  /** A completed handshake whose chain verified: check the SVID, then serve HTTP on it. */
  #onSecure(socket: TLSSocket): void {
    const material = this.#material;
    const cert = socket.getPeerX509Certificate();
    let principal: string;
    try {
      if (material === undefined || cert === undefined) throw new Error('no peer certificate');
      principal = svidSpiffeId(cert.subjectAltName, cert.ca, material.trustDomain);
    } catch (err) {
      publishHandshake('downstream', false, (err as Error).message);
      socket.destroy();
      return;
    }
    publishHandshake('downstream', true);
    const conn = new MtlsConnection(socket, principal, material.generation);
    this.#connections.set(socket, conn);
    const now = Date.now();
    const deadlineMs = Math.min(now + this.#maxAgeMs, material.expiresAtMs, Date.parse(cert.validTo));
    conn.timer = setTimeout(() => conn.retire(this.#drainMs), Math.max(deadlineMs - now, 0));
    conn.timer.unref();
    socket.once('close', () => {
      conn.stop();
      this.#connections.delete(socket);
    });
    this.#serve(socket);
  }

  /**
   * Per request on a TLS socket: sets the source principal and security policy on `ctx` and
   * counts the request on its connection (a retiring connection answers with `Connection: close`).
   * `h1` is the HTTP/1.1 response (undefined for HTTP/2, whose connection retires by GOAWAY).
   * Returns false when the socket is not an authenticated mTLS connection of this listener.
   */
  onRequest(ctx: RequestContext, socket: TLSSocket, h1: ServerResponse | undefined): boolean {
    const conn = this.#connections.get(socket);
    if (conn === undefined) return false;
    ctx.sourcePrincipal = conn.principal;
    ctx.securityPolicy = 'mutual_tls';
    conn.active++;
    if (h1 !== undefined) {
      if (conn.retiring) h1.shouldKeepAlive = false;
      else conn.responses.add(h1);
    }
    ctx.res.once('close', conn.onResponseClose);
    return true;
  }

  /**
   * An HTTP/2 session was set up on an mTLS socket of this listener: retiring the connection then
   * closes the session gracefully (GOAWAY; streams in flight finish).
   */
  attachH2(socket: TLSSocket, session: { close(): void }): void {
    const conn = this.#connections.get(socket);
    if (conn === undefined) return;
    conn.h2Session = session;
    if (conn.retiring) session.close();
  }

  /** Destroys every connection still in a handshake or peek, and every TLS connection. */
  destroyAll(): void {
    for (const conn of this.#connections.values()) conn.stop();
    for (const socket of this.#raw) socket.destroy();
  }
}
