/**
 * The cluster manager: every upstream cluster of the current config, each a set of endpoints with one
 * undici `Pool` apiece behind a load balancer, replaced as a whole by `update`.
 *
 * Invariants:
 * - `update` is all-or-nothing: the whole config is validated and every new pool is created before
 *   anything visible changes; a throwing `update` leaves the previous config in force.
 * - An endpoint that stays (same cluster, same `address:port`, same pool settings) keeps its object,
 *   its `Pool` (so keep-alive connections survive config pushes) and its `activeRequests`.
 * - Pools are only ever closed gracefully (`pool.close()`): a removed endpoint or cluster stops being
 *   picked at once and its pool closes after its in-flight requests finish. Nothing here calls `destroy()`.
 * - Only HEALTHY endpoints are picked. UNHEALTHY and DRAINING endpoints keep their pool open.
 *   Of those, ejected (outlier.ts), health-check-failing (health-check.ts) and open-breaker
 *   (breakers.ts) endpoints are skipped, with Envoy's panic threshold; see `ManagedCluster`.
 * - Resilience state (pool-limit counters, retry budget, breakers, ejections, health checks) belongs
 *   to the cluster object and is keyed by endpoint key, so it survives config pushes for the
 *   endpoints that stay (even when their pool is replaced); a removed endpoint's state, timers and
 *   breaker gauge go with it, and `close()` stops every timer.
 * - Connection shares: each endpoint's pool may open `max(1, ⌊circuitBreakers.maxConnections /
 *   endpoints⌋)` connections (capped by `connectionPool.maxConnectionsPerEndpoint`), computed when the
 *   endpoint (its pool) is made. A kept endpoint keeps its pool and its share when endpoints come and
 *   go — keep-alive connections are worth more than an exact split — so right after a scale-up the
 *   cluster may hold up to its old shares' sum; a change of `maxConnections` itself (or of the pool
 *   settings) makes every pool anew. Pending requests are counted against the shares actually in force.
 * - A cluster's `UpstreamCluster` object is stable across updates while the cluster exists; a removed
 *   cluster's object picks nothing.
 * - mTLS clusters (`tls.enabled`): each endpoint's pool connects with the connector of upstream/tls.ts,
 *   which reads the proxy's current certificate from the `tls` source per connection and requires the
 *   endpoint's own expected SPIFFE ID; an endpoint is kept across updates only with the same expected
 *   identity. `renewTlsPools` (after a certificate rotation) moves every mTLS endpoint to a fresh pool
 *   and closes the old one gracefully.
 */
import type { Cluster, ClusterLoadAssignment } from '../config/types.ts';
import type { TlsSource } from '../identity.ts';
import type { BreakerState } from '../telemetry/channels.ts';
import { type Balancer, type BalancerPolicy, createBalancer } from './balancer.ts';
import { BreakerSet, PoolLimits } from './breakers.ts';
import { RetryBudget, type RetryBudgetSnapshot } from './budget.ts';
import { ManagedEndpoint } from './endpoint.ts';
import { DEFAULT_H2_STREAMS_PER_SESSION } from './h2-pool.ts';
import { HealthCheckSet, type HealthCheckState } from './health-check.ts';
import { classifyOutcome, OutlierDetector } from './outlier.ts';
import { connectionLimit, createEndpointPool, poolOptions } from './pool.ts';
import { type EndpointHealth, type ResolvedCluster, resolveConfig } from './resolve.ts';
import { createMtlsConnector } from './tls.ts';
import type {
  AttemptOutcome,
  PickContext,
  PickFailure,
  RetryDenial,
  UpstreamCluster,
  UpstreamEndpoint,
} from './types.ts';

/** One endpoint in `ClusterManager.snapshot()`. */
export interface EndpointSnapshot {
  readonly key: string;
  readonly health: EndpointHealth;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly activeRequests: number;
  /** The SPIFFE ID the endpoint must present (mTLS clusters only). */
  readonly identity?: string;
  /** Outlier detection (clusters with `outlierDetection`): ISO end of the ejection, or null. */
  readonly ejectedUntil?: string | null;
  /** Outlier detection: the ejection count (multiplier of the base ejection time). */
  readonly ejections?: number;
  /** Error-rate breaker state (clusters with `circuitBreakers.errorThresholdPercent`). */
  readonly breaker?: BreakerState;
  /** Active health-check state (clusters with `healthCheck`). */
  readonly healthCheck?: HealthCheckState;
}

