/**
 * Services and their endpoints: the mesh's destinations as the translator sees them.
 *
 * - A Service (`weft.dev/v1alpha1`) selects endpoint registrations in its own namespace whose
 *   labels include every selector label; the selector defaults to `{app: <name>}`.
 * - A Service is routed on one port: its first port whose appProtocol is not `tcp` (the "routed
 *   port"). The sidecar's outbound listener ignores the port in `Host`, so one virtual host per
 *   Service is all it can tell apart; other HTTP ports are reachable only as backendRefs.
 * - Cluster names follow Istio: `outbound|<port>|<name>.<namespace>`; the inbound cluster is
 *   `inbound|<appPort>`.
 *
 * Invariants: `ServiceIndex.list` is sorted by namespace then name; endpoint lists are sorted by
 * address, port and proxyId; nothing here depends on input order.
 */
import type { Resource, ServicePort, ServiceSpec } from '../resources/types.ts';
import { compareStrings, sortedBy } from './order.ts';
import { namespaceOf } from './specs.ts';
import type { EndpointRegistration } from './types.ts';

/** A Service with its namespace resolved and selector defaulted. */
export interface MeshService {
  readonly name: string;
  readonly namespace: string;
  /** `<namespace>/<name>` */
  readonly key: string;
  readonly selector: Readonly<Record<string, string>>;
  readonly ports: readonly ServicePort[];
  /** The port its virtual host routes (first non-tcp port), or undefined when it has none. */
  readonly routedPort: number | undefined;
  readonly resource: Resource<ServiceSpec>;
}

/** `<namespace>/<name>` */
export function serviceKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** `outbound|8080|reviews.default` */
export function outboundClusterName(port: number, name: string, namespace: string): string {
  return `outbound|${port}|${name}.${namespace}`;
}

/** `inbound|9080` */
export function inboundClusterName(appPort: number): string {
  return `inbound|${appPort}`;
}

/** Services by key, plus a sorted list. */
export interface ServiceIndex {
  readonly byKey: ReadonlyMap<string, MeshService>;
  /** Sorted by namespace, then name. */
  readonly list: readonly MeshService[];
}

function toMeshService(r: Resource<ServiceSpec>): MeshService {
  const namespace = namespaceOf(r);
  const name = r.metadata.name;
  const ports = r.spec.ports ?? [];
  const routed = ports.find((p) => (p.appProtocol ?? 'http') !== 'tcp');
  return {
    name,
    namespace,
    key: serviceKey(namespace, name),
    selector: r.spec.selector ?? { app: name },
    ports,
    routedPort: routed?.port,
    resource: r,
  };
}

/** Indexes the `Service` resources among `resources`. */
export function indexServices(resources: readonly Resource[]): ServiceIndex {
  const list = sortedBy(
    resources
      .filter((r): r is Resource & Resource<ServiceSpec> => r.kind === 'Service')
      .map((r) => toMeshService(r)),
    (a, b) => compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name),
  );
  return { byKey: new Map(list.map((s) => [s.key, s])), list };
}

/** True when `labels` include every `selector` label with the same value. */
export function selects(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const [k, v] of Object.entries(selector)) {
    if (!Object.hasOwn(labels, k) || labels[k] !== v) return false;
  }
  return true;
}

/** The registrations that back `svc`, sorted by address, port, proxyId. */
export function endpointsOf(
  svc: MeshService,
  endpoints: readonly EndpointRegistration[],
): EndpointRegistration[] {
  return sortedBy(
    endpoints.filter((e) => e.namespace === svc.namespace && selects(svc.selector, e.labels)),
    (a, b) => compareStrings(a.address, b.address) || a.port - b.port || compareStrings(a.proxyId, b.proxyId),
  );
}

/**
 * Host names a client in `clientNamespace` uses for `svc`, Kubernetes DNS style:
 * `name` (only from the Service's own namespace, as the DNS search path resolves it), `name.ns`,
 * `name.ns.svc`, `name.ns.svc.cluster.local`. Ports are not listed: the proxy ignores them.
 */
export function serviceDomains(svc: MeshService, clientNamespace: string): string[] {
  const fq = `${svc.name}.${svc.namespace}`;
  const names = [fq, `${fq}.svc`, `${fq}.svc.cluster.local`];
  return svc.namespace === clientNamespace ? [svc.name, ...names] : names;
}
