/**
 * RateLimitPolicy → the edge rate limit rules of gateway proxies (proto/weft/v1/config.proto
 * `RateLimitRule`), and MeshConfig `rateLimit` → the proxies' `RateLimitService`.
 *
 * Use from the gateway translation: `translateRateLimitPolicies(resources)` once per snapshot, then
 * `attachEdgeRateLimits(...)` per gateway listener and its routes, and `rateLimitServiceOf(mesh)`
 * for the snapshot's `rateLimitService`.
 *
 * Attachment (GEP-713): `targetRefs` name a Gateway, HTTPRoute or GRPCRoute in the policy's own
 * namespace. A Gateway's rules go on its listeners (`Listener.rateLimits`: one bucket set for the
 * whole listener); an HTTPRoute's or GRPCRoute's rules go on each of its rules' proxy Routes
 * (`Route.rateLimits`: buckets per route). Several policies on one target add up: every rule
 * counts, so the most restrictive one decides; rules are ordered oldest policy first
 * (creationTimestamp, then namespace/name).
 *
 * Mapping of one `limits[i]` (Envoy Gateway's rateLimit names) to a `RateLimitRule` named
 * `<namespace>/<policy>/limit-<i>`:
 * - `limit.requests` / `unit` (Second | Minute | Hour | Day | Month) / `burst` → requests / PER_* / burst;
 * - `plan` → plan; `type: Global` → global (counted in Redis; local without a MeshConfig store);
 * - every selector of every `clientSelectors` entry is ANDed:
 *   `headers[]` Exact | RegularExpression | Distinct → SOURCE_HEADER EQUALS | MATCHES_REGEX | DISTINCT
 *   (with `invert`); `sourceCIDR` Exact → SOURCE_CLIENT_IP IN_CIDR; `sourceCIDR` Distinct → IN_CIDR
 *   plus DISTINCT on the client IP (a bucket per address in the range, as in Envoy Gateway);
 *   `clientId` Exact | Distinct → SOURCE_CLIENT_ID EQUALS | DISTINCT; `jwtClaim` → SOURCE_JWT_CLAIM.
 */
import type {
  Listener,
  RateLimitMatch,
  RateLimitRule,
  RateLimitSelector,
  RateLimitService,
  RateLimitUnit,
  Route,
} from '../../sidecar/proxy/config/types.ts';
import { parseDurationMs } from '../resources/duration.ts';
import {
  isKind,
  type MeshConfigSpec,
  type RateLimitSelector as PolicySelector,
  type RateLimit,
  type Resource,
  type ResourceOf,
} from '../resources/types.ts';
import { compareResources } from './order.ts';
import { namespaceOf } from './specs.ts';

/** The edge rate limit rules of every target, from the store's RateLimitPolicies. */
export interface EdgeRateLimits {
  /** Rules for the listeners of Gateway `<namespace>/<name>` (`Listener.rateLimits`); [] when none. */
  forGateway(namespace: string, name: string): RateLimitRule[];
  /**
   * Rules for every proxy Route made from route `<namespace>/<name>` of `kind` (`Route.rateLimits`);
   * [] when none.
   */
  forRoute(kind: 'HTTPRoute' | 'GRPCRoute', namespace: string, name: string): RateLimitRule[];
}

const UNITS: Readonly<Record<RateLimit['limit']['unit'], RateLimitUnit>> = {
  Second: 'PER_SECOND',
  Minute: 'PER_MINUTE',
  Hour: 'PER_HOUR',
  Day: 'PER_DAY',
  Month: 'PER_MONTH',
};

const MATCHES: Readonly<Record<'Exact' | 'RegularExpression' | 'Distinct', RateLimitMatch>> = {
  Exact: 'EQUALS',
  RegularExpression: 'MATCHES_REGEX',
  Distinct: 'DISTINCT',
};

function selectorsOf(s: PolicySelector): RateLimitSelector[] {
  const out: RateLimitSelector[] = [];
  for (const h of s.headers ?? []) {
    out.push({
      source: 'SOURCE_HEADER',
      name: h.name.toLowerCase(),
      match: MATCHES[h.type],
      ...(h.value !== undefined && { value: h.value }),
      ...(h.invert === true && { invert: true }),
    });
  }
  if (s.sourceCIDR !== undefined) {
    out.push({ source: 'SOURCE_CLIENT_IP', match: 'IN_CIDR', value: s.sourceCIDR.value });
    if (s.sourceCIDR.type === 'Distinct') out.push({ source: 'SOURCE_CLIENT_IP', match: 'DISTINCT' });
  }
  if (s.clientId !== undefined) {
    out.push({
      source: 'SOURCE_CLIENT_ID',
      match: MATCHES[s.clientId.type],
      ...(s.clientId.value !== undefined && { value: s.clientId.value }),
    });
  }
  if (s.jwtClaim !== undefined) {
    const c = s.jwtClaim;
    out.push({
      source: 'SOURCE_JWT_CLAIM',
      name: c.name,
      match: MATCHES[c.type],
      ...(c.value !== undefined && { value: c.value }),
      ...(c.invert === true && { invert: true }),
    });
  }
  return out;
}

