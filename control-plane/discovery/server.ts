/**
 * `DiscoveryServer`: the control plane's end of the config stream — a grpc-js `Server` serving
 * `weft.v1.Discovery/Stream` (one `ProxyConnection` per stream), a `SnapshotCache` keyed by proxy
 * id, and the recomputation loop.
 *
 * - A snapshot goes out as `{version: ProxySnapshot.version (the store revision it was computed
 *   at), nonce: random UUID, the four config lists}`: at once on Hello, later only on change.
 * - `notify(revision)` says the mesh state changed (now at store `revision`; `snapshotFor`
 *   must already reflect it). Notifications are coalesced: the first one opens a window of
 *   `coalesceMs` (100 ms), and at its end every connected proxy's snapshot is recomputed once,
 *   at the newest revision notified. Only proxies whose config changed (stable hash) get a push.
 * - One stream per proxy id: a newer stream with the same id closes the older one (ABORTED).
 * - `stop()` ends every stream (UNAVAILABLE), which revokes their leases, so the proxies'
 *   endpoints and status records disappear until they reconnect (to this or another replica).
 * - Transport credentials are a parameter (plain text by default; mTLS comes later).
 * - Reconnect grace (`reconnectGraceMs`, default 10 s, the lease TTL): for that long after
 *   `start()`, a proxy whose Hello says it already runs a config gets no snapshot; at the end of
 *   the grace every connected proxy is recomputed and pushed. After a control-plane restart the
 *   store holds no endpoint registrations (their leases ended with the old process, or expired
 *   during a long outage) until each proxy reconnects (its backoff is at most 6 s), so an early
 *   push would remove healthy endpoints from the proxies that reconnected first (503
 *   NO_HEALTHY_UPSTREAM). Proxies without a config are served at once.
 */
