/**
 * Route attachment to Services (GAMMA, Gateway API mesh binding; kubernetes-sigs/gateway-api
 * site/content/en/docs/mesh/mesh-overview.md).
 *
 * - A route attaches to a Service through a parentRef with `group` "" or "core", `kind` Service,
 *   `name`, `namespace` (default: the route's) and optional `port`. A parentRef without `port`
 *   attaches to every port; with `port` only to that one. Weft routes one port per Service (see
 *   services.ts), so a parentRef naming another port of the Service attaches to nothing.
 * - A route in the Service's namespace is a producer route and applies to every client; a route
 *   in another namespace is a consumer route and applies only to clients in that namespace. For
 *   such a client, its consumer routes replace the producer routes.
 * - Rules of several routes merge in Gateway API tie-break order: creationTimestamp, then
 *   namespace/name, then rule index (the proxy applies match precedence on top, ties in list order).
 *
 * Invariants: every list returned is in that tie-break order; each route appears at most once per
 * Service even when several of its parentRefs name the Service.
 */
import type { Resource } from '../resources/types.ts';
import { compareResources } from './order.ts';
import { type MeshService, type ServiceIndex, serviceKey } from './services.ts';
import {
  isRouteResource,
  isServiceRef,
  namespaceOf,
  type ParentRefView,
  type RouteResource,
} from './specs.ts';

/** One Service parentRef of a route, resolved against the mesh's Services. */
export interface ServiceParent {
  readonly ref: ParentRefView;
  /** `<namespace>/<name>` the parentRef names. */
  readonly key: string;
  /** The Service, when it exists. */
  readonly service: MeshService | undefined;
  /** True when the parentRef reaches the Service's routed port (so the route takes effect). */
  readonly attached: boolean;
}

/** Route resources among `resources`, in tie-break order. */
export function routeResources(resources: readonly Resource[]): RouteResource[] {
  return resources.filter(isRouteResource).sort(compareResources);
}

/** The Service parentRefs of `route` (Gateway parents are skipped: not the mesh's). */
export function serviceParents(route: RouteResource, services: ServiceIndex): ServiceParent[] {
  const routeNs = namespaceOf(route);
  return (route.spec.parentRefs ?? [])
    .filter((ref) => isServiceRef(ref, 'Gateway'))
    .map((ref) => {
      const key = serviceKey(ref.namespace ?? routeNs, ref.name);
      const service = services.byKey.get(key);
      const attached =
        service?.routedPort !== undefined && (ref.port === undefined || ref.port === service.routedPort);
      return { ref, key, service, attached };
    });
}

/** Routes attached to each Service (by key), each list in tie-break order. */
export function attachRoutes(
  routes: readonly RouteResource[],
  services: ServiceIndex,
): ReadonlyMap<string, readonly RouteResource[]> {
  const byService = new Map<string, RouteResource[]>();
  for (const route of routes) {
    const keys = new Set(
      serviceParents(route, services)
        .filter((p) => p.attached)
        .map((p) => p.key),
    );
    for (const key of keys) {
      const list = byService.get(key);
      if (list === undefined) byService.set(key, [route]);
      else list.push(route);
    }
  }
  return byService;
}

/**
 * The routes that govern traffic from a client in `clientNamespace` to `svc`: its consumer
 * routes when it has any, else the producer routes; empty means default forwarding.
 */
export function effectiveRoutes(
  svc: MeshService,
  attached: readonly RouteResource[],
  clientNamespace: string,
): readonly RouteResource[] {
  if (clientNamespace !== svc.namespace) {
    const consumer = attached.filter((r) => namespaceOf(r) === clientNamespace);
    if (consumer.length > 0) return consumer;
  }
  return attached.filter((r) => namespaceOf(r) === svc.namespace);
}