/** One cluster in `ClusterManager.snapshot()`. */
export interface ClusterSnapshot {
  readonly name: string;
  readonly lbPolicy: BalancerPolicy;
  readonly hashHeader: string | null;
  readonly endpoints: readonly EndpointSnapshot[];
  /** Pool-limit counters (clusters that configure `circuitBreakers`). */
  readonly circuitBreakers?: {
    readonly activeRequests: number;
    readonly pendingRequests: number;
    readonly activeRetries: number;
    /** Connections the routable endpoints' pools may open together (null: unlimited). */
    readonly connectionCapacity: number | null;
  };
  /** Retry budget window (clusters that configure `retryBudget`). */
  readonly retryBudget?: RetryBudgetSnapshot;
  /** Whether the panic threshold is in force (clusters with outlier detection or health checks). */
  readonly panic?: boolean;
}

/** Plain JSON-able state for `/config_dump`. */
export interface ClusterManagerSnapshot {
  readonly clusters: readonly ClusterSnapshot[];
  /** Removed endpoints whose pools are still waiting for in-flight requests. */
  readonly retiringEndpoints: number;
}

export interface ClusterManagerOptions {
  /**
   * Build-time randomness for balancers (ROUND_ROBIN start offset) and health-check jitter; default
   * `Math.random`.
   */
  readonly random?: () => number;
  /** The proxy's certificate for mTLS clusters; without it their connections fail (no identity). */
  readonly tls?: TlsSource;
}

const NO_TLS: TlsSource = { material: undefined };
/** Extra balancer picks a retry spends looking for an endpoint other than the one to avoid. */
const EXCLUDE_TRIES = 2;

/**
 * A cluster as the manager holds it: the balancer over the endpoints routable now, and the cluster's
 * resilience state (pool limits, retry budget, error-rate breakers, outlier detection, health checks).
 *
 * Routable endpoints, recomputed (`#refresh`) whenever any input changes — a config install, an
 * ejection or return, a health-check flip, a breaker state change or a half-open probe handed out:
 * 1. the config's HEALTHY endpoints (never DRAINING or UNHEALTHY ones);
 * 2. of those, the ones neither ejected nor failing active health checks — unless fewer than
 *    `panicThresholdPercent` % of step 1 remain, in which case all of step 1 (Envoy's panic mode);
 * 3. of those, the ones whose error-rate breaker lets a request through (CLOSED, or HALF_OPEN with its
 *    probe not yet handed out).
 * An empty step 2 makes `pick` fail with NO_HEALTHY_UPSTREAM, an empty step 3 with CIRCUIT_OPEN.
 * The balancer is rebuilt only when the routable list (objects, weights) or the policy changed, so a
 * config push that changes nothing else keeps its round-robin position. `pick` allocates nothing,
 * except when it hands out a half-open probe (a state change: the routable set is rebuilt).
 */
export class ManagedCluster implements UpstreamCluster {
  readonly name: string;
  readonly #random: () => number;
  #policy: BalancerPolicy;
  #balancer: Balancer;
  #routable: readonly ManagedEndpoint[] = [];
  #routableWeights: readonly number[] = [];
  #failure: PickFailure = 'NO_HEALTHY_UPSTREAM';
  #panic = false;
  #poolFingerprint = '';
  #hashHeader: string | undefined;
  #endpoints: readonly ManagedEndpoint[] = [];
  #resolved: ResolvedCluster | undefined;
  #installing = false;
  readonly #limits: PoolLimits;
  readonly #budget = new RetryBudget();
  readonly #breakers: BreakerSet;
  readonly #outlier: OutlierDetector;
  readonly #health: HealthCheckSet;
  readonly #onChange = (): void => {
    if (!this.#installing) this.#refresh();
  };
  #lastPickFailure: PickFailure | undefined;
  #lastRetryDenial: RetryDenial | undefined;

  constructor(name: string, policy: BalancerPolicy, random: () => number = Math.random) {
    this.name = name;
    this.#random = random;
    this.#policy = policy;
    this.#balancer = createBalancer(policy, []);
    this.#limits = new PoolLimits(name);
    this.#breakers = new BreakerSet(name, this.#onChange);
    this.#outlier = new OutlierDetector(name, this.#onChange);
    this.#health = new HealthCheckSet(name, this.#onChange, random);
  }

