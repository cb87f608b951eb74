/**
 * backendRef resolution (Gateway API BackendRef), shared by the route translator and the route
 * status so the two always agree on what is valid.
 *
 * - `group` "" or "core" (default "") and `kind` Service (default) name a Weft Service; any other
 *   group/kind is invalid (reason InvalidKind; its traffic share gets 500).
 * - `namespace` defaults to the route's namespace. Cross-namespace references are allowed:
 *   Weft has no ReferenceGrant kind yet (a limitation, see the translator report).
 * - `port` defaults to the Service's only port, else to the parent's routed port when the
 *   backend Service has it; otherwise the reference is invalid (BackendNotFound).
 * - `weight` defaults to 1; 0 sends no traffic.
 */
import { type MeshService, outboundClusterName, type ServiceIndex, serviceKey } from './services.ts';
import { type BackendRefView, isServiceRef } from './specs.ts';

/** A resolved backendRef: a cluster to send to, or the reason its share gets 500. */
export type ResolvedBackend =
  | { readonly ok: true; readonly service: MeshService; readonly port: number; readonly clusterName: string }
  | { readonly ok: false; readonly reason: 'BackendNotFound' | 'InvalidKind'; readonly message: string };

/**
 * Resolves `ref` written in a route in `routeNamespace`, for the parent routed on `parentPort`
 * (undefined when the parent has no routed port).
 */
export function resolveBackendRef(
  services: ServiceIndex,
  ref: BackendRefView,
  routeNamespace: string,
  parentPort: number | undefined,
): ResolvedBackend {
  const namespace = ref.namespace ?? routeNamespace;
  const id = `${namespace}/${ref.name}`;
  if (!isServiceRef(ref, 'Service')) {
    const gk = `${ref.group ?? ''}/${ref.kind ?? 'Service'}`;
    return {
      ok: false,
      reason: 'InvalidKind',
      message: `backendRef ${id}: unsupported kind ${gk} (only core Service)`,
    };
  }
  const service = services.byKey.get(serviceKey(namespace, ref.name));
  if (service === undefined) {
    return { ok: false, reason: 'BackendNotFound', message: `Service ${id} not found` };
  }
  let port = ref.port;
  if (port === undefined) {
    if (service.ports.length === 1) port = service.ports[0]!.port;
    else if (parentPort !== undefined && service.ports.some((p) => p.port === parentPort)) port = parentPort;
    else
      return {
        ok: false,
        reason: 'BackendNotFound',
        message: `Service ${id} has several ports: backendRef needs port`,
      };
  }
  if (!service.ports.some((p) => p.port === port)) {
    return { ok: false, reason: 'BackendNotFound', message: `Service ${id} has no port ${port}` };
  }
  return { ok: true, service, port, clusterName: outboundClusterName(port, service.name, service.namespace) };
}