/** The proxy rules of one validated RateLimitPolicy, in `limits` order. */
export function rateLimitRules(policy: ResourceOf<'RateLimitPolicy'>): RateLimitRule[] {
  const ns = namespaceOf(policy);
  const global = policy.spec.type === 'Global';
  return policy.spec.limits.map((l, i) => {
    const selectors = (l.clientSelectors ?? []).flatMap(selectorsOf);
    return {
      name: `${ns}/${policy.metadata.name}/limit-${i}`,
      ...(selectors.length > 0 && { selectors }),
      requests: l.limit.requests,
      unit: UNITS[l.limit.unit],
      ...((l.limit.burst ?? 0) > 0 && { burst: l.limit.burst }),
      ...(l.plan !== undefined && { plan: l.plan }),
      ...(global && { global: true }),
    };
  });
}

/**
 * Indexes the rules of every RateLimitPolicy in `resources` (other kinds are ignored) by target.
 * Pure: the same resources give the same rules in the same order.
 */
export function translateRateLimitPolicies(resources: readonly Resource[]): EdgeRateLimits {
  const byTarget = new Map<string, RateLimitRule[]>();
  const policies = resources
    .filter((r): r is ResourceOf<'RateLimitPolicy'> => isKind(r, 'RateLimitPolicy'))
    .sort(compareResources);
  for (const policy of policies) {
    const rules = rateLimitRules(policy);
    const ns = namespaceOf(policy);
    for (const ref of policy.spec.targetRefs) {
      const key = `${ref.kind}/${ns}/${ref.name}`;
      const list = byTarget.get(key);
      if (list === undefined) byTarget.set(key, [...rules]);
      else list.push(...rules);
    }
  }
  const get = (key: string): RateLimitRule[] => [...(byTarget.get(key) ?? [])];
  return {
    forGateway: (namespace, name) => get(`Gateway/${namespace}/${name}`),
    forRoute: (kind, namespace, name) => get(`${kind}/${namespace}/${name}`),
  };
}

/** MeshConfig `rateLimit` → the proxies' `RateLimitService` (undefined when not configured). */
export function rateLimitServiceOf(mesh: MeshConfigSpec | undefined): RateLimitService | undefined {
  const rl = mesh?.rateLimit;
  if (rl === undefined) return undefined;
  return {
    redisUrl: rl.redis.url,
    failMode: rl.failMode === 'Closed' ? 'FAIL_CLOSED' : 'FAIL_OPEN',
    timeoutMs: parseDurationMs(rl.timeout),
  };
}

/**
 * Applies the rate limits to one listener of Gateway `<gateway.namespace>/<gateway.name>` and the
 * proxy Routes it serves: the Gateway's rules on the listener, and on each Route the rules of the
 * user route it was made from (`routeOf`: `<kind>/<namespace>/<name>`, e.g. `HTTPRoute/shop/orders`,
 * or undefined for a Route made from none). Returns new objects; inputs are not touched; lists that
 * would be empty are left out.
 */
export function attachEdgeRateLimits(
  limits: EdgeRateLimits,
  gateway: { readonly namespace: string; readonly name: string },
  listener: Listener,
  routes: readonly Route[],
  routeOf: (route: Route) => string | undefined,
): { readonly listener: Listener; readonly routes: Route[] } {
  const onListener = limits.forGateway(gateway.namespace, gateway.name);
  return {
    listener: onListener.length === 0 ? listener : { ...listener, rateLimits: onListener },
    routes: routes.map((r) => {
      const key = routeOf(r);
      const [kind, namespace, name] = key === undefined ? [] : key.split('/');
      if ((kind !== 'HTTPRoute' && kind !== 'GRPCRoute') || namespace === undefined || name === undefined)
        return r;
      const rules = limits.forRoute(kind, namespace, name);
      return rules.length === 0 ? r : { ...r, rateLimits: rules };
    }),
  };
}
