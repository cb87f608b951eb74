/**
 * BackendTrafficPolicy resilience settings → proxy Routes and Clusters (Envoy Gateway's names on
 * the user side, proto/weft/v1/config.proto on the proxy side).
 *
 * Attachment: `targetRefs` name Services in the policy's own namespace. Several policies on one
 * Service merge section by section (retry, timeout, circuitBreaker, outlierDetection,
 * healthCheck, faultInjection): for each, the oldest policy that sets it wins (creationTimestamp,
 * then namespace/name, Gateway API policy attachment), as for `loadBalancer` (clusters.ts).
 *
 * Route level, for the forwarding routes clients send to the Service (the routes of its virtual
 * host, including the default route):
 * - `retry` → Route.retry (retry.ts), unless the HTTPRoute rule has its own `retry`, which wins;
 *   a per-retry timeout longer than the route's request timeout is capped at it;
 * - `timeout.http.requestTimeout` → timeouts.requestMs when the route sets no request timeout and
 *   its backendRequest fits inside (otherwise the route's own timeouts stand);
 * - `faultInjection` → Route.fault: delay.fixedDelay / percentage → delayMs / delayPercent,
 *   abort.httpStatus / percentage → abortStatus / abortPercent (a part at 0 % is left out).
 * Cluster level, for the Service's own clusters (`outbound|<port>|<name>.<ns>`):
 * - `timeout.tcp.connectTimeout` → connectionPool.connectTimeoutMs;
 *   `timeout.http.connectionIdleTimeout` → connectionPool.idleTimeoutMs ("0s": the proxy default);
 * - `circuitBreaker` → circuitBreakers (maxParallelRequests → maxRequests, maxParallelRetries →
 *   maxRetries; `errorRate` thresholdPercent / volumeThreshold / resetTimeout / window →
 *   errorThresholdPercent / volumeThreshold / resetTimeoutMs / windowMs);
 * - `outlierDetection` → outlierDetection (consecutive5xxErrors → consecutiveServerErrors,
 *   consecutiveGatewayErrors, interval, baseEjectionTime, maxEjectionPercent);
 * - `healthCheck.active` → healthCheck (http.path, interval, timeout, thresholds);
 * - `retry.budget` → retryBudget (percent rounded to a whole percent).
 * Zero values are left out: on the wire a proto3 zero is absent, which the proxy reads as its
 * default, so "0" cannot be said there (e.g. `maxEjectionPercent: 0` gets the default 10).
 */
import type { Cluster, FaultInjection, RetryPolicy, Route } from '../../sidecar/proxy/config/types.ts';
import type { Resource } from '../resources/types.ts';
import { compareResources } from './order.ts';
import { durationMs, policyRetry } from './retry.ts';
import { serviceKey } from './services.ts';
import { type BackendTrafficPolicySpecView, isServiceRef, namespaceOf } from './specs.ts';

/** What a BackendTrafficPolicy adds to the routes to its Service. */
export interface RoutePolicy {
  readonly retry?: RetryPolicy;
  readonly requestMs?: number;
  readonly fault?: FaultInjection;
}

/** What a BackendTrafficPolicy adds to its Service's clusters. */
export type ClusterPolicy = Pick<
  Cluster,
  'connectionPool' | 'circuitBreakers' | 'outlierDetection' | 'healthCheck' | 'retryBudget'
>;

/** Route and cluster settings per Service key (`<namespace>/<name>`). */
export interface TrafficPolicies {
  readonly routes: ReadonlyMap<string, RoutePolicy>;
  readonly clusters: ReadonlyMap<string, ClusterPolicy>;
}

const SECTIONS = [
  'retry',
  'timeout',
  'circuitBreaker',
  'outlierDetection',
  'healthCheck',
  'faultInjection',
] as const;
type Sections = Pick<BackendTrafficPolicySpecView, (typeof SECTIONS)[number]>;

/** `{[name]: value}` when `value` is a positive number, else nothing. */
function some<K extends string>(name: K, value: number | undefined): { [P in K]?: number } {
  return value !== undefined && value > 0 ? ({ [name]: value } as { [P in K]: number }) : {};
}

/** A duration in ms when set, else undefined. */
function ms(duration: string | undefined): number | undefined {
  return duration === undefined ? undefined : durationMs(duration);
}

function faultOf(f: NonNullable<Sections['faultInjection']>): FaultInjection | undefined {
  const delayMs = ms(f.delay?.fixedDelay) ?? 0;
  const delayPercent = f.delay?.percentage ?? 100;
  const abortStatus = f.abort?.httpStatus ?? 0;
  const abortPercent = f.abort?.percentage ?? 100;
  const fault: FaultInjection = {
    ...(delayMs > 0 && delayPercent > 0 && { delayMs, delayPercent }),
    ...(abortStatus > 0 && abortPercent > 0 && { abortStatus, abortPercent }),
  };
  return Object.keys(fault).length > 0 ? fault : undefined;
}

function routePolicy(s: Sections): RoutePolicy | undefined {
  const retry = s.retry === undefined ? undefined : policyRetry(s.retry);
  const requestMs = ms(s.timeout?.http?.requestTimeout) ?? 0;
  const fault = s.faultInjection === undefined ? undefined : faultOf(s.faultInjection);
  const policy: RoutePolicy = {
    ...(retry !== undefined && { retry }),
    ...(requestMs > 0 && { requestMs }),
    ...(fault !== undefined && { fault }),
  };
  return Object.keys(policy).length > 0 ? policy : undefined;
}

