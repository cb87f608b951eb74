/**
 * Per-route edge settings of one listener (rate limits, cache, body limit), found by the route the
 * request matches. Filters run before the router, so the first edge filter that needs the route
 * matches the request once and leaves the result on `ctx.routeMatch`; the router reuses it.
 *
 * Routes are told apart by virtual host and route name, named as the router names them
 * (`route.name`, else `<vhost>/routes[<i>]`; a virtual host without a name is `virtualHosts[<i>]`).
 */
import type { Route, RouteConfiguration } from '../../../sidecar/proxy/config/types.ts';
import type { RequestContext } from '../../../sidecar/proxy/http/context.ts';
import type { RouteTable } from '../../../sidecar/proxy/router/types.ts';
import type { CompiledRule } from './ratelimit.ts';

/** What the edge filters know of one route. */
export interface EdgeRoute {
  readonly name: string;
  readonly rateLimits: readonly CompiledRule[];
  /** Largest body stored by the cache (bytes); undefined when the route does not cache. */
  readonly cacheMaxEntryBytes: number | undefined;
  /** Largest request body (bytes). */
  readonly maxRequestBodyBytes: number;
}

/** Default for `ResponseCachePolicy.maxEntryBytes`. */
export const DEFAULT_CACHE_ENTRY_BYTES = 1024 * 1024;

/** Calls `build` for every route of `rc`, with its router name and config path. */
export function eachRoute(
  rc: RouteConfiguration,
  build: (route: Route, name: string, field: string) => EdgeRoute,
): Map<string, EdgeRoute> {
  const out = new Map<string, EdgeRoute>();
  (rc.virtualHosts ?? []).forEach((vh, i) => {
    const vhostName = vh.name || `virtualHosts[${i}]`;
    (vh.routes ?? []).forEach((route, j) => {
      const name = route.name || `${vhostName}/routes[${j}]`;
      out.set(`${vhostName}\0${name}`, build(route, name, `virtualHosts[${vhostName}].routes[${name}]`));
    });
  });
  return out;
}

export class EdgeRoutes {
  readonly #table: RouteTable;
  readonly #routes: ReadonlyMap<string, EdgeRoute>;

  constructor(table: RouteTable, routes: ReadonlyMap<string, EdgeRoute>) {
    this.#table = table;
    this.#routes = routes;
  }

  /** The matched route's edge settings (matching once per request), or undefined (no route). */
  lookup(ctx: RequestContext): EdgeRoute | undefined {
    let match = ctx.routeMatch;
    if (match === undefined) {
      const rr = ctx.routeRequest;
      if (rr === undefined) return undefined;
      match = this.#table.match(rr);
      if (match === undefined) return undefined;
      ctx.routeMatch = match;
    }
    return this.#routes.get(`${match.virtualHost}\0${match.routeName}`);
  }

  /** Whether some route satisfies `test`. */
  any(test: (route: EdgeRoute) => boolean): boolean {
    for (const r of this.#routes.values()) if (test(r)) return true;
    return false;
  }
}
