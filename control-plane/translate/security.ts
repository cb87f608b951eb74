/**
 * SecurityPolicy (Envoy Gateway's names, weft.dev/v1alpha1) → the edge auth config of a gateway's
 * listeners and routes (config.proto `AuthProviders`, `AuthPolicy`; enforced by
 * sidecar/proxy/filters/edge/).
 *
 * Attachment (Gateway API policy attachment, as Envoy Gateway does it): a policy's `targetRefs`
 * name a Gateway, HTTPRoute or GRPCRoute in the policy's own namespace. A route's own policy
 * replaces the Gateway's for that route (no merging); the Gateway's applies to its other routes
 * and to requests that match no route. When several policies target one object, the oldest wins
 * (creationTimestamp, then namespace/name) and the others are reported in `conflicts`.
 *
 * Mapping, per policy `<ns>/<name>`:
 * - `jwt.providers[]` → `JwtProvider` named `<ns>/<name>/<provider>` (issuer, audiences,
 *   remoteJWKS.uri → remoteJwksUri, localJWKS.inline → localJwks, claimToHeaders, extractFrom
 *   headers/cookies/params → sources, algorithms, clockSkew → clockSkewMs); `jwt.optional`;
 * - `apiKeyAuth` → `ApiKeySet` named `<ns>/<name>` (clients with their SHA-256 digests, expiry,
 *   scopes and plan; extractFrom → sources) and `AuthApiKey` (forwardClientIDHeader, sanitize,
 *   optional);
 * - `authorization` → `defaultAction` (Allow | Deny → AUTH_ALLOW | AUTH_DENY) and `rules[]`
 *   (clientCIDRs, operation.methods, principal.jwt provider/scopes/claims, principal.apiKey
 *   clients/plans/scopes); without `authorization`, AUTH_ALLOW (authentication alone decides);
 * - `cors` → `Cors` (maxAge → maxAgeSeconds, rounded down).
 *
 * Invariants: pure and deterministic (policies in tie-break order, lists in spec order); lists
 * that would be empty are left out, as the proto3 JSON mapping omits them.
 */
import type {
  ApiKeySet,
  AuthPolicy,
  AuthProviders,
  AuthRule,
  CredentialSource,
  JwtProvider,
  Listener,
  Route,
} from '../../sidecar/proxy/config/types.ts';
import { parseDurationMs } from '../resources/duration.ts';
import type { JWTProvider, Resource, SecurityPolicySpec } from '../resources/types.ts';
import { compareResources } from './order.ts';
import { namespaceOf } from './specs.ts';

/** A route attached to the gateway: its kind, namespace and name. */
export interface AttachedRoute {
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  readonly namespace: string;
  readonly name: string;
}

/** The edge auth config of one Gateway. */
export interface GatewayEdgeAuth {
  /** For every listener of the Gateway: the providers the policies below name (absent: none). */
  readonly providers: AuthProviders | undefined;
  /** For every listener of the Gateway: the Gateway's own policy (absent: none). */
  readonly listenerAuth: AuthPolicy | undefined;
  /** Route policies by `<kind>/<namespace>/<name>` of the route (e.g. `HTTPRoute/shop/orders`). */
  readonly routeAuth: ReadonlyMap<string, AuthPolicy>;
  /** Policies not applied because an older one targets the same object: `<ns>/<name>: reason`. */
  readonly conflicts: readonly string[];
}

type Policy = Resource<SecurityPolicySpec>;

function qualified(p: Policy): string {
  return `${namespaceOf(p)}/${p.metadata.name}`;
}

function nonEmpty<T>(list: readonly T[] | undefined): readonly T[] | undefined {
  return list !== undefined && list.length > 0 ? list : undefined;
}

function jwtSources(x: JWTProvider['extractFrom']): CredentialSource[] {
  if (x === undefined) return [];
  return [
    ...(x.headers ?? []).map((h) => ({
      header: h.name,
      ...(h.valuePrefix !== undefined && h.valuePrefix !== '' && { valuePrefix: h.valuePrefix }),
    })),
    ...(x.cookies ?? []).map((cookie) => ({ cookie })),
    ...(x.params ?? []).map((queryParam) => ({ queryParam })),
  ];
}

