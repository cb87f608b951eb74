/**
 * Clusters and their endpoints (Envoy CDS/EDS nouns) for the Service ports a proxy's routes use.
 *
 * - `outbound|<port>|<name>.<namespace>`: lbPolicy from the BackendTrafficPolicy targeting the
 *   Service (`loadBalancer.type` RoundRobin | LeastRequest | Random | ConsistentHash, the hash
 *   header from `loadBalancer.consistentHash.header.name`), else LEAST_REQUEST (Istio's default).
 *   When several policies target one Service, the oldest wins (Gateway API policy attachment:
 *   creationTimestamp, then namespace/name). Policy targetRefs are local: the policy's namespace.
 * - Endpoints: the Service's registrations (services.ts) at the registration's address and port
 *   (the peer sidecar's inbound listener), with weight and labels; draining ones are DRAINING,
 *   the rest HEALTHY; one endpoint per address:port.
 * - `inbound|<appPort>`: the local app at 127.0.0.1:<appPort>.
 * - With a trust domain (mesh mTLS on, mtls.ts): every `outbound|…` cluster has `tls.enabled` and each
 *   endpoint the SPIFFE ID its sidecar must present (registrations whose namespace or `app` label
 *   cannot form one are left out); the inbound cluster stays plain text.
 * - Resilience settings (connection pool timeouts, circuit breakers, outlier detection, health
 *   check, retry budget) from the Service's BackendTrafficPolicy (resilience.ts), on its clusters.
 *
 * Invariants: one ClusterLoadAssignment per Cluster, same name; output sorted by cluster name;
 * endpoint labels with sorted keys.
 */
import type { Cluster, ClusterLoadAssignment, Endpoint, LbPolicy } from '../../sidecar/proxy/config/types.ts';
import type { Resource } from '../resources/types.ts';
import { workloadSpiffeId } from './mtls.ts';
import { compareResources, compareStrings, sortedRecord } from './order.ts';
import type { ClusterPolicy } from './resilience.ts';
import { endpointsOf, inboundClusterName, type MeshService, serviceKey } from './services.ts';
import { type BackendTrafficPolicySpecView, isServiceRef, namespaceOf } from './specs.ts';
import type { EndpointRegistration } from './types.ts';

/** RFC 9110 field name (token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const LB_POLICIES: Readonly<Record<string, LbPolicy>> = {
  RoundRobin: 'ROUND_ROBIN',
  LeastRequest: 'LEAST_REQUEST',
  Random: 'RANDOM',
  ConsistentHash: 'CONSISTENT_HASH',
};

/** The default when no policy (or an unknown type) says otherwise: Istio's LEAST_REQUEST. */
export const DEFAULT_LB_POLICY: LbPolicy = 'LEAST_REQUEST';

/** Load-balancer settings per Service key. */
export type LbSettings = ReadonlyMap<string, Pick<Cluster, 'lbPolicy' | 'hashHeader'>>;

/** The load-balancer settings each Service gets from the oldest BackendTrafficPolicy targeting it. */
export function lbSettings(resources: readonly Resource[]): LbSettings {
  const out = new Map<string, Pick<Cluster, 'lbPolicy' | 'hashHeader'>>();
  const policies = resources
    .filter((r): r is Resource & Resource<BackendTrafficPolicySpecView> => r.kind === 'BackendTrafficPolicy')
    .sort(compareResources);
  for (const p of policies) {
    const lb = p.spec.loadBalancer;
    if (lb?.type === undefined) continue;
    const header = lb.consistentHash?.header?.name;
    let lbPolicy = LB_POLICIES[lb.type] ?? DEFAULT_LB_POLICY;
    // The proxy rejects CONSISTENT_HASH without a valid header name: fall back rather than NACK.
    if (lbPolicy === 'CONSISTENT_HASH' && (header === undefined || !TOKEN.test(header)))
      lbPolicy = DEFAULT_LB_POLICY;
    const settings = {
      lbPolicy,
      ...(lbPolicy === 'CONSISTENT_HASH' && { hashHeader: header!.toLowerCase() }),
    };
    for (const ref of p.spec.targetRefs ?? []) {
      if (!isServiceRef(ref, 'Service')) continue;
      const key = serviceKey(namespaceOf(p), ref.name);
      if (!out.has(key)) out.set(key, settings);
    }
  }
  return out;
}

