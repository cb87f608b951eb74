/**
 * `ProxyConfig`: the four xDS lists a proxy runs on, with every list present. Built from a
 * bootstrap file by `load.ts` and, later, from control-plane snapshots.
 */
import type {
  Bootstrap,
  Cluster,
  ClusterLoadAssignment,
  Listener,
  RateLimitService,
  RouteConfiguration,
  TlsCertificate,
  TrustBundle,
} from './types.ts';

export interface ProxyConfig {
  readonly listeners: readonly Listener[];
  readonly routes: readonly RouteConfiguration[];
  readonly clusters: readonly Cluster[];
  readonly endpoints: readonly ClusterLoadAssignment[];
  /** The mesh's roots; absent when mTLS is off. */
  readonly trustBundle?: TrustBundle;
  /** The store of global rate limits (gateway proxies); absent: every limit is local. */
  readonly rateLimitService?: RateLimitService;
  /** Server certificates for listeners with `serverTls` (gateway TLS termination). */
  readonly certificates?: readonly TlsCertificate[];
}

/** The four lists of a bootstrap, absent ones as empty lists. */
export function proxyConfigOf(b: Bootstrap): ProxyConfig {
  return {
    listeners: b.listeners ?? [],
    routes: b.routes ?? [],
    clusters: b.clusters ?? [],
    endpoints: b.endpoints ?? [],
    ...(b.trustBundle !== undefined && { trustBundle: b.trustBundle }),
    ...(b.rateLimitService !== undefined && { rateLimitService: b.rateLimitService }),
    ...(b.certificates !== undefined && { certificates: b.certificates }),
  };
}
