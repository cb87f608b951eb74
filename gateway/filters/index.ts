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
import type { HttpFilter } from '../../sidecar/proxy/filters/filter.ts';
import type { ListenerFilterFactory } from '../../sidecar/proxy/filters/listener-filters.ts';
import type { Logger } from '../../sidecar/proxy/telemetry/logger.ts';
import { forwardedProtoFilter } from './forwarded-proto.ts';

/** What an edge filter factory may use. */
export interface EdgeFilterContext {
  readonly logger: Logger;
}

/** Filters run on every request of every gateway listener, before the per-listener ones. */
export function gatewayFilters(): HttpFilter[] {
  return [forwardedProtoFilter];
}

/** The per-listener edge filter factories, in chain order. */
export function edgeFilterFactories(_ctx: EdgeFilterContext): ListenerFilterFactory[] {
  return [
    // edgeauth: SecurityPolicy (IP allow/deny, CORS, JWT, API keys, forwarded identity) here.
    // edgelimits: RateLimitPolicy, body size limits, response caching here.
  ];
}
