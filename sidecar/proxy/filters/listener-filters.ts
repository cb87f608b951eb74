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
 * name); `close` runs once when the proxy closes.
 */
import type { ProxyConfig } from '../config/model.ts';
import type { Listener } from '../config/types.ts';
import type { HttpFilter } from './filter.ts';

export interface ListenerFilterFactory {
  /** For errors and logs, e.g. `weft.filters.http.jwt`. */
  readonly name: string;
  /**
   * The filters `listener` runs under `config` ([] when the factory has nothing to do there).
   * @throws Error naming the listener field and the reason, for config it cannot honour.
   */
  create(listener: Listener, config: ProxyConfig): readonly HttpFilter[];
  /** Releases timers, connections, caches. */
  close?(): void | Promise<void>;
}
