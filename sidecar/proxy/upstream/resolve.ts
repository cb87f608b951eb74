/**
 * Validation and normalisation of a whole cluster config (clusters + load assignments) into the plan
 * the cluster manager applies. Pure: no pools are created here, so a config that fails validation
 * has touched nothing.
 *
 * Rules (each violation throws an `Error` naming the cluster, and the endpoint where there is one):
 * cluster names non-empty and unique; lbPolicy one of the known names (absent/UNSPECIFIED → ROUND_ROBIN);
 * CONSISTENT_HASH needs a `hashHeader` that is a valid header name; connectionPool values are
 * non-negative integers; every assignment names a known cluster, at most one assignment per cluster;
 * endpoint addresses/ports valid (see address.ts), unique within a cluster; weight absent/0 → 1, else an
 * integer in 1–`MAX_ENDPOINT_WEIGHT`; health absent/UNSPECIFIED → HEALTHY; labels string → string;
 * in a cluster with `tls.enabled`, every endpoint has an `identity` that is a SPIFFE ID (the peer
 * must present exactly that ID) and its origin is `https://`.
 *
 * Resilience settings (each an object when present; every number a uint32 where 0 means the default):
 * circuitBreakers (breakers.ts: errorThresholdPercent ≤ 100, windowMs ≥ 10), outlierDetection
 * (outlier.ts: percentages 0–100), healthCheck (health-check.ts: an origin-form `path` is required) and
 * retryBudget (budget.ts: percent ≤ 1000, windowMs ≥ 10); times at most 2^31-1 ms. A violation names
 * the cluster and the field, e.g. `cluster "web": circuitBreakers.maxRequests must be …`.
 */
import type { Cluster, ClusterLoadAssignment, ConnectionPool, Endpoint } from '../config/types.ts';
import { parseSpiffeId } from '../identity.ts';
import { checkPort, endpointKey, endpointOrigin, normalizeAddress } from './address.ts';
import { BALANCER_POLICIES, type BalancerPolicy } from './balancer.ts';
import { type CircuitBreakerSettings, circuitBreakerSettings } from './breakers.ts';
import { type RetryBudgetSettings, retryBudgetSettings } from './budget.ts';
import { type HealthCheckSettings, healthCheckSettings } from './health-check.ts';
import { type OutlierSettings, outlierSettings, panicThresholdPercent } from './outlier.ts';
import { type EndpointPoolOptions, poolOptions } from './pool.ts';

export const MAX_ENDPOINT_WEIGHT = 1_000_000;

/** Endpoint health after defaulting. Only HEALTHY endpoints are picked. */
export type EndpointHealth = 'HEALTHY' | 'UNHEALTHY' | 'DRAINING';

export interface ResolvedEndpoint {
  /** `address:port`, IPv6 in brackets; unique within its cluster. */
  readonly key: string;
  /** Normalised (see `normalizeAddress`). */
  readonly address: string;
  readonly port: number;
  readonly origin: string;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly health: EndpointHealth;
  /** The SPIFFE ID the endpoint must present (mTLS clusters), else ''. */
  readonly identity: string;
}

export interface ResolvedCluster {
  readonly name: string;
  readonly lbPolicy: BalancerPolicy;
  /** Lower-cased; set only for CONSISTENT_HASH. */
  readonly hashHeader: string | undefined;
  /** As configured; `createEndpointPool` turns it into pool options. */
  readonly connectionPool: ConnectionPool | undefined;
  /** True when endpoints are reached over mTLS (`tls.enabled`). */
  readonly tls: boolean;
  /** True when endpoints speak HTTP/2 (`protocol: HTTP2`: h2c in plain text, h2 over mTLS). */
  readonly http2: boolean;
  /** Equal fingerprints ⇔ equal pool options (and `circuitBreakers.maxConnections`), so pools can be kept. */
  readonly poolFingerprint: string;
  readonly endpoints: readonly ResolvedEndpoint[];
  /** Pool limits and the error-rate breaker, with Envoy's defaults when absent. */
  readonly circuitBreakers: CircuitBreakerSettings;
  /** Undefined: no outlier detection. */
  readonly outlierDetection: OutlierSettings | undefined;
  /** Below this share of healthy endpoints (in %), every endpoint is picked (Envoy panic threshold). */
  readonly panicThresholdPercent: number;
  /** Undefined: no active health checks. */
  readonly healthCheck: HealthCheckSettings | undefined;
  /** Linkerd-style retry budget, with its defaults when absent. */
  readonly retryBudget: RetryBudgetSettings;
  /** Which always-on settings the config spells out (`/config_dump` shows their counters only then). */
  readonly configured: { readonly circuitBreakers: boolean; readonly retryBudget: boolean };
}

/** RFC 9110 §5.1 field-name (a token). */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEALTH = new Set(['HEALTH_STATUS_UNSPECIFIED', 'HEALTHY', 'UNHEALTHY', 'DRAINING']);

