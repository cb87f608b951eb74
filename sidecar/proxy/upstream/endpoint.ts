/**
 * `ManagedEndpoint`: the cluster manager's implementation of `UpstreamEndpoint`. One object per
 * endpoint for as long as the endpoint stays in its cluster with the same pool settings, so its pool
 * (and the keep-alive connections in it) and its `activeRequests` count survive config pushes.
 *
 * Lifecycle: live → retiring (removed from config) → closed. A retiring endpoint is never picked again;
 * its pool is closed gracefully (`pool.close()`, never `destroy()`) once `activeRequests` drops to 0,
 * and undici's `close()` itself lets requests already dispatched on the pool finish.
 *
 * An mTLS endpoint's pool is renewed when the proxy's certificate changes (`renewPool`): new requests
 * go to a fresh pool (new connections, new certificate) while the old pool closes gracefully — its
 * idle connections at once, busy ones after their requests finish. An HTTP/2 pool renews itself
 * (`H2Pool.renew`: a new session first, the old ones closed once it is ready).
 *
 * `connectionLimit` is the `connections` of the endpoint's pools (its share of the cluster's
 * `circuitBreakers.maxConnections`, fixed when the endpoint is made); the cluster sums it into the
 * connection capacity that tells active requests from pending ones.
 */
import type { buildConnector } from 'undici';
import { H2Pool } from './h2-pool.ts';
import type { EndpointHealth, ResolvedEndpoint } from './resolve.ts';
import type { EndpointPool, UpstreamEndpoint } from './types.ts';

export class ManagedEndpoint implements UpstreamEndpoint {
  readonly key: string;
  readonly origin: string;
  /** The SPIFFE ID the endpoint must present ('' for plain text). */
  readonly identity: string;
  /** The mTLS connector of the endpoint's pools (undefined for plain text). */
  readonly connector: buildConnector.connector | undefined;
  /**
   * Requests each of the endpoint's pools carries at once without queueing (`Infinity`: unlimited):
   * its connections, times the streams per connection for HTTP/2.
   */
  readonly connectionLimit: number;
  /** The endpoint speaks HTTP/2. */
  readonly http2: boolean;
  readonly #createPool: () => EndpointPool;
  #pool: EndpointPool;
  /** Pools replaced by `renewPool` that are still closing. */
  readonly #oldPools = new Set<Promise<void>>();
  #weight: number;
  #labels: Readonly<Record<string, string>>;
  #health: EndpointHealth;
  #active = 0;
  #retiring = false;
  #closing = false;
  readonly #closed = Promise.withResolvers<void>();

  /**
   * `createPool` makes a fresh pool for `resolved.origin` (called now, and again by `renewPool`); the
   * endpoint owns every pool it makes. `connector` is the pools' mTLS connector, if any;
   * `connectionLimit` the `connections` `createPool` gives each pool.
   */
  constructor(
    resolved: ResolvedEndpoint,
    createPool: () => EndpointPool,
    connector?: buildConnector.connector,
    connectionLimit = Number.POSITIVE_INFINITY,
    http2 = false,
  ) {
    this.http2 = http2;
    this.key = resolved.key;
    this.origin = resolved.origin;
    this.identity = resolved.identity;
    this.connector = connector;
    this.connectionLimit = connectionLimit;
    this.#createPool = createPool;
    this.#pool = createPool();
    this.#weight = resolved.weight;
    this.#labels = resolved.labels;
    this.#health = resolved.health;
  }

  /** The pool new requests are dispatched to. */
  get pool(): EndpointPool {
    return this.#pool;
  }

  /**
   * Switches new requests to a fresh pool and closes the previous one gracefully (idle connections
   * now, busy ones once their requests finish). A no-op once the endpoint is closing.
   */
  renewPool(): void {
    if (this.#closing) return;
    if (this.#pool instanceof H2Pool) {
      this.#pool.renew(); // make before break on the same pool (h2-pool.ts)
      return;
    }
    const old = this.#pool;
    this.#pool = this.#createPool();
    const closed = old.close().catch(() => undefined);
    this.#oldPools.add(closed);
    void closed.then(() => this.#oldPools.delete(closed));
  }

  get weight(): number {
    return this.#weight;
  }

  get labels(): Readonly<Record<string, string>> {
    return this.#labels;
  }

  /** Only HEALTHY endpoints are picked; DRAINING and UNHEALTHY keep their pool open. */
  get health(): EndpointHealth {
    return this.#health;
  }

  /** True once removed from the config; the pool closes when `activeRequests` reaches 0. */
  get retiring(): boolean {
    return this.#retiring;
  }

  get activeRequests(): number {
    return this.#active;
  }

  /** The forwarder increments this when it starts a request here and decrements it when done. */
  set activeRequests(value: number) {
    this.#active = value;
    if (value <= 0 && this.#retiring) this.#close();
  }

  /** Takes the weight, labels and health of a new config for the same key and pool settings. */
  apply(resolved: ResolvedEndpoint): void {
    this.#weight = resolved.weight;
    this.#labels = resolved.labels;
    this.#health = resolved.health;
  }

  /**
   * Marks the endpoint removed. Resolves once its pool has closed: immediately when nothing is in
   * flight, else after the last in-flight request decrements `activeRequests` to 0. Never rejects.
   */
  retire(): Promise<void> {
    this.#retiring = true;
    if (this.#active <= 0) this.#close();
    return this.#closed.promise;
  }

  /** Closes the pool gracefully now, whatever `activeRequests` says (shutdown). Never rejects. */
  close(): Promise<void> {
    this.#retiring = true;
    this.#close();
    return this.#closed.promise;
  }

  #close(): void {
    if (this.#closing) return;
    this.#closing = true;
    const pool = this.#pool;
    const done = pool.closed || pool.destroyed ? Promise.resolve() : pool.close();
    void Promise.allSettled([done, ...this.#oldPools]).then(() => this.#closed.resolve());
  }
}
