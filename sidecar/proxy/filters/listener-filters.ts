/**
 * Per-listener filter chains built from the listener's own config: the hook through which a
 * proxy role adds filters that read `Listener` fields (the gateway's edge filters: auth, rate
 * limits, caching, ...). The RBAC filter (rbac.ts) is built the same way by the core itself.
 *
 * `ProxyCore.apply` calls every factory for every listener of a new config, in factory order,
 * before anything is swapped in: a factory that throws rejects the whole config (NACK, the last
 * good config keeps serving). The chain of a listener is then: the proxy's global filters, the
 * factories' filters in order, the listener's RBAC filter, and the router last.
 *
 * Factories may keep state across config versions (e.g. rate-limit buckets keyed by listener
 * name); `commit` runs once a version is accepted and swapped in (a rejected version never reaches
 * it, so state that must follow only good versions is installed there); `close` runs once when
 * the proxy closes.
 */
import type { ProxyConfig } from '../config/model.ts';
import type { Listener } from '../config/types.ts';
import type { RouteTable } from '../router/types.ts';
import type { HttpFilter } from './filter.ts';

export interface ListenerFilterFactory {
  /** For errors and logs, e.g. `weft.filters.http.jwt`. */
  readonly name: string;
  /**
   * The filters `listener` runs under `config` ([] when the factory has nothing to do there).
   * @throws Error naming the listener field and the reason, for config it cannot honour.
   */
  create(listener: Listener, config: ProxyConfig, routeTable: RouteTable | undefined): readonly HttpFilter[];
  /**
   * The edge fields (`EDGE_LISTENER_FIELDS`, `EDGE_ROUTE_FIELDS`) this factory honours. A config
   * that sets an edge field no factory of the proxy honours is rejected (a sidecar given a
   * gateway's JWT policy must not silently serve without it).
   */
  readonly handles?: readonly string[];
  /** The version `config` is now in force (called after every listener's `create` succeeded). */
  commit?(config: ProxyConfig): void;
  /** Releases timers, connections, caches. */
  close?(): void | Promise<void>;
}

/** Listener fields that only a role's filter factories act on (the gateway's edge filters). */
export const EDGE_LISTENER_FIELDS = [
  'authProviders',
  'auth',
  'rateLimits',
  'maxRequestBodyBytes',
  'responseCacheMaxBytes',
] as const;
/** Route fields that only a role's filter factories act on. */
export const EDGE_ROUTE_FIELDS = ['auth', 'rateLimits', 'cache', 'maxRequestBodyBytes'] as const;

/**
 * The edge fields `listener` (and the routes of its route configuration) set that none of
 * `factories` honours, as `Listener <name>: …` problems ([] when there are none).
 */
export function unhandledEdgeFields(
  listener: Listener,
  config: ProxyConfig,
  factories: readonly ListenerFilterFactory[],
): string[] {
  const handled = new Set(factories.flatMap((f) => f.handles ?? []));
  const problems: string[] = [];
  const fields = listener as unknown as Readonly<Record<string, unknown>>;
  for (const field of EDGE_LISTENER_FIELDS) {
    if (fields[field] !== undefined && !handled.has(field)) {
      problems.push(
        `Listener ${listener.name}: ${field} is an edge setting this proxy does not apply (use weft gateway)`,
      );
    }
  }
  const rc = config.routes.find((r) => r.name === listener.routeConfigName);
  for (const vh of rc?.virtualHosts ?? []) {
    for (const route of vh.routes ?? []) {
      const r = route as unknown as Readonly<Record<string, unknown>>;
      for (const field of EDGE_ROUTE_FIELDS) {
        const v = r[field];
        if (v !== undefined && !(Array.isArray(v) && v.length === 0) && !handled.has(field)) {
          problems.push(
            `Listener ${listener.name}: route ${route.name ?? '?'} sets ${field}, an edge setting this proxy does not apply (use weft gateway)`,
          );
        }
      }
    }
  }
  return problems;
}
