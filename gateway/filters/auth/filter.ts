/**
 * The edge authentication filter (`weft.filters.http.edge_auth`): SecurityPolicy enforcement on
 * the proxy core (JWT, API keys, IP allow/deny, CORS, forwarded identity; see policy.ts).
 *
 * Built per listener and config version from the listener's `authProviders` and `auth`, and the
 * `auth` of the routes of its RouteConfiguration. For each request it
 * 1. removes the identity headers (`x-weft-principal`, `x-weft-auth`, `x-weft-client-id`,
 *    `x-weft-plan`) and every header some policy of the listener sets (claimToHeaders,
 *    forwardClientIdHeader) from what goes upstream: only the edge says who the caller is;
 * 2. picks the policy: the matched route's `auth`, else the listener's (also for requests that
 *    match no route); none → continue. The route is matched here with the listener's compiled
 *    table (the same match the router makes later: filters never change what routing reads);
 * 3. enforces it (policy.ts).
 * A listener runs it when it has `authProviders` or `auth`, some route has `auth`, or its
 * direction is GATEWAY (which always strips the identity headers).
 */
import type { Listener, RouteConfiguration } from '../../../sidecar/proxy/config/types.ts';
import { CONTINUE, type FilterResult, type HttpFilter } from '../../../sidecar/proxy/filters/filter.ts';
import type { RequestContext } from '../../../sidecar/proxy/http/context.ts';
import type { RouteTable } from '../../../sidecar/proxy/router/types.ts';
import { type CompiledApiKeySet, compileApiKeySet } from './apikey.ts';
import { EdgeAuthConfigError } from './config-error.ts';
import type { JwksRegistry } from './jwks.ts';
import { type CompiledJwtProvider, compileJwtProvider } from './jwt.ts';
import {
  type CompiledPolicy,
  compilePolicy,
  enforce,
  IDENTITY_HEADERS,
  type ProviderIndex,
} from './policy.ts';

export const EDGE_AUTH_FILTER_NAME = 'weft.filters.http.edge_auth';

class EdgeAuthFilter implements HttpFilter {
  readonly name = EDGE_AUTH_FILTER_NAME;
  readonly #strip: readonly string[];
  readonly #listenerPolicy: CompiledPolicy | undefined;
  /** Route policies by `<virtual host>\0<route name>` (as the router names them). */
  readonly #routePolicies: ReadonlyMap<string, CompiledPolicy>;
  readonly #table: RouteTable | undefined;

  constructor(
    strip: readonly string[],
    listenerPolicy: CompiledPolicy | undefined,
    routePolicies: ReadonlyMap<string, CompiledPolicy>,
    table: RouteTable | undefined,
  ) {
    this.#strip = strip;
    this.#listenerPolicy = listenerPolicy;
    this.#routePolicies = routePolicies;
    this.#table = table;
  }

  onRequest(ctx: RequestContext): FilterResult | Promise<FilterResult> {
    const h = ctx.upstreamHeaders;
    for (const name of this.#strip) delete h[name];
    let policy = this.#listenerPolicy;
    const rr = ctx.routeRequest;
    if (this.#routePolicies.size > 0 && this.#table !== undefined && rr !== undefined) {
      const match = this.#table.match(rr);
      if (match !== undefined)
        policy = this.#routePolicies.get(`${match.virtualHost}\0${match.routeName}`) ?? policy;
    }
    return policy === undefined ? CONTINUE : enforce(policy, ctx);
  }
}

/** Whether `listener` (with its route config) needs the edge auth filter. */
export function needsEdgeAuth(listener: Listener, routes: RouteConfiguration | undefined): boolean {
  if (listener.direction === 'GATEWAY' || listener.authProviders !== undefined || listener.auth !== undefined)
    return true;
  return (routes?.virtualHosts ?? []).some((vh) => (vh.routes ?? []).some((r) => r.auth !== undefined));
}

/**
 * Compiles the edge auth filter of `listener`; `routes` is its RouteConfiguration and `table`
 * that config compiled (both undefined when it has none). Remote JWKS come from `registry`.
 * @throws EdgeAuthConfigError naming the field (`authProviders.jwtProviders[0].algorithms[0]`,
 *   `routes[r/vh/rule-0].auth.rules[1].clientCidrs[0]`, …) and the reason.
 */
export function createEdgeAuthFilter(
  listener: Listener,
  routes: RouteConfiguration | undefined,
  table: RouteTable | undefined,
  registry: JwksRegistry,
): HttpFilter {
  const jwt = new Map<string, CompiledJwtProvider>();
  (listener.authProviders?.jwtProviders ?? []).forEach((p, i) => {
    const field = `authProviders.jwtProviders[${i}]`;
    if (jwt.has(p.name)) throw new EdgeAuthConfigError(`${field}.name`, `duplicate provider ${p.name}`);
    jwt.set(p.name, compileJwtProvider(p, field, registry));
  });
  const apiKeys = new Map<string, CompiledApiKeySet>();
  (listener.authProviders?.apiKeySets ?? []).forEach((s, i) => {
    const field = `authProviders.apiKeySets[${i}]`;
    if (apiKeys.has(s.name)) throw new EdgeAuthConfigError(`${field}.name`, `duplicate key set ${s.name}`);
    apiKeys.set(s.name, compileApiKeySet(s, field));
  });
  const index: ProviderIndex = { jwt, apiKeys };
  const strip = new Set<string>(IDENTITY_HEADERS);
  const listenerPolicy =
    listener.auth === undefined ? undefined : compilePolicy(listener.auth, 'auth', index);
  for (const h of listenerPolicy?.setsHeaders ?? []) strip.add(h);
  const routePolicies = new Map<string, CompiledPolicy>();
  (routes?.virtualHosts ?? []).forEach((vh, i) => {
    const vhostName = vh.name || `virtualHosts[${i}]`;
    (vh.routes ?? []).forEach((r, j) => {
      if (r.auth === undefined) return;
      const routeName = r.name || `${vhostName}/routes[${j}]`;
      const key = `${vhostName}\0${routeName}`;
      const field = `RouteConfiguration ${routes?.name} virtualHost ${vhostName} route ${routeName}: auth`;
      if (routePolicies.has(key)) {
        throw new EdgeAuthConfigError(
          field,
          'two routes of this virtual host share the name; auth needs unique names',
        );
      }
      const policy = compilePolicy(r.auth, field, index);
      for (const h of policy.setsHeaders) strip.add(h);
      routePolicies.set(key, policy);
    });
  });
  return new EdgeAuthFilter([...strip], listenerPolicy, routePolicies, table);
}

/** Every remote JWKS URI `listener` names (to keep their caches across config versions). */
export function jwksUris(listener: Listener): string[] {
  const out: string[] = [];
  for (const p of listener.authProviders?.jwtProviders ?? []) {
    if (!p.remoteJwksUri) continue;
    try {
      out.push(new URL(p.remoteJwksUri).href);
    } catch {
      // invalid: compile reports it
    }
  }
  return out;
}
