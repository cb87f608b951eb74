/**
 * Edge limits of GATEWAY listeners (issue 7), assembled per config version: the body limit, the
 * rate limits and the response cache, in that order, after the auth filters.
 *
 * `EdgeLimits` lives as long as the proxy: the rate limit counters (limiters.ts) and each
 * listener's response store survive config versions (a store is rebuilt only when its byte budget
 * changes), so a reload does not reset limits or empty caches. `create` (or `filtersFor`, with the
 * route table at hand) compiles a listener's filters, throwing `EdgeConfigError` on a bad value,
 * before anything is swapped; `commit` then installs the version's global store (Redis), so a
 * rejected version changes nothing; `close` closes the Redis client.
 *
 * Non-GATEWAY listeners get no edge filters; edge settings on them are rejected.
 */
import type { ProxyConfig } from '../../../sidecar/proxy/config/model.ts';
import type { Listener, RouteConfiguration } from '../../../sidecar/proxy/config/types.ts';
import type { HttpFilter } from '../../../sidecar/proxy/filters/filter.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';
import type { RouteTable } from '../../../sidecar/proxy/router/types.ts';
import { BodyLimitFilter } from './body-limit.ts';
import { CacheFilter, DEFAULT_CACHE_MAX_BYTES, ResponseStore } from './cache.ts';
import { LimiterStore } from './limiters.ts';
import { compileRateLimits, EdgeConfigError, RateLimitFilter } from './ratelimit.ts';
import { DEFAULT_CACHE_ENTRY_BYTES, EdgeRoutes, eachRoute } from './routes.ts';

export { EdgeConfigError } from './ratelimit.ts';

export class EdgeLimits {
  /** For errors and logs (the shape of a per-listener filter factory). */
  readonly name = 'weft.filters.http.edge_limits';
  /** The edge fields these filters honour (see `ListenerFilterFactory.handles`). */
  readonly handles = ['rateLimits', 'maxRequestBodyBytes', 'responseCacheMaxBytes', 'cache'] as const;
  readonly #limiters = new LimiterStore();
  readonly #stores = new Map<string, ResponseStore>();

  /**
   * The edge filters of `listener` under `config` ([] for a non-GATEWAY listener that sets nothing);
   * compiles the listener's route table for the per-route settings. Throws `EdgeConfigError`.
   */
  create(listener: Listener, config: ProxyConfig, routeTable?: RouteTable): HttpFilter[] {
    const rc = config.routes.find((r) => r.name === listener.routeConfigName);
    const table =
      listener.direction === 'GATEWAY' && rc !== undefined
        ? (routeTable ?? compileRouteTable(rc))
        : undefined;
    return this.filtersFor(listener, rc, table);
  }

  /**
   * The edge filters of `listener` (with its route config `rc` compiled into `table`), or [] for a
   * listener that is not GATEWAY and sets nothing. Throws `EdgeConfigError` for a bad value, or edge
   * settings on a non-GATEWAY listener.
   */
  filtersFor(
    listener: Listener,
    rc: RouteConfiguration | undefined,
    table: RouteTable | undefined,
  ): HttpFilter[] {
    const gateway = listener.direction === 'GATEWAY';
    const routeSetsEdge = (rc?.virtualHosts ?? []).some((vh) =>
      (vh.routes ?? []).some(
        (r) => (r.rateLimits?.length ?? 0) > 0 || r.cache !== undefined || (r.maxRequestBodyBytes ?? 0) > 0,
      ),
    );
    if (!gateway) {
      if ((listener.rateLimits?.length ?? 0) > 0 || (listener.maxRequestBodyBytes ?? 0) > 0) {
        throw new EdgeConfigError('rateLimits', 'edge limits apply to GATEWAY listeners only');
      }
      if (routeSetsEdge) {
        throw new EdgeConfigError(
          `routeConfigName`,
          `routes of "${listener.routeConfigName}" set edge limits (rateLimits, cache, maxRequestBodyBytes), which apply to GATEWAY listeners only`,
        );
      }
      return [];
    }
    if (rc === undefined || table === undefined) return [];
    const scope = listener.name;
    const listenerRules = compileRateLimits(
      listener.rateLimits,
      'rateLimits',
      { listener: scope },
      this.#limiters,
    );
    const routes = new EdgeRoutes(
      table,
      eachRoute(rc, (route, name, field) => {
        const maxEntry = route.cache?.maxEntryBytes;
        return {
          name,
          rateLimits: compileRateLimits(
            route.rateLimits,
            `${field}.rateLimits`,
            { listener: scope, route: name },
            this.#limiters,
          ),
          cacheMaxEntryBytes: route.cache === undefined ? undefined : maxEntry || DEFAULT_CACHE_ENTRY_BYTES,
          maxRequestBodyBytes: route.maxRequestBodyBytes ?? 0,
        };
      }),
    );
    const filters: HttpFilter[] = [new BodyLimitFilter(routes, listener.maxRequestBodyBytes ?? 0)];
    if (RateLimitFilter.needed(listenerRules, routes)) {
      filters.push(new RateLimitFilter(listenerRules, routes, this.#limiters));
    }
    if (routes.any((r) => r.cacheMaxEntryBytes !== undefined)) {
      filters.push(new CacheFilter(routes, this.#storeFor(listener)));
    }
    return filters;
  }

  #storeFor(listener: Listener): ResponseStore {
    const budget = listener.responseCacheMaxBytes || DEFAULT_CACHE_MAX_BYTES;
    let store = this.#stores.get(listener.name);
    if (store === undefined || store.maxBytes !== budget) {
      store = new ResponseStore(budget);
      this.#stores.set(listener.name, store);
    }
    return store;
  }

  /** Installs the version's global rate limit store and forgets the stores of removed listeners. */
  commit(config: ProxyConfig): void {
    this.#limiters.configure(config.rateLimitService);
    const names = new Set(config.listeners.map((l) => l.name));
    for (const name of this.#stores.keys()) if (!names.has(name)) this.#stores.delete(name);
  }

  /** Closes the Redis client, if any. */
  close(): void {
    this.#limiters.close();
  }
}