function clusterPolicy(s: Sections): ClusterPolicy | undefined {
  const pool = {
    ...some('connectTimeoutMs', ms(s.timeout?.tcp?.connectTimeout)),
    ...some('idleTimeoutMs', ms(s.timeout?.http?.connectionIdleTimeout)),
  };
  const cb = s.circuitBreaker;
  const od = s.outlierDetection;
  const hc = s.healthCheck?.active;
  const budget = s.retry?.budget;
  const policy: ClusterPolicy = {
    ...(Object.keys(pool).length > 0 && { connectionPool: pool }),
    ...(cb !== undefined && {
      circuitBreakers: {
        ...some('maxConnections', cb.maxConnections),
        ...some('maxPendingRequests', cb.maxPendingRequests),
        ...some('maxRequests', cb.maxParallelRequests),
        ...some('maxRetries', cb.maxParallelRetries),
        ...some('errorThresholdPercent', cb.errorRate?.thresholdPercent),
        ...some('volumeThreshold', cb.errorRate?.volumeThreshold),
        ...some('resetTimeoutMs', ms(cb.errorRate?.resetTimeout)),
        ...some('windowMs', ms(cb.errorRate?.window)),
      },
    }),
    ...(od !== undefined && {
      outlierDetection: {
        ...some('consecutiveServerErrors', od.consecutive5xxErrors),
        ...some('consecutiveGatewayErrors', od.consecutiveGatewayErrors),
        ...some('intervalMs', ms(od.interval)),
        ...some('baseEjectionTimeMs', ms(od.baseEjectionTime)),
        ...some('maxEjectionPercent', od.maxEjectionPercent),
      },
    }),
    ...(hc?.http?.path !== undefined && {
      healthCheck: {
        path: hc.http.path,
        ...some('intervalMs', ms(hc.interval)),
        ...some('timeoutMs', ms(hc.timeout)),
        ...some('healthyThreshold', hc.healthyThreshold),
        ...some('unhealthyThreshold', hc.unhealthyThreshold),
      },
    }),
    ...(budget !== undefined && {
      retryBudget: {
        ...some('percent', Math.round(budget.percent ?? 0)),
        ...some('minRetriesPerSecond', budget.minRetriesPerSecond),
      },
    }),
  };
  return Object.keys(policy).length > 0 ? policy : undefined;
}

/** Each Service's sections, each from the oldest policy that sets it. */
function mergedSections(resources: readonly Resource[]): Map<string, Sections> {
  const out = new Map<string, Record<string, unknown>>();
  const policies = resources
    .filter((r): r is Resource & Resource<BackendTrafficPolicySpecView> => r.kind === 'BackendTrafficPolicy')
    .sort(compareResources);
  for (const p of policies) {
    for (const ref of p.spec.targetRefs ?? []) {
      if (!isServiceRef(ref, 'Service')) continue;
      const key = serviceKey(namespaceOf(p), ref.name);
      const merged = out.get(key) ?? {};
      for (const section of SECTIONS) {
        if (merged[section] === undefined && p.spec[section] !== undefined) merged[section] = p.spec[section];
      }
      out.set(key, merged);
    }
  }
  return out as Map<string, Sections>;
}

/** The route and cluster settings every Service gets from the BackendTrafficPolicies targeting it. */
export function trafficPolicies(resources: readonly Resource[]): TrafficPolicies {
  const routes = new Map<string, RoutePolicy>();
  const clusters = new Map<string, ClusterPolicy>();
  for (const [key, sections] of mergedSections(resources)) {
    const r = routePolicy(sections);
    if (r !== undefined) routes.set(key, r);
    const c = clusterPolicy(sections);
    if (c !== undefined) clusters.set(key, c);
  }
  return { routes, clusters };
}

/**
 * `route` with `policy` applied (see the module header); a route that does not forward, or no
 * policy, is returned as is. `ownRetry`: the rule has its own retry stanza, which wins.
 */
export function applyRoutePolicy(route: Route, policy: RoutePolicy | undefined, ownRetry: boolean): Route {
  if (policy === undefined || route.route === undefined) return route;
  const t = route.timeouts;
  const requestMs =
    policy.requestMs !== undefined &&
    t?.requestMs === undefined &&
    (t?.backendRequestMs ?? 0) <= policy.requestMs
      ? policy.requestMs
      : undefined;
  const limitMs = requestMs ?? t?.requestMs ?? 0;
  let retry = ownRetry ? undefined : policy.retry;
  // A try may not outlast the whole request (the proxy rejects such a policy): cap it there.
  if (retry?.perTryTimeoutMs !== undefined && limitMs > 0 && retry.perTryTimeoutMs > limitMs)
    retry = { ...retry, perTryTimeoutMs: limitMs };
  return {
    ...route,
    ...(requestMs !== undefined && { timeouts: { ...t, requestMs } }),
    ...(retry !== undefined && { retry }),
    ...(policy.fault !== undefined && { fault: policy.fault }),
  };
}
