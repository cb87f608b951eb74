/**
 * The inbound side of opaque TCP: an mTLS connection that a peer sidecar opened to this proxy's
 * inbound listener with ALPN `weft-tcp` (handed over by DownstreamTls once the peer's SPIFFE ID
 * is verified) is piped to the local app at 127.0.0.1:<port>, `<port>` from the SNI
 * `<port>.tcp.weft.internal` (tcp/config.ts).
 *
 * Per connection, in order (each refusal closes the connection and is counted in
 * `weft_tcp_connections_closed_total{response_flags}`):
 * 1. the port must be one the listener's `inboundTcp.ports` lists — else flag NO_ROUTE;
 * 2. the listener's `rbac`, with Istio's TCP semantics (tcp/rbac.ts) — else RBAC_DENIED;
 * 3. a plain connection to 127.0.0.1:<port> — else UPSTREAM_CONNECT_FAILURE;
 * 4. the splice (tcp/splice.ts: half-close, idle timeout, errors close both).
 * No connection outlives the certificates it was made with: it is closed when the peer's or our
 * certificate expires, whichever is first.
 */
import type { TLSSocket } from 'node:tls';
import type { Listener } from '../config/types.ts';
import type { CompiledRbac } from '../filters/rbac.ts';
import type { TlsSource } from '../identity.ts';
import { TcpConnectionRecord } from '../telemetry/tcp.ts';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../upstream/pool.ts';
import { type InboundTcpSettings, inboundTcpSettings, portFromServerName } from './config.ts';
import { connectStream } from './connect.ts';
import { authorizeConnection, compileTcpRbac } from './rbac.ts';
import { Splice } from './splice.ts';

/** Longest timer Node can arm (ms). */
const MAX_TIMER_MS = 2_147_483_647;

function ignore(): void {}

/** One inbound listener's TCP handler for one config version (immutable; replaced on apply). */
export class InboundTcpHandler {
  readonly #listener: string;
  readonly #settings: InboundTcpSettings;
  readonly #rbac: CompiledRbac | undefined;
  readonly #tls: TlsSource;

  /**
   * @throws RbacConfigError for an invalid `rbac` (checked before, by the listener's HTTP filter).
   */
  constructor(listener: Listener, tls: TlsSource) {
    this.#listener = listener.name;
    this.#settings = inboundTcpSettings(listener.inboundTcp);
    this.#rbac = listener.rbac === undefined ? undefined : compileTcpRbac(listener.rbac);
    this.#tls = tls;
  }

  /** Takes an authenticated `weft-tcp` connection from `principal` (its SPIFFE ID). */
  readonly handle = (socket: TLSSocket, principal: string): void => {
    const record = new TcpConnectionRecord(this.#listener, 'destination');
    record.sourcePrincipal = principal;
    record.securityPolicy = 'mutual_tls';
    record.opened();
    socket.on('error', ignore);
    const port = portFromServerName(socket.servername);
    if (port === undefined || !this.#settings.ports.has(port)) {
      this.#refuse(socket, record, 'NO_ROUTE');
      return;
    }
    if (this.#rbac !== undefined && !authorizeConnection(this.#rbac, principal).allowed) {
      this.#refuse(socket, record, 'RBAC_DENIED');
      return;
    }
    const deadline = this.#deadlineTimer(socket);
    connectStream({
      origin: `http://127.0.0.1:${port}`,
      alpn: [],
      connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
    }).then(
      (app) => {
        if (socket.destroyed) {
          app.destroy();
          clearTimeout(deadline);
          record.closed();
          return;
        }
        socket.off('error', ignore);
        const splice = new Splice(socket, app, this.#settings.idleTimeoutMs, () => {
          clearTimeout(deadline);
          record.closed();
        });
        record.countFrom(splice);
      },
      () => {
        clearTimeout(deadline);
        this.#refuse(socket, record, 'UPSTREAM_CONNECT_FAILURE');
      },
    );
  };

  /** Destroys `socket` when the first of the two certificates expires. */
  #deadlineTimer(socket: TLSSocket): NodeJS.Timeout {
    const peerNotAfter = Date.parse(socket.getPeerX509Certificate()?.validTo ?? '');
    const ours = this.#tls.material?.expiresAtMs ?? Number.POSITIVE_INFINITY;
    const at = Math.min(Number.isNaN(peerNotAfter) ? ours : peerNotAfter, ours);
    const timer = setTimeout(() => socket.destroy(), Math.min(Math.max(at - Date.now(), 0), MAX_TIMER_MS));
    timer.unref();
    return timer;
  }

  #refuse(socket: TLSSocket, record: TcpConnectionRecord, flag: TcpConnectionRecord['flags']): void {
    record.flags = flag;
    socket.destroy();
    record.closed();
  }
}