import {
  Server,
  ServerCredentials,
  type ServiceDefinition,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import pino, { type Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Store } from '../store/types.ts';
import type { ProxyIdentity, ProxySnapshot } from '../translate/types.ts';
import { type ConnectionContext, ProxyConnection } from './connection.ts';
import { DiscoveryMetrics } from './metrics.ts';
import { type DiscoveryServerCall, discoveryService } from './proto.ts';
import { SnapshotCache } from './snapshot-cache.ts';
import type { ProxyStatus } from './status.ts';

export interface DiscoveryServerOptions {
  readonly store: Store;
  /** The proxy's config at the current mesh state; undefined when none can be computed yet. */
  readonly snapshotFor: (identity: ProxyIdentity) => ProxySnapshot | undefined;
  /** This control-plane replica's id, written into proxy status records. */
  readonly replicaId: string;
  /** TTL of each stream's lease, seconds (default 10). */
  readonly leaseTtlSeconds?: number;
  readonly logger?: Logger;
  /** Where the `weft_cp_*` discovery metrics are registered (default: a private Registry). */
  readonly registry?: Registry;
  /** Transport credentials (default: plain text). */
  readonly credentials?: ServerCredentials;
  /** See the header: how long after `start()` proxies that run a config are not pushed to (ms, default 10 000; 0: none). */
  readonly reconnectGraceMs?: number;
  /** Coalescing window of `notify`, milliseconds (default 100). */
  readonly coalesceMs?: number;
  /** More gRPC services served on the same port and credentials (e.g. `weft.v1.Identity`). */
  readonly extraServices?: readonly {
    readonly definition: ServiceDefinition;
    readonly implementation: UntypedServiceImplementation;
  }[];
}

/** How long `stop` lets the transport shut down gracefully before forcing it, milliseconds. */
const SHUTDOWN_GRACE_MS = 2000;

export class DiscoveryServer {
  readonly #server: Server;
  readonly #credentials: ServerCredentials;
  readonly #cache = new SnapshotCache();
  readonly #connections = new Map<string, ProxyConnection>();
  readonly #streams = new Set<ProxyConnection>();
  readonly #ctx: ConnectionContext;
  readonly #coalesceMs: number;
  readonly #log: Logger;
  #pendingRevision = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #reconnectGraceMs: number;
  #graceEndsAt = Number.POSITIVE_INFINITY;
  #graceTimer: NodeJS.Timeout | undefined;

  constructor(options: DiscoveryServerOptions) {
    this.#log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'discovery' });
    this.#credentials = options.credentials ?? ServerCredentials.createInsecure();
    this.#coalesceMs = options.coalesceMs ?? 100;
    this.#reconnectGraceMs = options.reconnectGraceMs ?? 10_000;
    this.#ctx = {
      store: options.store,
      cache: this.#cache,
      snapshotFor: options.snapshotFor,
      replicaId: options.replicaId,
      leaseTtlSeconds: options.leaseTtlSeconds ?? 10,
      inReconnectGrace: () => performance.now() < this.#graceEndsAt,
      log: this.#log,
      metrics: new DiscoveryMetrics(options.registry ?? new Registry()),
      attach: (conn) => this.#attach(conn),
      detach: (conn) => this.#detach(conn),
    };
    this.#server = new Server({
      // Ping idle proxies so that a vanished one ends its stream (and its lease) promptly.
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    });
    this.#server.addService(discoveryService(), {
      Stream: (call: DiscoveryServerCall) => this.#accept(call),
    });
    for (const extra of options.extraServices ?? [])
      this.#server.addService(extra.definition, extra.implementation);
  }

  /**
   * Binds `address:port` (port 0 picks a free one) and starts serving; resolves with the bound
   * port. Rejects with the bind error (e.g. EADDRINUSE).
   */
  start(address: string, port: number): Promise<number> {
    const host = address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(`${host}:${port}`, this.#credentials, (err, bound) => {
        if (err) reject(err);
        else {
          this.#startGrace();
          this.#log.info({ address, port: bound }, 'discovery server listening');
          resolve(bound);
        }
      });
    });
  }

  /**
   * Ends every stream (UNAVAILABLE; their leases are revoked) and shuts the transport down,
   * forcing it after a short grace period. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#graceTimer !== undefined) clearTimeout(this.#graceTimer);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await Promise.all(
      [...this.#streams].map((c) =>
        c.close('control plane shutting down', {
          code: status.UNAVAILABLE,
          details: 'control plane shutting down',
        }),
      ),
    );
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, SHUTDOWN_GRACE_MS);
      this.#server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    this.#log.info('discovery server stopped');
  }

  /**
   * The mesh state changed and is now at store `revision`. Within `coalesceMs` of the first
   * notification, every connected proxy's snapshot is recomputed once; changed ones are pushed.
   */
  notify(revision: number): void {
    if (this.#stopped) return;
    this.#pendingRevision = Math.max(this.#pendingRevision, revision);
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => this.#recompute(), this.#coalesceMs);
    this.#timer.unref();
  }

  /** The proxies connected to this replica, by proxy id. */
  status(): ProxyStatus[] {
    const out: ProxyStatus[] = [];
    for (const conn of this.#connections.values()) {
      const s = conn.status();
      if (s !== undefined) out.push(s);
    }
    return out.sort((a, b) => (a.proxyId < b.proxyId ? -1 : a.proxyId > b.proxyId ? 1 : 0));
  }

  #startGrace(): void {
    if (this.#reconnectGraceMs <= 0) {
      this.#graceEndsAt = 0;
      return;
    }
    this.#graceEndsAt = performance.now() + this.#reconnectGraceMs;
    this.#graceTimer = setTimeout(() => {
      this.#graceTimer = undefined;
      this.#graceEndsAt = 0;
      this.#log.info({ proxies: this.#connections.size }, 'reconnect grace over; pushing to every proxy');
      if (this.#timer === undefined) this.#recompute();
    }, this.#reconnectGraceMs);
    this.#graceTimer.unref();
  }

  #recompute(): void {
    this.#timer = undefined;
    const revision = this.#pendingRevision;
    this.#pendingRevision = 0;
    this.#log.debug({ revision, proxies: this.#connections.size }, 'recomputing snapshots');
    for (const conn of this.#connections.values()) conn.refresh(revision);
  }

  #accept(call: DiscoveryServerCall): void {
    if (this.#stopped) {
      call.emit(
        'error',
        Object.assign(new Error('control plane shutting down'), {
          code: status.UNAVAILABLE,
          details: 'control plane shutting down',
        }),
      );
      return;
    }
    const conn = new ProxyConnection(call, this.#ctx);
    this.#streams.add(conn);
    call.on('close', () => this.#streams.delete(conn));
  }

  async #attach(conn: ProxyConnection): Promise<void> {
    const proxyId = (conn.identity as ProxyIdentity).proxyId;
    for (;;) {
      const older = this.#connections.get(proxyId);
      if (older === undefined || older === conn) break;
      this.#log.info({ proxyId }, 'a newer stream replaces the older stream of this proxy');
      await older.close('superseded by a newer stream', {
        code: status.ABORTED,
        details: 'superseded by a newer stream from the same proxy id',
      });
    }
    if (conn.closed) return;
    this.#connections.set(proxyId, conn);
    this.#ctx.metrics.connected.set(this.#connections.size);
  }

  #detach(conn: ProxyConnection): void {
    this.#streams.delete(conn);
    const proxyId = conn.identity?.proxyId;
    if (proxyId === undefined || this.#connections.get(proxyId) !== conn) return;
    this.#connections.delete(proxyId);
    this.#cache.delete(proxyId);
    this.#ctx.metrics.connected.set(this.#connections.size);
  }
}
