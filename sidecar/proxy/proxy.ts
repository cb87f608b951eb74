/**
 * The proxy core assembled: listeners, compiled route tables and the cluster manager, for one
 * config version at a time. Used alike by the sidecar and the gateway (which adds filters).
 * A listener's chain is: the global filters, the filters the `listenerFilters` factories build
 * from its config (filters/listener-filters.ts; the gateway's edge filters), its own RBAC filter
 * (filters/rbac.ts) when it has `rbac`, then the router. A listener with `serverTls` terminates
 * TLS with SNI-selected server certificates (http/server-tls.ts) instead of mesh mTLS.
 *
 * `apply` is all or nothing: the new config is checked and compiled completely before anything
 * is swapped; on any problem it throws `ConfigError` and the last good config keeps serving.
 * Route tables are immutable; a listener picks up the new state for requests that start after
 * the swap, and in-flight requests finish on the state they started with.
 *
 * Identity (`setIdentity`): the proxy's certificate comes from the local identity client (or
 * `--cert/--key`), never from the config. Each identity, and each config whose trust bundle
 * differs, yields one immutable `TlsMaterial` (identity.ts) swapped in as a whole: listeners call
 * `setSecureContext` and upstream connectors read it per connection, so new handshakes use it at
 * once. A new certificate retires downstream connections made with the old one (gracefully, see
 * http/tls.ts) and moves mTLS upstream endpoints to fresh pools (old ones close when idle).
 * A config that asks for TLS before any identity is set still applies: TLS listeners then refuse
 * every handshake (PERMISSIVE ones still take plain text) and mTLS clusters fail to connect (503
 * UPSTREAM_CONNECT_FAILURE) until `setIdentity`; `identityReady` says whether that is the case.
 */
import { ConfigError } from './config/errors.ts';
import type { ProxyConfig } from './config/model.ts';
import type { Listener, RouteConfiguration } from './config/types.ts';
import { checkConsistency } from './config/validate.ts';
import type { HttpFilter } from './filters/filter.ts';
import { type ListenerFilterFactory, unhandledEdgeFields } from './filters/listener-filters.ts';
import { createRbacFilter } from './filters/rbac.ts';
import { type BoundAddress, HttpListener } from './http/listener.ts';
import { type CertificateResolver, type CompiledServerTls, compileServerTls } from './http/server-tls.ts';
import { buildTlsMaterial, type TlsMaterial, type WorkloadIdentity } from './identity.ts';
import { compileRouteTable } from './router/compile.ts';
import type { RouteTable } from './router/types.ts';
import { inboundTcpHandler, TcpListenerSet } from './tcp/listeners.ts';
import { ClusterManager } from './upstream/cluster-manager.ts';
import { resolveConfig } from './upstream/resolve.ts';

export interface ProxyOptions {
  /** Filters run before the router on every listener, in order. */
  readonly filters?: readonly HttpFilter[];
  /**
   * Per-listener filters built from each listener's config (listener-filters.ts), after the
   * global filters and before the listener's RBAC filter; e.g. the gateway's edge filters.
   */
  readonly listenerFilters?: readonly ListenerFilterFactory[];
  /** Resolves server certificates that carry no PEM and no files (the gateway's `--cert-dir`). */
  readonly resolveCertificate?: CertificateResolver;
}

/** A listener's bound socket, for logs and `/config_dump`. */
export interface ListenerStatus extends BoundAddress {
  readonly name: string;
  readonly direction: string;
}

/** The identity in force, for `/config_dump` and logs (never the key). */
export interface IdentityStatus {
  readonly spiffeId: string;
  readonly expiresAt: string;
  readonly trustDomain: string;
  readonly generation: number;
  readonly roots: number;
}

export class ProxyCore {
  readonly #filters: readonly HttpFilter[];
  readonly #listenerFilters: readonly ListenerFilterFactory[];
  readonly #resolveCertificate: CertificateResolver | undefined;
  /** The current TLS material; listeners and upstream connectors read it (swapped as a whole). */
  readonly #tls: { material: TlsMaterial | undefined } = { material: undefined };
  #identity: WorkloadIdentity | undefined;
  readonly #clusters = new ClusterManager({ tls: this.#tls });
  readonly #listeners = new Map<string, HttpListener>();
  /** Listeners with `tcpProxy` (tcp/listeners.ts); the HTTP ones are `#listeners`. */
  readonly #tcp = new TcpListenerSet({ clusters: this.#clusters, tls: this.#tls });
  readonly #bound = new Map<string, BoundAddress>();
  #config: ProxyConfig | undefined;
  #version = '';