function jwtProvider(p: Policy, j: JWTProvider): JwtProvider {
  const sources = jwtSources(j.extractFrom);
  return {
    name: `${qualified(p)}/${j.name}`,
    ...(j.issuer !== undefined && { issuer: j.issuer }),
    ...(nonEmpty(j.audiences) && { audiences: j.audiences }),
    ...(j.remoteJWKS !== undefined && { remoteJwksUri: j.remoteJWKS.uri }),
    ...(j.localJWKS !== undefined && { localJwks: j.localJWKS.inline }),
    ...(nonEmpty(j.algorithms) && { algorithms: j.algorithms }),
    ...(j.clockSkew !== undefined && { clockSkewMs: parseDurationMs(j.clockSkew) }),
    ...(nonEmpty(j.claimToHeaders) && {
      claimToHeaders: (j.claimToHeaders ?? []).map((c) => ({ claim: c.claim, header: c.header })),
    }),
    ...(sources.length > 0 && { sources }),
  };
}

function apiKeySet(p: Policy, a: NonNullable<SecurityPolicySpec['apiKeyAuth']>): ApiKeySet {
  const sources: CredentialSource[] = (a.extractFrom ?? []).flatMap((x) => [
    ...(x.headers ?? []).map((header) => ({ header })),
    ...(x.params ?? []).map((queryParam) => ({ queryParam })),
    ...(x.cookies ?? []).map((cookie) => ({ cookie })),
  ]);
  return {
    name: qualified(p),
    clients: (a.clients ?? []).map((c) => ({
      id: c.id,
      ...(c.plan !== undefined && { plan: c.plan }),
      keys: c.keys.map((k) => ({
        id: k.id,
        sha256: k.sha256,
        ...(k.expiresAt !== undefined && { expiresAt: k.expiresAt }),
        ...(nonEmpty(k.scopes) && { scopes: k.scopes }),
      })),
    })),
    ...(sources.length > 0 && { sources }),
  };
}

type SpecRule = NonNullable<NonNullable<SecurityPolicySpec['authorization']>['rules']>[number];

function authRule(p: Policy, r: SpecRule, i: number): AuthRule {
  const jwt = r.principal.jwt;
  const key = r.principal.apiKey;
  return {
    name: `${qualified(p)}/${r.name ?? `rule-${i}`}`,
    action: r.action === 'Allow' ? 'AUTH_ALLOW' : 'AUTH_DENY',
    ...(nonEmpty(r.principal.clientCIDRs) && { clientCidrs: r.principal.clientCIDRs }),
    ...(r.operation !== undefined && { methods: r.operation.methods }),
    ...(jwt !== undefined && { jwtProvider: `${qualified(p)}/${jwt.provider}` }),
    ...(jwt?.scopes !== undefined && jwt.scopes.length > 0 && { jwtScopes: jwt.scopes }),
    ...(nonEmpty(jwt?.claims) && {
      jwtClaims: (jwt?.claims ?? []).map((c) => ({ name: c.name, values: c.values })),
    }),
    ...(key !== undefined && { apiKey: true }),
    ...(key?.scopes !== undefined && key.scopes.length > 0 && { apiKeyScopes: key.scopes }),
    ...(key?.clients !== undefined && key.clients.length > 0 && { apiKeyClients: key.clients }),
    ...(key?.plans !== undefined && key.plans.length > 0 && { plans: key.plans }),
  };
}

/** One SecurityPolicy → its `AuthPolicy` (provider names qualified as in `policyProviders`). */
export function authPolicyOf(p: Policy): AuthPolicy {
  const s = p.spec;
  const name = qualified(p);
  const cors = s.cors;
  return {
    name,
    ...(s.jwt !== undefined && {
      jwt: {
        providers: s.jwt.providers.map((j) => `${name}/${j.name}`),
        ...(s.jwt.optional === true && { optional: true }),
      },
    }),
    ...(s.apiKeyAuth !== undefined && {
      apiKey: {
        keySet: name,
        ...(s.apiKeyAuth.optional === true && { optional: true }),
        ...(s.apiKeyAuth.forwardClientIDHeader !== undefined && {
          forwardClientIdHeader: s.apiKeyAuth.forwardClientIDHeader,
        }),
        ...(s.apiKeyAuth.sanitize === true && { sanitize: true }),
      },
    }),
    defaultAction:
      s.authorization === undefined || s.authorization.defaultAction === 'Allow' ? 'AUTH_ALLOW' : 'AUTH_DENY',
    ...(nonEmpty(s.authorization?.rules) && {
      rules: (s.authorization?.rules ?? []).map((r, i) => authRule(p, r, i)),
    }),
    ...(cors !== undefined && {
      cors: {
        ...(nonEmpty(cors.allowOrigins) && { allowOrigins: cors.allowOrigins }),
        ...(nonEmpty(cors.allowMethods) && { allowMethods: cors.allowMethods }),
        ...(nonEmpty(cors.allowHeaders) && { allowHeaders: cors.allowHeaders }),
        ...(nonEmpty(cors.exposeHeaders) && { exposeHeaders: cors.exposeHeaders }),
        ...(cors.maxAge !== undefined &&
          parseDurationMs(cors.maxAge) >= 1000 && {
            maxAgeSeconds: Math.floor(parseDurationMs(cors.maxAge) / 1000),
          }),
        ...(cors.allowCredentials === true && { allowCredentials: true }),
      },
    }),
  };
}