/**
 * One endpoint per address:port (the proxy rejects duplicates, and a restarted sidecar can be
 * registered twice until its old lease expires): the first serving registration wins, else the
 * first draining one. `regs` is sorted (services.ts), so the choice is deterministic.
 */
function uniqueEndpoints(regs: readonly EndpointRegistration[]): EndpointRegistration[] {
  const byAddress = new Map<string, EndpointRegistration>();
  for (const e of regs) {
    const key = `${e.address}|${e.port}`;
    const seen = byAddress.get(key);
    if (seen === undefined || (seen.draining && !e.draining)) byAddress.set(key, e);
  }
  return regs.filter((e) => byAddress.get(`${e.address}|${e.port}`) === e);
}

/** The proxy takes endpoint weights 1..1e6 (resolve.ts, MAX_ENDPOINT_WEIGHT); keep within. */
const MAX_ENDPOINT_WEIGHT = 1_000_000;

function endpoint(e: EndpointRegistration, identity?: string): Endpoint {
  return {
    address: e.address,
    port: e.port,
    weight: Math.min(Math.max(Math.trunc(e.weight) || 1, 1), MAX_ENDPOINT_WEIGHT),
    labels: sortedRecord(e.labels),
    health: e.draining ? 'DRAINING' : 'HEALTHY',
    ...(identity !== undefined && { identity }),
  };
}

/** The endpoints of `service`, with their expected SPIFFE IDs when `trustDomain` is set. */
function serviceEndpoints(
  service: MeshService,
  regs: readonly EndpointRegistration[],
  trustDomain: string | undefined,
): Endpoint[] {
  const unique = uniqueEndpoints(endpointsOf(service, regs));
  if (trustDomain === undefined) return unique.map((e) => endpoint(e));
  const out: Endpoint[] = [];
  for (const e of unique) {
    const identity = workloadSpiffeId(trustDomain, e.namespace, e.labels.app ?? service.name);
    if (identity !== undefined) out.push(endpoint(e, identity));
  }
  return out;
}

/** A Service port's cluster to build: its name, the Service and the port. */
export interface OutboundClusterRef {
  readonly name: string;
  readonly service: MeshService;
  readonly port: number;
}

/**
 * Clusters and load assignments for `refs` plus the inbound cluster, sorted by cluster name; with
 * `trustDomain`, the `refs` clusters are mTLS; `resilience` holds each Service's cluster-level
 * policy settings (see the module header).
 */
export function buildClusters(
  refs: readonly OutboundClusterRef[],
  endpoints: readonly EndpointRegistration[],
  lb: LbSettings,
  appPort: number,
  trustDomain?: string,
  resilience?: ReadonlyMap<string, ClusterPolicy>,
): { clusters: Cluster[]; endpoints: ClusterLoadAssignment[] } {
  const entries: { cluster: Cluster; cla: ClusterLoadAssignment }[] = [];
  const inbound = inboundClusterName(appPort);
  entries.push({
    cluster: { name: inbound, lbPolicy: 'ROUND_ROBIN' },
    cla: { clusterName: inbound, endpoints: [{ address: '127.0.0.1', port: appPort, health: 'HEALTHY' }] },
  });
  for (const ref of refs) {
    const settings = lb.get(ref.service.key) ?? { lbPolicy: DEFAULT_LB_POLICY };
    entries.push({
      cluster: {
        name: ref.name,
        ...settings,
        ...(trustDomain !== undefined && { tls: { enabled: true } }),
        ...resilience?.get(ref.service.key),
      },
      cla: { clusterName: ref.name, endpoints: serviceEndpoints(ref.service, endpoints, trustDomain) },
    });
  }
  entries.sort((a, b) => compareStrings(a.cluster.name, b.cluster.name));
  return { clusters: entries.map((e) => e.cluster), endpoints: entries.map((e) => e.cla) };
}