function fail(where: string, message: string, cause?: unknown): never {
  throw new Error(`${where}: ${message}`, cause === undefined ? undefined : { cause });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function resolveCluster(c: Cluster, endpoints: readonly Endpoint[]): ResolvedCluster {
  const where = `cluster ${JSON.stringify(c.name)}`;
  const policy = c.lbPolicy ?? 'LB_POLICY_UNSPECIFIED';
  const lbPolicy: BalancerPolicy | undefined =
    policy === 'LB_POLICY_UNSPECIFIED' ? 'ROUND_ROBIN' : BALANCER_POLICIES.find((p) => p === policy);
  if (lbPolicy === undefined) fail(where, `unknown lbPolicy ${JSON.stringify(policy)}`);
  let hashHeader: string | undefined;
  if (lbPolicy === 'CONSISTENT_HASH') {
    if (!c.hashHeader) fail(where, 'lbPolicy CONSISTENT_HASH needs hashHeader');
    if (!FIELD_NAME.test(c.hashHeader))
      fail(where, `hashHeader ${JSON.stringify(c.hashHeader)} is not a header name`);
    hashHeader = c.hashHeader.toLowerCase();
  }
  let options: EndpointPoolOptions;
  try {
    options = poolOptions(c.connectionPool);
  } catch (err) {
    fail(where, messageOf(err), err);
  }
  const tls = c.tls?.enabled === true;
  const http2 = c.protocol === 'HTTP2';
  const resilience = resolveResilience(where, c);
  const seen = new Set<string>();
  const resolved = endpoints.map((e) => {
    const ep = resolveEndpoint(where, e, tls);
    if (seen.has(ep.key)) fail(`${where} endpoint ${ep.key}`, 'duplicate endpoint');
    seen.add(ep.key);
    return ep;
  });
  return {
    name: c.name,
    lbPolicy,
    hashHeader,
    connectionPool: c.connectionPool,
    tls,
    http2,
    poolFingerprint: JSON.stringify({
      ...options,
      tls,
      http2,
      maxConnections: resilience.circuitBreakers.maxConnections,
    }),
    endpoints: resolved,
    ...resilience,
  };
}

const SECTIONS = ['circuitBreakers', 'outlierDetection', 'healthCheck', 'retryBudget'] as const;

/** The cluster's resilience settings with defaults; throws naming the cluster and the field. */
function resolveResilience(
  where: string,
  c: Cluster,
): Pick<
  ResolvedCluster,
  | 'circuitBreakers'
  | 'outlierDetection'
  | 'panicThresholdPercent'
  | 'healthCheck'
  | 'retryBudget'
  | 'configured'
> {
  for (const name of SECTIONS) {
    const section: unknown = c[name];
    if (
      section !== undefined &&
      (typeof section !== 'object' || section === null || Array.isArray(section))
    ) {
      fail(where, `${name} must be an object, got ${JSON.stringify(section)}`);
    }
  }
  try {
    return {
      circuitBreakers: circuitBreakerSettings(c.circuitBreakers),
      outlierDetection: outlierSettings(c.outlierDetection),
      panicThresholdPercent: panicThresholdPercent(c.outlierDetection),
      healthCheck: healthCheckSettings(c.healthCheck),
      retryBudget: retryBudgetSettings(c.retryBudget),
      configured: {
        circuitBreakers: c.circuitBreakers !== undefined,
        retryBudget: c.retryBudget !== undefined,
      },
    };
  } catch (err) {
    fail(where, messageOf(err), err);
  }
}

function resolveEndpoint(clusterWhere: string, e: Endpoint, tls: boolean): ResolvedEndpoint {
  let where = `${clusterWhere} endpoint ${String(e.address)}:${String(e.port)}`;
  let address: string;
  try {
    address = normalizeAddress(e.address);
    checkPort(e.port);
  } catch (err) {
    fail(where, messageOf(err), err);
  }
  const key = endpointKey(address, e.port);
  where = `${clusterWhere} endpoint ${key}`;
  const weight = e.weight === undefined || e.weight === 0 ? 1 : e.weight;
  if (!Number.isInteger(weight) || weight < 1 || weight > MAX_ENDPOINT_WEIGHT) {
    fail(where, `weight must be an integer in 1-${MAX_ENDPOINT_WEIGHT}, got ${String(e.weight)}`);
  }
  const health = e.health ?? 'HEALTH_STATUS_UNSPECIFIED';
  if (!HEALTH.has(health)) fail(where, `unknown health ${JSON.stringify(health)}`);
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.labels ?? {})) {
    if (typeof v !== 'string') fail(where, `label ${JSON.stringify(k)} must be a string`);
    labels[k] = v;
  }
  const identity = tls ? (e.identity ?? '') : '';
  if (tls && parseSpiffeId(identity) === undefined) {
    fail(where, `tls.enabled needs the endpoint's identity as a SPIFFE ID, got ${JSON.stringify(identity)}`);
  }
  return {
    key,
    address,
    port: e.port,
    origin: endpointOrigin(address, e.port, tls ? 'https' : 'http'),
    weight,
    labels: Object.freeze(labels),
    health: health === 'HEALTH_STATUS_UNSPECIFIED' ? 'HEALTHY' : health,
    identity,
  };
}

/**
 * Validates and normalises a whole config. Returns one `ResolvedCluster` per cluster, in config order;
 * a cluster without an assignment has no endpoints. Throws an `Error` on the first violation.
 */
export function resolveConfig(
  clusters: readonly Cluster[],
  assignments: readonly ClusterLoadAssignment[],
): readonly ResolvedCluster[] {
  const byName = new Map<string, Cluster>();
  for (const c of clusters) {
    if (typeof c.name !== 'string' || c.name.length === 0) fail('cluster', 'name is empty');
    if (byName.has(c.name)) fail(`cluster ${JSON.stringify(c.name)}`, 'duplicate cluster name');
    byName.set(c.name, c);
  }
  const endpointsOf = new Map<string, readonly Endpoint[]>();
  for (const a of assignments) {
    const where = `load assignment for cluster ${JSON.stringify(a.clusterName)}`;
    if (!byName.has(a.clusterName)) fail(where, 'unknown cluster');
    if (endpointsOf.has(a.clusterName)) fail(where, 'duplicate load assignment');
    endpointsOf.set(a.clusterName, a.endpoints ?? []);
  }
  return clusters.map((c) => resolveCluster(c, endpointsOf.get(c.name) ?? []));
}
