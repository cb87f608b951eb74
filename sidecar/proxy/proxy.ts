/**
 * The proxy core assembled: listeners, compiled route tables and the cluster manager, for one
 * config version at a time. Used alike by the sidecar and the gateway (which adds filters).
 *
 * `apply` is all or nothing: the new config is checked and compiled completely before anything
 * is swapped; on any problem it throws `ConfigError` and the last good config keeps serving.
 * Route tables are immutable; a listener picks up the new state for requests that start after
 * the swap, and in-flight requests finish on the state they started with.
 */
import { ConfigError } from './config/errors.ts';
import type { ProxyConfig } from './config/model.ts';
import type { RouteConfiguration } from './config/types.ts';
import { checkConsistency } from './config/validate.ts';
import type { HttpFilter } from './filters/filter.ts';
import { type BoundAddress, HttpListener } from './http/listener.ts';
import { compileRouteTable } from './router/compile.ts';
import type { RouteTable } from './router/types.ts';
import { ClusterManager } from './upstream/cluster-manager.ts';

export interface ProxyOptions {
  /** Filters run before the router on every listener, in order. */
  readonly filters?: readonly HttpFilter[];
}

/** A listener's bound socket, for logs and `/config_dump`. */
export interface ListenerStatus extends BoundAddress {
  readonly name: string;
  readonly direction: string;
}

export class ProxyCore {
  readonly #filters: readonly HttpFilter[];
  readonly #clusters = new ClusterManager();
  readonly #listeners = new Map<string, HttpListener>();
  readonly #bound = new Map<string, BoundAddress>();
  #config: ProxyConfig | undefined;
  #version = '';

  constructor(options: ProxyOptions = {}) {
    this.#filters = options.filters ?? [];
  }

  /** The version of the config in force ('' before the first apply). */
  get version(): string {
    return this.#version;
  }

  /** The config in force, or undefined before the first apply. */
  get config(): ProxyConfig | undefined {
    return this.#config;
  }

  /**
   * Checks, compiles and swaps in `config` as `version`, binding new listeners and closing
   * removed ones. Throws `ConfigError` (nothing changed) when the config is invalid; throws the
   * socket error when a new listener cannot bind (the listeners that did bind stay).
   */
  async apply(config: ProxyConfig, version: string): Promise<void> {
    const problems = checkConsistency(config);
    const tables = new Map<string, RouteTable>();
    for (const rc of config.routes) {
      try {
        tables.set(rc.name, compileRouteTable(rc as RouteConfiguration));
      } catch (err) {
        problems.push(`RouteConfiguration ${rc.name}: ${(err as Error).message}`);
      }
    }
    if (problems.length === 0) {
      try {
        this.#clusters.update(config.clusters, config.endpoints);
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    if (problems.length > 0) throw new ConfigError(problems, `config version ${version}`);

    const stateFor = (routeConfigName: string) => ({
      routeTable: tables.get(routeConfigName) as RouteTable,
      clusters: this.#clusters,
      filters: this.#filters,
    });
    const wanted = new Set(config.listeners.map((l) => l.name));
    for (const [name, listener] of this.#listeners) {
      if (!wanted.has(name)) {
        this.#listeners.delete(name);
        this.#bound.delete(name);
        await listener.close();
      }
    }
    for (const l of config.listeners) {
      const existing = this.#listeners.get(l.name);
      if (existing && existing.config.address === l.address && existing.config.port === l.port) {
        existing.setState(stateFor(l.routeConfigName));
        continue;
      }
      if (existing) await existing.close();
      const listener = new HttpListener(l, stateFor(l.routeConfigName));
      this.#bound.set(l.name, await listener.listen());
      this.#listeners.set(l.name, listener);
    }
    this.#config = config;
    this.#version = version;
  }

  /** Bound listeners, in config order. */
  listeners(): ListenerStatus[] {
    return [...this.#listeners.values()].map((l) => ({
      name: l.config.name,
      direction: l.config.direction ?? 'TRAFFIC_DIRECTION_UNSPECIFIED',
      ...(this.#bound.get(l.config.name) as BoundAddress),
    }));
  }

  /** Requests in flight across all listeners. */
  get inflight(): number {
    let n = 0;
    for (const l of this.#listeners.values()) n += l.inflight;
    return n;
  }

  /** JSON-able view of the config in force, for the admin `/config_dump`. */
  dump(): Record<string, unknown> {
    return {
      version: this.#version,
      listeners: this.listeners(),
      config: this.#config ?? null,
      clusters: this.#clusters.snapshot(),
    };
  }

  /** Drains every listener (up to `drainMs` each, concurrently), then closes upstream pools. */
  async close(drainMs?: number): Promise<void> {
    await Promise.all([...this.#listeners.values()].map((l) => l.close(drainMs)));
    this.#listeners.clear();
    await this.#clusters.close();
  }
}
