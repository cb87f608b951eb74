/**
 * The gateway's filters. Two kinds:
 * - global filters (`gatewayFilters`): run first on every gateway listener, config-independent;
 * - edge filter factories (`edgeFilterFactories`): build each GATEWAY listener's own filters from
 *   its config (ProxyCore `listenerFilters`, sidecar/proxy/filters/listener-filters.ts), in the
 *   order listed here. Authentication (SecurityPolicy: IP rules, CORS, JWT, API keys, forwarded
 *   identity) comes before rate limits, body limits and caching, so limits can key on the
 *   authenticated client. Add a factory by appending it below; a factory that throws on a
 *   listener's config makes the gateway NACK that config and keep its last good one.
 */
import type { ProxyConfig } from '../../sidecar/proxy/config/model.ts';
import type { Listener } from '../../sidecar/proxy/config/types.ts';
import type { HttpFilter } from '../../sidecar/proxy/filters/filter.ts';
import type { ListenerFilterFactory } from '../../sidecar/proxy/filters/listener-filters.ts';
import type { RouteTable } from '../../sidecar/proxy/router/types.ts';
import type { Logger } from '../../sidecar/proxy/telemetry/logger.ts';
import { createEdgeAuthFilter, EDGE_AUTH_FILTER_NAME, jwksUris, needsEdgeAuth } from './auth/filter.ts';
import { JwksRegistry } from './auth/jwks.ts';
import { forwardedProtoFilter } from './forwarded-proto.ts';
import { EdgeLimits } from './limits/edge.ts';

/** What an edge filter factory may use. */
export interface EdgeFilterContext {
  readonly logger: Logger;
}

/** Filters run on every request of every gateway listener, before the per-listener ones. */
export function gatewayFilters(): HttpFilter[] {
  return [forwardedProtoFilter];
}

/**
 * SecurityPolicy at the edge (auth/): IP allow/deny, CORS, JWT, API keys, forwarded identity. The
 * remote JWKS caches outlive config versions; those no listener names any more are dropped at
 * each commit.
 */
export function edgeAuthFactory(): ListenerFilterFactory {
  const jwks = new JwksRegistry();
  return {
    name: EDGE_AUTH_FILTER_NAME,
    handles: ['authProviders', 'auth'],
    create(listener: Listener, config: ProxyConfig, table: RouteTable | undefined): HttpFilter[] {
      const rc = config.routes.find((r) => r.name === listener.routeConfigName);
      return needsEdgeAuth(listener, rc) ? [createEdgeAuthFilter(listener, rc, table, jwks)] : [];
    },
    commit(config: ProxyConfig): void {
      jwks.retain(new Set(config.listeners.flatMap(jwksUris)));
    },
  };
}

/** The per-listener edge filter factories, in chain order: authentication, then the limits (limits/). */
export function edgeFilterFactories(_ctx: EdgeFilterContext): ListenerFilterFactory[] {
  return [edgeAuthFactory(), new EdgeLimits()];
}
