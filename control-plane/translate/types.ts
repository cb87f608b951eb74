/**
 * The translator's contract: a pure function from the mesh state (validated resources and
 * registered endpoints at one store revision) and one proxy's identity to that proxy's config
 * (the four xDS lists, `ProxyConfig`). The translator is the only code that knows both layers.
 */
import type { ProxyConfig } from '../../sidecar/proxy/config/model.ts';
import type { TrustBundle } from '../../sidecar/proxy/config/types.ts';
import type { Resource } from '../resources/types.ts';
import type { TcpUpstreamBind } from './tcp.ts';

/** A proxy's workload registered as an endpoint (stored under /weft/endpoints/, with a lease). */
export interface EndpointRegistration {
  readonly proxyId: string;
  readonly namespace: string;
  /** Where peers reach the workload's sidecar inbound listener. */
  readonly address: string;
  readonly port: number;
  /** Selector labels: `app` (the service name) and e.g. `version`, `zone`. */
  readonly labels: Readonly<Record<string, string>>;
  readonly weight: number;
  /** True once the proxy said it is shutting down: no new traffic (DRAINING). */
  readonly draining: boolean;
}

/** Who a proxy is (from its Hello). */
export interface ProxyIdentity {
  readonly proxyId: string;
  readonly kind: 'sidecar' | 'gateway';
  /** Sidecar: the Service it fronts; gateway: the Gateway name. */
  readonly service: string;
  readonly namespace: string;
  readonly workload: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly outboundPort: number;
  readonly inboundPort: number;
  readonly appPort: number;
  readonly listenAddress: string;
  /** Gateway: Gateway listener port (decimal string) → port to bind (0: any free port). */
  readonly listenerPorts?: Readonly<Record<string, number>>;
  /** Sidecar: TCP upstream binds (`--upstream`), for TCP proxy listeners (tcp.ts). */
  readonly tcpUpstreams?: readonly TcpUpstreamBind[];
  /** Where the outbound listener binds when not `listenAddress` (Hello field 16). */
  readonly outboundAddress?: string;
}

/** Everything the translator reads, at one store revision. */
export interface MeshState {
  readonly revision: number;
  /** Valid resources only, sorted by creationTimestamp then namespace/name (Gateway API tie-break order). */
  readonly resources: readonly Resource[];
  readonly endpoints: readonly EndpointRegistration[];
  /**
   * The mesh CA's roots (`/weft/system/trust-bundle`, written by control-plane/ca); absent until
   * the CA is on. When present, mesh traffic is mTLS (mtls.ts).
   */
  readonly trustBundle?: TrustBundle;
}

/** The result for one proxy: its config, consistency-checked. */
export interface ProxySnapshot {
  /** The store revision the snapshot was computed at, as a decimal string. */
  readonly version: string;
  readonly config: ProxyConfig;
}
