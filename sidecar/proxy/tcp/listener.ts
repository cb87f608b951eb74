/**
 * A TCP proxy listener (`Listener.tcpProxy`): the outbound side of opaque TCP, one per TCP
 * upstream bind (Consul-style `--upstream store-db:6379=16379`), or any static TCP proxy.
 *
 * Per accepted connection (`allowHalfOpen`, at most `maxConnections` at once; more are closed at
 * accept by node:net):
 * 1. the cluster admits it (`admitRequest`: a TCP connection counts as one request against the
 *    cluster's circuit breakers) — else closed, flag OVERFLOW;
 * 2. the cluster's balancer picks an endpoint (ejected, unhealthy and open-breaker endpoints skipped
 *    as for HTTP) — else closed, flag NO_HEALTHY_UPSTREAM / CIRCUIT_OPEN;
 * 3. a dedicated connection to the endpoint within the cluster's `connectionPool.connectTimeoutMs`
 *    (default 5 s; tcp/connect.ts): plain, or mTLS with the endpoint's
 *    expected SPIFFE ID, ALPN `weft-tcp` and SNI `<destinationPort>.tcp.weft.internal`; its outcome
 *    is recorded on the cluster (outlier detection, breakers). A failure closes the downstream
 *    socket (flag UPSTREAM_CONNECT_FAILURE); bytes the app sent meanwhile are dropped with it;
 * 4. the two sockets are spliced (tcp/splice.ts: half-close, idle timeout, errors close both).
 * Telemetry: a `TcpConnectionRecord` per connection (reporter `source`).
 *
 * Config pushes: `setConfig` takes a new `tcpProxy` for connections accepted from then on;
 * `close` stops accepting and gives open connections up to the drain period, then destroys them.
 */
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import type { Listener } from '../config/types.ts';
import type { TlsSource } from '../identity.ts';
import { TcpConnectionRecord } from '../telemetry/tcp.ts';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../upstream/pool.ts';
import type { UpstreamCluster, UpstreamEndpoint } from '../upstream/types.ts';
import { TCP_ALPN, type TcpProxySettings, tcpProxySettings, tcpServerName } from './config.ts';
import { connectStream } from './connect.ts';
import { Splice } from './splice.ts';

/** What a TCP listener reads from the proxy: the clusters in force and its certificate. */
export interface TcpProxyState {
  readonly clusters: { get(name: string): UpstreamCluster | undefined };
  readonly tls: TlsSource;
}

const DEFAULT_DRAIN_MS = 5000;
const PICK = { hashKey: undefined, random: Math.random };

function ignore(): void {}

export class TcpProxyListener {
  #config: Listener;
  #settings: TcpProxySettings;
  readonly #state: TcpProxyState;
  readonly #server: Server;
  /** Open downstream sockets (spliced or connecting). */
  readonly #sockets = new Set<Socket>();

  /** @throws Error when `config.tcpProxy` is absent. */
  constructor(config: Listener, state: TcpProxyState) {
    if (config.tcpProxy === undefined) throw new Error(`Listener ${config.name}: tcpProxy: required`);
    this.#config = config;
    this.#settings = tcpProxySettings(config.tcpProxy);
    this.#state = state;
    this.#server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (s) => this.#accept(s));
    this.#server.maxConnections = this.#settings.maxConnections;
  }

  get config(): Listener {
    return this.#config;
  }

  /** Connections open now. */
  get connections(): number {
    return this.#sockets.size;
  }

  /** Takes a new config for the same address and port (connections accepted from now on). */
  setConfig(config: Listener): void {
    if (config.tcpProxy === undefined) return;
    this.#config = config;
    this.#settings = tcpProxySettings(config.tcpProxy);
    this.#server.maxConnections = this.#settings.maxConnections;
  }

  /** Binds; resolves with the bound address (port 0 picks one). */
  async listen(): Promise<{ address: string; port: number }> {
    const { address = '127.0.0.1', port } = this.#config;
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: address, port }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const bound = this.#server.address() as AddressInfo;
    return { address: bound.address, port: bound.port };
  }

  #accept(socket: Socket): void {
    const settings = this.#settings;
    const record = new TcpConnectionRecord(this.#config.name, 'source');
    record.cluster = settings.cluster;
    record.opened();
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', ignore); // until spliced; a failed socket closes and is cleaned up below
    socket.once('close', () => this.#sockets.delete(socket));

    const cluster = this.#state.clusters.get(settings.cluster);
    if (cluster === undefined) {
      this.#refuse(socket, record, 'CLUSTER_NOT_FOUND');
      return;
    }
    if (cluster.admitRequest() !== undefined) {
      this.#refuse(socket, record, 'OVERFLOW');
      return;
    }
    const endpoint = cluster.pick(PICK);
    if (endpoint === undefined) {
      cluster.releaseRequest();
      this.#refuse(socket, record, cluster.lastPickFailure ?? 'NO_HEALTHY_UPSTREAM');
      return;
    }
    endpoint.activeRequests++;
    const done = (): void => {
      endpoint.activeRequests--;
      cluster.releaseRequest();
      record.closed();
    };
    this.#connect(socket, cluster, endpoint, settings, record, done);
  }

  #connect(
    socket: Socket,
    cluster: UpstreamCluster,
    endpoint: UpstreamEndpoint,
    settings: TcpProxySettings,
    record: TcpConnectionRecord,
    done: () => void,
  ): void {
    const identity = endpoint.identity ?? '';
    const mtls = identity !== '' ? { tls: this.#state.tls, expectedIdentity: identity } : undefined;
    connectStream({
      origin: endpoint.origin,
      mtls,
      alpn: [TCP_ALPN],
      servername: settings.destinationPort > 0 ? tcpServerName(settings.destinationPort) : undefined,
      connectTimeoutMs: cluster.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    }).then(
      (upstream) => {
        cluster.record(endpoint, { kind: 'response', status: 200 });
        if (socket.destroyed) {
          upstream.destroy();
          done();
          return;
        }
        record.destinationPrincipal = identity;
        record.securityPolicy = mtls === undefined ? 'none' : 'mutual_tls';
        socket.off('error', ignore);
        const splice = new Splice(socket, upstream, settings.idleTimeoutMs, done);
        record.countFrom(splice);
      },
      () => {
        cluster.record(endpoint, { kind: 'error', error: 'UPSTREAM_CONNECT_FAILURE' });
        record.flags = 'UPSTREAM_CONNECT_FAILURE';
        socket.destroy();
        done();
      },
    );
  }

  #refuse(socket: Socket, record: TcpConnectionRecord, flag: TcpConnectionRecord['flags']): void {
    record.flags = flag;
    socket.destroy();
    record.closed();
  }

  /**
   * Stops accepting; open connections get up to `drainMs` (default: the listener's drain period,
   * 5 s) to finish, then are destroyed. Resolves once the server closed.
   */
  async close(drainMs: number = this.#config.drainTimeoutMs ?? DEFAULT_DRAIN_MS): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    if (this.#sockets.size > 0) {
      const timer = setTimeout(() => {
        for (const s of this.#sockets) s.destroy();
      }, drainMs);
      await closed;
      clearTimeout(timer);
      return;
    }
    await closed;
  }
}
