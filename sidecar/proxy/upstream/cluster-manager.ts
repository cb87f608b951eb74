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
import { type Balancer, type BalancerPolicy, createBalancer } from './balancer.ts';
import { ManagedEndpoint } from './endpoint.ts';
import { createEndpointPool, poolOptions } from './pool.ts';
import { type EndpointHealth, type ResolvedCluster, resolveConfig } from './resolve.ts';
import { createMtlsConnector } from './tls.ts';
import type { AttemptOutcome, PickContext, UpstreamCluster, UpstreamEndpoint } from './types.ts';

/** One endpoint in `ClusterManager.snapshot()`. */
export interface EndpointSnapshot {
  readonly key: string;
  readonly health: EndpointHealth;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly activeRequests: number;
  /** The SPIFFE ID the endpoint must present (mTLS clusters only). */
  readonly identity?: string;
}

/** One cluster in `ClusterManager.snapshot()`. */
export interface ClusterSnapshot {
  readonly name: string;
  readonly lbPolicy: BalancerPolicy;
  readonly hashHeader: string | null;
  readonly endpoints: readonly EndpointSnapshot[];
}

/** Plain JSON-able state for `/config_dump`. */
export interface ClusterManagerSnapshot {
  readonly clusters: readonly ClusterSnapshot[];
  /** Removed endpoints whose pools are still waiting for in-flight requests. */
  readonly retiringEndpoints: number;
}

export interface ClusterManagerOptions {
  /** Build-time randomness for balancers (ROUND_ROBIN start offset); default `Math.random`. */
  readonly random?: () => number;
  /** The proxy's certificate for mTLS clusters; without it their connections fail (no identity). */
  readonly tls?: TlsSource;
}

const NO_TLS: TlsSource = { material: undefined };

/** A cluster as the manager holds it. `pick` goes straight to the current balancer. */
export class ManagedCluster implements UpstreamCluster {
  readonly name: string;
  #balancer: Balancer;
  #balancerFingerprint = '';
  #poolFingerprint = '';
  #hashHeader: string | undefined;
  #endpoints: readonly ManagedEndpoint[] = [];

  constructor(name: string, policy: BalancerPolicy) {
    this.name = name;
    this.#balancer = createBalancer(policy, []);
  }

  pick(ctx: PickContext, _exclude?: UpstreamEndpoint): UpstreamEndpoint | undefined {
    return this.#balancer.pick(ctx);
  }

  // Resilience hooks (circuit breakers, retry budget, outlier detection): no limits yet.
  admitRequest(): 'OVERFLOW' | undefined {
    return undefined;
  }
  releaseRequest(): void {}
  admitRetry(): boolean {
    return true;
  }
  releaseRetry(): void {}
  record(_endpoint: UpstreamEndpoint, _outcome: AttemptOutcome): void {}

  get hashHeader(): string | undefined {
    return this.#hashHeader;
  }

  get lbPolicy(): BalancerPolicy {
    return this.#balancer.policy;
  }

  /** Every endpoint of the cluster in config order, including ones not picked (UNHEALTHY, DRAINING). */
  get endpoints(): readonly ManagedEndpoint[] {
    return this.#endpoints;
  }

  /** @internal Pool settings fingerprint of the installed config; endpoints are reusable only if equal. */
  get poolFingerprint(): string {
    return this.#poolFingerprint;
  }

  /** @internal Balancer input fingerprint of the installed config. */
  get balancerFingerprint(): string {
    return this.#balancerFingerprint;
  }

  /** @internal Swaps in a new state; `balancer` undefined keeps the current one. */
  install(rc: ResolvedCluster, endpoints: readonly ManagedEndpoint[], balancer: Balancer | undefined): void {
    if (balancer) this.#balancer = balancer;
    this.#balancerFingerprint = balancerFingerprint(rc);
    this.#poolFingerprint = rc.poolFingerprint;
    this.#hashHeader = rc.hashHeader;
    this.#endpoints = endpoints;
  }

  /** @internal The cluster left the config: pick nothing from now on. */
  uninstall(): void {
    this.#balancer = createBalancer(this.#balancer.policy, []);
    this.#balancerFingerprint = '';
    this.#endpoints = [];
  }
}

/**
 * What decides the balancer: policy and the picked endpoints' keys, weights and expected identities
 * (an endpoint whose identity changes is a new object, which the balancer must hold), in order.
 */
function balancerFingerprint(rc: ResolvedCluster): string {
  const picked = rc.endpoints
    .filter((e) => e.health === 'HEALTHY')
    .map((e) => `${e.key}*${e.weight}*${e.identity}`);
  return `${rc.lbPolicy}|${picked.join(',')}`;
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
          })
        : undefined;
      const fresh = new ManagedEndpoint(re, () => createEndpointPool(re, rc, connector), connector);
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
      const cluster = existing ?? new ManagedCluster(rc.name, rc.lbPolicy);
      const same =
        existing !== undefined &&
        existing.poolFingerprint === rc.poolFingerprint &&
        existing.balancerFingerprint === balancerFingerprint(rc);
      const picked = endpoints.filter((e) => e.health === 'HEALTHY');
      cluster.install(
        rc,
        endpoints,
        same ? undefined : createBalancer(rc.lbPolicy, picked, { random: this.#random }),
      );
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
    const clusters = [...this.#clusters.values()].map((c) => ({
      name: c.name,
      lbPolicy: c.lbPolicy,
      hashHeader: c.hashHeader ?? null,
      endpoints: c.endpoints.map((e) => ({
        key: e.key,
        health: e.health,
        weight: e.weight,
        labels: { ...e.labels },
        activeRequests: e.activeRequests,
        ...(e.identity !== '' && { identity: e.identity }),
      })),
    }));
    return { clusters, retiringEndpoints: this.#retiring.size };
  }
}