  pick(ctx: PickContext, exclude?: UpstreamEndpoint): UpstreamEndpoint | undefined {
    const balancer = this.#balancer;
    let endpoint = balancer.pick(ctx);
    if (endpoint === undefined) {
      this.#lastPickFailure = this.#failure;
      return undefined;
    }
    if (exclude !== undefined && endpoint.key === exclude.key && balancer.size > 1) {
      endpoint = this.#other(ctx, exclude.key, endpoint);
    }
    this.#breakers.picked(endpoint.key);
    return endpoint;
  }

  /** A routable endpoint other than `avoid`: a few more balancer picks, then the next one in order. */
  #other(ctx: PickContext, avoid: string, first: UpstreamEndpoint): UpstreamEndpoint {
    for (let i = 0; i < EXCLUDE_TRIES; i++) {
      const e = this.#balancer.pick(ctx);
      if (e !== undefined && e.key !== avoid) return e;
    }
    const list = this.#routable;
    for (let i = 0; i < list.length; i++) {
      if (list[i]?.key === avoid) return list[(i + 1) % list.length] ?? first;
    }
    return first;
  }

  admitRequest(): 'OVERFLOW' | undefined {
    if (this.#limits.admitRequest() !== undefined) return 'OVERFLOW';
    this.#budget.recordRequest();
    return undefined;
  }

  releaseRequest(): void {
    this.#limits.releaseRequest();
  }

  admitRetry(): boolean {
    if (!this.#limits.canRetry()) {
      this.#lastRetryDenial = 'OVERFLOW';
      return false;
    }
    if (!this.#budget.tryWithdraw()) {
      this.#lastRetryDenial = 'BUDGET_EXHAUSTED';
      return false;
    }
    this.#limits.retryStarted();
    return true;
  }

  releaseRetry(): void {
    this.#limits.releaseRetry();
  }

  /** Why the last `pick` that found nothing did so (see `UpstreamCluster`). */
  get lastPickFailure(): PickFailure | undefined {
    return this.#lastPickFailure;
  }

  /** Why the last refused `admitRetry` refused (see `UpstreamCluster`). */
  get lastRetryDenial(): RetryDenial | undefined {
    return this.#lastRetryDenial;
  }

  record(endpoint: UpstreamEndpoint, outcome: AttemptOutcome): void {
    const cls = classifyOutcome(outcome);
    this.#outlier.record(endpoint.key, cls);
    this.#breakers.record(endpoint.key, cls);
  }

  get hashHeader(): string | undefined {
    return this.#hashHeader;
  }

  get lbPolicy(): BalancerPolicy {
    return this.#policy;
  }

  /** Every endpoint of the cluster in config order, including ones not picked (UNHEALTHY, DRAINING). */
  get endpoints(): readonly ManagedEndpoint[] {
    return this.#endpoints;
  }

  /** @internal Pool settings fingerprint of the installed config; endpoints are reusable only if equal. */
  get poolFingerprint(): string {
    return this.#poolFingerprint;
  }

  /** @internal Swaps in a new config and endpoint set; resilience state of kept endpoints carries over. */
  install(rc: ResolvedCluster, endpoints: readonly ManagedEndpoint[]): void {
    this.#installing = true;
    try {
      this.#resolved = rc;
      this.#policy = rc.lbPolicy;
      this.#poolFingerprint = rc.poolFingerprint;
      this.#hashHeader = rc.hashHeader;
      this.#endpoints = endpoints;
      const keys = endpoints.map((e) => e.key);
      this.#limits.configure(rc.circuitBreakers);
      this.#budget.configure(rc.retryBudget);
      this.#breakers.sync(rc.circuitBreakers, keys);
      this.#outlier.sync(rc.outlierDetection, keys);
      this.#health.sync(rc.healthCheck, endpoints);
    } finally {
      this.#installing = false;
    }
    this.#refresh();
  }

  /** @internal The cluster left the config (or the manager closed): pick nothing, stop every timer. */
  uninstall(): void {
    this.#installing = true;
    this.#breakers.close();
    this.#outlier.close();
    this.#health.close();
    this.#installing = false;
    this.#resolved = undefined;
    this.#poolFingerprint = '';
    this.#endpoints = [];
    this.#refresh();
  }

  /** Recomputes the routable endpoints (see the class comment) and the balancer over them. */
  #refresh(): void {
    const panicPercent = this.#resolved?.panicThresholdPercent ?? 0;
    const base = this.#endpoints.filter((e) => e.health === 'HEALTHY');
    const healthy = base.filter((e) => !this.#outlier.isEjected(e.key) && this.#health.isHealthy(e.key));
    this.#panic = healthy.length < base.length && healthy.length * 100 < panicPercent * base.length;
    const usable = this.#panic ? base : healthy;
    const routable = usable.filter((e) => this.#breakers.available(e.key));
    this.#failure = usable.length === 0 ? 'NO_HEALTHY_UPSTREAM' : 'CIRCUIT_OPEN';
    let capacity = 0;
    for (const e of routable) capacity += e.connectionLimit;
    this.#limits.capacity = capacity;
    const weights = routable.map((e) => e.weight);
    const same =
      this.#balancer.policy === this.#policy &&
      routable.length === this.#routable.length &&
      routable.every((e, i) => e === this.#routable[i] && weights[i] === this.#routableWeights[i]);
    this.#routable = routable;
    this.#routableWeights = weights;
    if (!same) this.#balancer = createBalancer(this.#policy, routable, { random: this.#random });
  }

  /** @internal This cluster's part of `/config_dump`. */
  snapshot(): ClusterSnapshot {
    const rc = this.#resolved;
    const limits = this.#limits;
    return {
      name: this.name,
      lbPolicy: this.#policy,
      hashHeader: this.#hashHeader ?? null,
      endpoints: this.#endpoints.map((e) => {
        const outlier = this.#outlier.snapshot(e.key);
        const breaker = this.#breakers.state(e.key);
        const healthCheck = this.#health.state(e.key);
        return {
          key: e.key,
          health: e.health,
          weight: e.weight,
          labels: { ...e.labels },
          activeRequests: e.activeRequests,
          ...(e.identity !== '' && { identity: e.identity }),
          ...(outlier !== undefined && outlier),
          ...(breaker !== undefined && { breaker }),
          ...(healthCheck !== undefined && { healthCheck }),
        };
      }),
      ...(rc?.configured.circuitBreakers === true && {
        circuitBreakers: {
          activeRequests: limits.activeRequests,
          pendingRequests: limits.pendingRequests,
          activeRetries: limits.activeRetries,
          connectionCapacity: Number.isFinite(limits.capacity) ? limits.capacity : null,
        },
      }),
      ...(rc?.configured.retryBudget === true && { retryBudget: this.#budget.snapshot() }),
      ...((this.#outlier.enabled || this.#health.enabled) && { panic: this.#panic }),
    };
  }
}

interface Prepared {
  readonly rc: ResolvedCluster;
  readonly existing: ManagedCluster | undefined;
  readonly endpoints: readonly ManagedEndpoint[];
  /** Endpoints kept from the existing cluster, for `apply`. */
  readonly kept: ReadonlyMap<ManagedEndpoint, ResolvedCluster['endpoints'][number]>;
  readonly removed: readonly ManagedEndpoint[];
}

/** Holds the upstream clusters; see the module header for the guarantees. */
export class ClusterManager {
  #clusters = new Map<string, ManagedCluster>();
  readonly #retiring = new Set<ManagedEndpoint>();
  readonly #random: () => number;
  readonly #tls: TlsSource;
  #closed = false;

  constructor(options: ClusterManagerOptions = {}) {
    this.#random = options.random ?? Math.random;
    this.#tls = options.tls ?? NO_TLS;
  }

  /** The cluster called `name` in the current config, or `undefined`. */
  get(name: string): UpstreamCluster | undefined {
    return this.#clusters.get(name);
  }

  /** Names of the current clusters, in config order. */
  names(): readonly string[] {
    return [...this.#clusters.keys()];
  }

  /**
   * Replaces the whole upstream config. `assignments` give each cluster's endpoints; a cluster without
   * one has no endpoints. Throws an `Error` naming the cluster (and endpoint) for any invalid input —
   * bad address or port, unknown lbPolicy, CONSISTENT_HASH without hashHeader, duplicate cluster, an
   * assignment for an unknown cluster, … — and then nothing has changed. Also throws after `close()`.
   */
  update(clusters: readonly Cluster[], assignments: readonly ClusterLoadAssignment[]): void {
    if (this.#closed) throw new Error('ClusterManager is closed');
    const plan = resolveConfig(clusters, assignments);
    const created: ManagedEndpoint[] = [];
    let prepared: Prepared[];
    try {
      prepared = plan.map((rc) => this.#prepare(rc, created));
    } catch (err) {
      for (const e of created) void e.close();
      throw err;
    }
    this.#commit(prepared);
  }

  #prepare(rc: ResolvedCluster, created: ManagedEndpoint[]): Prepared {
    const existing = this.#clusters.get(rc.name);
    const reusable = new Map<string, ManagedEndpoint>();
    if (existing && existing.poolFingerprint === rc.poolFingerprint) {
      for (const e of existing.endpoints) reusable.set(e.key, e);
    }
    const kept = new Map<ManagedEndpoint, ResolvedCluster['endpoints'][number]>();
    const share = Math.max(
      1,
      Math.floor(rc.circuitBreakers.maxConnections / Math.max(1, rc.endpoints.length)),
    );
    const limit = connectionLimit(poolOptions(rc.connectionPool), share);
    // What the endpoint carries at once without queueing: for HTTP/2, many streams per connection.
    const capacity = rc.http2 ? limit * DEFAULT_H2_STREAMS_PER_SESSION : limit;
    const endpoints = rc.endpoints.map((re) => {
      const old = reusable.get(re.key);
      if (old && old.identity === re.identity) {
        kept.set(old, re);
        return old;
      }
      const connector = rc.tls
        ? createMtlsConnector({
            tls: this.#tls,
            expectedIdentity: re.identity,
            connectTimeoutMs: poolOptions(rc.connectionPool).connectTimeout,
            alpn: rc.http2 ? 'h2' : 'http/1.1',
          })
        : undefined;
      const fresh = new ManagedEndpoint(
        re,
        () => createEndpointPool(re, rc, connector, share, rc.http2),
        connector,
        capacity,
        rc.http2,
      );
      created.push(fresh);
      return fresh;
    });
    const removed = existing ? existing.endpoints.filter((e) => !kept.has(e)) : [];
    return { rc, existing, endpoints, kept, removed };
  }

  /** Applies a prepared config. Runs synchronously and throws nothing for validated input. */
  #commit(prepared: readonly Prepared[]): void {
    const next = new Map<string, ManagedCluster>();
    for (const { rc, existing, endpoints, kept } of prepared) {
      for (const [endpoint, re] of kept) endpoint.apply(re);
      const cluster = existing ?? new ManagedCluster(rc.name, rc.lbPolicy, this.#random);
      cluster.install(rc, endpoints);
      next.set(rc.name, cluster);
    }
    for (const [name, cluster] of this.#clusters) {
      if (next.has(name)) continue;
      const gone = cluster.endpoints;
      cluster.uninstall();
      for (const e of gone) this.#retire(e);
    }
    for (const { removed } of prepared) for (const e of removed) this.#retire(e);
    this.#clusters = next;
  }

  /**
   * After a certificate rotation: every mTLS endpoint sends new requests on a fresh pool (connections
   * made with the new certificate); the old pools close gracefully. Plain-text endpoints are untouched.
   */
  renewTlsPools(): void {
    for (const cluster of this.#clusters.values()) {
      for (const e of cluster.endpoints) if (e.connector !== undefined) e.renewPool();
    }
  }

  #retire(endpoint: ManagedEndpoint): void {
    this.#retiring.add(endpoint);
    void endpoint.retire().then(() => this.#retiring.delete(endpoint));
  }

  /**
   * Shuts down: every cluster picks nothing from now on and every pool, including those of removed
   * endpoints still waiting for `activeRequests` to reach 0, is closed gracefully. Resolves once all
   * pools have closed (after their dispatched requests finished). Never rejects; idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const all = new Set(this.#retiring);
    for (const cluster of this.#clusters.values()) {
      for (const e of cluster.endpoints) all.add(e);
      cluster.uninstall();
    }
    this.#clusters = new Map();
    await Promise.all([...all].map((e) => e.close()));
  }

  /** The current clusters as plain data for `/config_dump`. */
  snapshot(): ClusterManagerSnapshot {
    const clusters = [...this.#clusters.values()].map((c) => c.snapshot());
    return { clusters, retiringEndpoints: this.#retiring.size };
  }
}
