/**
 * Telemetry of the edge limits, through `diagnostics_channel` like the rest of the proxy:
 *
 * - `weft:ratelimit` — one `RateLimitEvent` per request that had at least one rate limit rule to
 *   apply: its route, the combined result and the client's plan (a configured, bounded set; never a
 *   client id);
 * - `weft:ratelimit:store` — a `StoreStateEvent` when the global store (Redis) is lost or back;
 * - `weft:cache` — a `CacheEvent` per cacheable request (hit / miss / bypass) and per stored entry.
 *
 * `registerEdgeMetrics` turns them into Prometheus metrics on a registry:
 * `weft_ratelimit_decisions_total{route, result, plan}` (result: allowed | limited | failed_open |
 * failed_closed), `weft_ratelimit_store_up` (1 reachable, 0 not; only once a store is configured),
 * `weft_cache_lookups_total{route, result}` and `weft_cache_stored_total{route}`.
 * `logEdgeEvents` writes one log line per store state change.
 */
import diagnostics from 'node:diagnostics_channel';
import { Counter, Gauge, type Registry } from 'prom-client';

export type RateLimitResult = 'allowed' | 'limited' | 'failed_open' | 'failed_closed';

export interface RateLimitEvent {
  readonly route: string;
  readonly result: RateLimitResult;
  readonly plan: string;
}

export interface StoreStateEvent {
  readonly up: boolean;
  /** Why the store is down ('' when up). */
  readonly reason: string;
  readonly failMode: 'FAIL_OPEN' | 'FAIL_CLOSED';
}

export interface CacheEvent {
  readonly route: string;
  readonly result: 'hit' | 'miss' | 'stored';
}

export const rateLimitChannel = diagnostics.channel('weft:ratelimit');
export const storeChannel = diagnostics.channel('weft:ratelimit:store');
export const cacheChannel = diagnostics.channel('weft:cache');

export function publishRateLimit(route: string, result: RateLimitResult, plan: string): void {
  if (rateLimitChannel.hasSubscribers) {
    rateLimitChannel.publish({ route, result, plan } satisfies RateLimitEvent);
  }
}

export function publishStoreState(event: StoreStateEvent): void {
  if (storeChannel.hasSubscribers) storeChannel.publish(event);
}

export function publishCache(route: string, result: CacheEvent['result']): void {
  if (cacheChannel.hasSubscribers) cacheChannel.publish({ route, result } satisfies CacheEvent);
}

/** Registers the edge metrics on `registry` and subscribes them; returns the unsubscribe. */
export function registerEdgeMetrics(registry: Registry): () => void {
  const decisions = new Counter({
    name: 'weft_ratelimit_decisions_total',
    help: 'Rate limit decisions by route, result (allowed, limited, failed_open, failed_closed) and client plan.',
    labelNames: ['route', 'result', 'plan'],
    registers: [registry],
  });
  const storeUp = new Gauge({
    name: 'weft_ratelimit_store_up',
    help: 'Whether the global rate limit store (Redis) answers: 1 yes, 0 no.',
    registers: [registry],
  });
  const lookups = new Counter({
    name: 'weft_cache_lookups_total',
    help: 'Response cache lookups of cacheable requests, by route and result (hit, miss).',
    labelNames: ['route', 'result'],
    registers: [registry],
  });
  const stored = new Counter({
    name: 'weft_cache_stored_total',
    help: 'Responses stored in the response cache, by route.',
    labelNames: ['route'],
    registers: [registry],
  });
  const onDecision = (message: unknown): void => {
    const e = message as RateLimitEvent;
    decisions.inc({ route: e.route, result: e.result, plan: e.plan });
  };
  const onStore = (message: unknown): void => storeUp.set((message as StoreStateEvent).up ? 1 : 0);
  const onCache = (message: unknown): void => {
    const e = message as CacheEvent;
    if (e.result === 'stored') stored.inc({ route: e.route });
    else lookups.inc({ route: e.route, result: e.result });
  };
  rateLimitChannel.subscribe(onDecision);
  storeChannel.subscribe(onStore);
  cacheChannel.subscribe(onCache);
  return () => {
    rateLimitChannel.unsubscribe(onDecision);
    storeChannel.unsubscribe(onStore);
    cacheChannel.unsubscribe(onCache);
  };
}

/** Minimal logger surface (pino's). */
interface EdgeLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** Logs every store state change (warn when lost, with the fail mode in force); returns the unsubscribe. */
export function logEdgeEvents(logger: EdgeLogger): () => void {
  const onStore = (message: unknown): void => {
    const e = message as StoreStateEvent;
    if (e.up) logger.info({ component: 'ratelimit' }, 'rate limit store reachable again');
    else {
      logger.warn(
        { component: 'ratelimit', reason: e.reason, failMode: e.failMode },
        `rate limit store unreachable: global limits ${e.failMode === 'FAIL_CLOSED' ? 'fail closed (503)' : 'fail open (requests pass)'}`,
      );
    }
  };
  storeChannel.subscribe(onStore);
  return () => storeChannel.unsubscribe(onStore);
}