  constructor(options: ProxyOptions = {}) {
    this.#filters = options.filters ?? [];
    this.#listenerFilters = options.listenerFilters ?? [];
    this.#resolveCertificate = options.resolveCertificate;
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
   * removed ones. Throws `ConfigError` when the config is invalid or a new listener cannot bind;
   * either way nothing changed and the last good config keeps serving.
   */
  async apply(config: ProxyConfig, version: string): Promise<void> {
    const problems = checkConsistency(config);
    const httpListeners = config.listeners.filter((l) => l.tcpProxy === undefined);
    const tables = new Map<string, RouteTable>();
    for (const rc of config.routes) {
      try {
        tables.set(rc.name, compileRouteTable(rc as RouteConfiguration));
      } catch (err) {
        problems.push(`RouteConfiguration ${rc.name}: ${(err as Error).message}`);
      }
    }
    // Each listener's own filters (factories, then its AuthorizationPolicy), compiled once per
    // version, run after the global filters; and its TLS termination certificates.
    const chains = new Map<string, readonly HttpFilter[]>();
    const serverTls = new Map<string, CompiledServerTls>();
    for (const l of httpListeners) {
      const chain: HttpFilter[] = [...this.#filters];
      problems.push(...unhandledEdgeFields(l, config, this.#listenerFilters));
      for (const factory of this.#listenerFilters) {
        try {
          chain.push(...factory.create(l, config, tables.get(l.routeConfigName)));
        } catch (err) {
          problems.push(`Listener ${l.name}: ${(err as Error).message}`);
        }
      }
      if (l.rbac !== undefined) {
        try {
          chain.push(createRbacFilter(l.rbac));
        } catch (err) {
          problems.push(`Listener ${l.name}: ${(err as Error).message}`);
        }
      }
      chains.set(l.name, chain.length === this.#filters.length ? this.#filters : chain);
      if (l.serverTls === undefined) continue;
      try {
        serverTls.set(
          l.name,
          compileServerTls(l.serverTls, config.certificates ?? [], this.#resolveCertificate),
        );
      } catch (err) {
        problems.push(`Listener ${l.name}: ${(err as Error).message}`);
      }
    }
    if (problems.length === 0) {
      try {
        resolveConfig(config.clusters, config.endpoints); // checks only; nothing changes yet
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    // A new trust bundle means new TLS material (same certificate, new roots): checked here,
    // installed at the commit below.
    let material: TlsMaterial | undefined;
    const bundleChanged =
      JSON.stringify(config.trustBundle ?? null) !== JSON.stringify(this.#config?.trustBundle ?? null);
    if (bundleChanged && this.#identity !== undefined && this.#tls.material !== undefined) {
      try {
        material = buildTlsMaterial(this.#identity, config.trustBundle, this.#tls.material.generation);
      } catch (err) {
        problems.push(`trustBundle: ${(err as Error).message}`);
      }
    }
    if (problems.length > 0) throw new ConfigError(problems, `config version ${version}`);

    const stateFor = (l: Listener) => ({
      routeTable: tables.get(l.routeConfigName) as RouteTable,
      clusters: this.#clusters,
      filters: chains.get(l.name) ?? this.#filters,
      tls: this.#tls,
    });
    // Bind every new or moved listener first: if one cannot bind, close those just bound and
    // reject the version, so the proxy keeps serving its last good config untouched.
    const tcpPlan = await this.#tcp.prepare(config.listeners, version);
    const fresh = new Map<string, { listener: HttpListener; bound: BoundAddress }>();
    for (const l of httpListeners) {
      const existing = this.#listeners.get(l.name);
      if (existing && existing.config.address === l.address && existing.config.port === l.port) continue;
      const listener = new HttpListener(l, stateFor(l));
      if (this.#tls.material !== undefined) listener.tls.setMaterial(this.#tls.material);
      listener.serverTls.set(serverTls.get(l.name));
      try {
        fresh.set(l.name, { listener, bound: await listener.listen() });
      } catch (err) {
        await Promise.all([...fresh.values()].map((f) => f.listener.close(0)));
        await this.#tcp.abort(tcpPlan);
        throw new ConfigError(
          [
            `Listener ${l.name}: cannot bind ${l.address ?? '127.0.0.1'}:${l.port}: ${(err as Error).message}`,
          ],
          `config version ${version}`,
        );
      }
    }
    // Commit: from here on nothing fails, and nothing awaits until every swap is done.
    this.#clusters.update(config.clusters, config.endpoints);
    for (const factory of this.#listenerFilters) factory.commit?.(config);
    const retired: HttpListener[] = [];
    const wanted = new Set(httpListeners.map((l) => l.name));
    for (const [name, listener] of this.#listeners) {
      if (!wanted.has(name)) {
        this.#listeners.delete(name);
        this.#bound.delete(name);
        retired.push(listener);
      }
    }
    for (const l of httpListeners) {
      const replacement = fresh.get(l.name);
      const existing = this.#listeners.get(l.name);
      const tcp = (replacement?.listener ?? existing)?.tls;
      if (tcp !== undefined) tcp.tcp = inboundTcpHandler(l, this.#tls);
      if (replacement === undefined) {
        existing?.setState(stateFor(l));
        existing?.tls.configure(l.tls?.mode, l.tls?.maxConnectionAgeMs, l.drainTimeoutMs);
        existing?.serverTls.set(serverTls.get(l.name));
        continue;
      }
      if (existing) retired.push(existing);
      this.#listeners.set(l.name, replacement.listener);
      this.#bound.set(l.name, replacement.bound);
    }
    if (material !== undefined && this.#identity !== undefined) {
      // setIdentity may have run while listeners were binding: rebuild for the newer certificate.
      const current = this.#tls.material;
      if (current !== undefined && current.generation !== material.generation) {
        material = buildTlsMaterial(this.#identity, config.trustBundle, current.generation);
      }
      this.#install(material, false);
    }
    const tcpRetired = this.#tcp.commit(tcpPlan);
    this.#config = config;
    this.#version = version;
    await Promise.all([...retired.map((l) => l.close()), tcpRetired]);
  }

  /**
   * Installs the proxy's certificate (from the identity client, or `--cert/--key`): builds the TLS
   * material with the config's trust bundle and swaps it in; new handshakes use it at once,
   * connections made with an older certificate are retired gracefully. Throws an `Error` (and
   * changes nothing) when the key does not match the certificate or there is no usable root.
   */
  setIdentity(identity: WorkloadIdentity): void {
    const previous = this.#tls.material;
    const material = buildTlsMaterial(identity, this.#config?.trustBundle, (previous?.generation ?? 0) + 1);
    this.#identity = identity;
    this.#install(material, previous !== undefined);
  }

  #install(material: TlsMaterial, rotated: boolean): void {
    this.#tls.material = material;
    for (const l of this.#listeners.values()) l.tls.setMaterial(material);
    if (rotated) this.#clusters.renewTlsPools();
  }

  /** The identity in force, or undefined before `setIdentity`. */
  get identity(): IdentityStatus | undefined {
    const m = this.#tls.material;
    if (m === undefined) return undefined;
    return {
      spiffeId: m.spiffeId,
      expiresAt: new Date(m.expiresAtMs).toISOString(),
      trustDomain: m.trustDomain,
      generation: m.generation,
      roots: m.caPem.length,
    };
  }

  /**
   * False while the config in force asks for TLS (a listener in STRICT or PERMISSIVE mode, or a
   * cluster with `tls.enabled`) and no identity is set yet; true otherwise.
   */
  get identityReady(): boolean {
    if (this.#tls.material !== undefined) return true;
    const config = this.#config;
    if (config === undefined) return true;
    const tlsListener = config.listeners.some(
      (l) => l.tls?.mode === 'STRICT' || l.tls?.mode === 'PERMISSIVE',
    );
    return !tlsListener && !config.clusters.some((c) => c.tls?.enabled === true);
  }

  /** Bound listeners, in config order. */
  listeners(): ListenerStatus[] {
    const http = [...this.#listeners.values()].map((l) => ({
      name: l.config.name,
      direction: l.config.direction ?? 'TRAFFIC_DIRECTION_UNSPECIFIED',
      ...(this.#bound.get(l.config.name) as BoundAddress),
    }));
    return [...http, ...this.#tcp.statuses()];
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
      identity: this.identity ?? null,
      listeners: this.listeners(),
      config: this.#config ?? null,
      clusters: this.#clusters.snapshot(),
    };
  }

  /** Drains every listener (up to `drainMs` each, concurrently), then closes upstream pools. */
  async close(drainMs?: number): Promise<void> {
    await Promise.all([
      ...[...this.#listeners.values()].map((l) => l.close(drainMs)),
      this.#tcp.close(drainMs),
    ]);
    this.#listeners.clear();
    await this.#clusters.close();
    await Promise.all(this.#listenerFilters.map((f) => f.close?.()));
  }
}