/** The providers one SecurityPolicy declares (JWT providers and its API-key set). */
export function policyProviders(p: Policy): { jwt: JwtProvider[]; apiKeys: ApiKeySet[] } {
  return {
    jwt: (p.spec.jwt?.providers ?? []).map((j) => jwtProvider(p, j)),
    apiKeys: p.spec.apiKeyAuth === undefined ? [] : [apiKeySet(p, p.spec.apiKeyAuth)],
  };
}

function targets(p: Policy, kind: string, namespace: string, name: string): boolean {
  return namespaceOf(p) === namespace && p.spec.targetRefs.some((t) => t.kind === kind && t.name === name);
}

/**
 * The edge auth config for one Gateway and the routes attached to it. Pure: `policies` may be
 * every SecurityPolicy of the mesh (those that target neither the Gateway nor one of `routes` are
 * ignored), in any order.
 *
 * The caller (the gateway translation) puts `providers` and `listenerAuth` on every listener of
 * the Gateway and `routeAuth.get(<kind>/<ns>/<name>)` on every proxy Route made from that route
 * (`attachEdgeAuth` does both).
 */
export function translateSecurityPolicies(
  policies: readonly Policy[],
  gateway: { readonly namespace: string; readonly name: string },
  routes: readonly AttachedRoute[],
): GatewayEdgeAuth {
  const ordered = [...policies].sort(compareResources);
  const conflicts: string[] = [];
  const winner = (kind: string, namespace: string, name: string): Policy | undefined => {
    const all = ordered.filter((p) => targets(p, kind, namespace, name));
    for (const loser of all.slice(1)) {
      conflicts.push(
        `${qualified(loser)}: ${kind} ${namespace}/${name} already has SecurityPolicy ${qualified(all[0] as Policy)}`,
      );
    }
    return all[0];
  };
  const used: Policy[] = [];
  const gatewayPolicy = winner('Gateway', gateway.namespace, gateway.name);
  if (gatewayPolicy !== undefined) used.push(gatewayPolicy);
  const routeAuth = new Map<string, AuthPolicy>();
  const seen = new Set<string>();
  for (const r of routes) {
    const key = `${r.kind}/${r.namespace}/${r.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const p = winner(r.kind, r.namespace, r.name);
    if (p === undefined) continue;
    routeAuth.set(key, authPolicyOf(p));
    if (!used.includes(p)) used.push(p);
  }
  const jwt: JwtProvider[] = [];
  const apiKeys: ApiKeySet[] = [];
  for (const p of used.sort(compareResources)) {
    const declared = policyProviders(p);
    jwt.push(...declared.jwt);
    apiKeys.push(...declared.apiKeys);
  }
  const providers: AuthProviders | undefined =
    jwt.length + apiKeys.length === 0
      ? undefined
      : { ...(jwt.length > 0 && { jwtProviders: jwt }), ...(apiKeys.length > 0 && { apiKeySets: apiKeys }) };
  return {
    providers,
    listenerAuth: gatewayPolicy === undefined ? undefined : authPolicyOf(gatewayPolicy),
    routeAuth,
    conflicts,
  };
}

/**
 * Applies `auth` to a gateway listener and its routes: `providers`/`listenerAuth` on the
 * listener; on each route, the policy of the user route it came from. `routeOf` tells which
 * (`<kind>/<ns>/<name>`, or undefined for a route made from none, e.g. a default route).
 * Returns new objects; the inputs are not touched.
 */
export function attachEdgeAuth(
  auth: GatewayEdgeAuth,
  listener: Listener,
  routes: readonly Route[],
  routeOf: (route: Route) => string | undefined,
): { readonly listener: Listener; readonly routes: Route[] } {
  return {
    listener: {
      ...listener,
      ...(auth.providers !== undefined && { authProviders: auth.providers }),
      ...(auth.listenerAuth !== undefined && { auth: auth.listenerAuth }),
    },
    routes: routes.map((r) => {
      const key = routeOf(r);
      const policy = key === undefined ? undefined : auth.routeAuth.get(key);
      return policy === undefined ? r : { ...r, auth: policy };
    }),
  };
}
