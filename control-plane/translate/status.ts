/**
 * Route status for HTTPRoute and GRPCRoute resources attached to Services, Gateway API style
 * (RouteStatus.parents[] of RouteParentStatus, with metav1.Condition-shaped conditions).
 *
 * Per Service parentRef:
 * - `Accepted`: True (reason Accepted) when the Service exists and the parentRef reaches its
 *   routed port; False with reason NoMatchingParent when the Service or the named port does not
 *   exist; False with reason UnsupportedValue when the port exists but Weft does not route it
 *   (a tcp port, or not the Service's first HTTP port), or when a rule holds a value Weft cannot
 *   translate (the rule is left out of the config).
 * - `ResolvedRefs`: True (reason ResolvedRefs) when every backendRef resolves; otherwise False
 *   with reason BackendNotFound (a missing Service or port; takes precedence) or InvalidKind (not
 *   a core Service), the message naming every unresolved backend.
 * Per Gateway parentRef: `Accepted` from gateway-status.ts (the gateway translator's attachment
 * rules), `ResolvedRefs` as above.
 *
 * Invariants: resolution is the translator's own (backends.ts, attach.ts, routes.ts), so status
 * and snapshots always agree. Pure: `lastTransitionTime` and `observedGeneration` are left to the
 * code that writes status into the store.
 */

import { resourceId } from '../resources/types.ts';
import { routeResources, type ServiceParent, serviceParents } from './attach.ts';
import { resolveBackendRef } from './backends.ts';
import { isGatewayRef } from './gateway.ts';
import { gatewayAccepted } from './gateway-status.ts';
import { translateRouteRules } from './routes.ts';
import { indexServices, type ServiceIndex } from './services.ts';
import { namespaceOf, type ParentRefView, type RouteResource } from './specs.ts';
import type { MeshState } from './types.ts';

/** The controller that writes these statuses (RouteParentStatus.controllerName). */
export const CONTROLLER_NAME = 'weft.dev/mesh';

/** A Gateway API condition, without the time and generation the status writer adds. */
export interface RouteCondition {
  readonly type: 'Accepted' | 'ResolvedRefs';
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
}

/** Gateway API RouteParentStatus. */
export interface RouteParentStatus {
  readonly parentRef: ParentRefView;
  readonly controllerName: string;
  readonly conditions: readonly RouteCondition[];
}

/** Gateway API RouteStatus: one entry per Service or Gateway parentRef. */
export interface RouteStatus {
  readonly parents: readonly RouteParentStatus[];
}

function accepted(route: RouteResource, services: ServiceIndex, parent: ServiceParent): RouteCondition {
  const { ref, key, service: svc } = parent;
  const no = (reason: string, message: string): RouteCondition => ({
    type: 'Accepted',
    status: 'False',
    reason,
    message,
  });
  if (svc === undefined) return no('NoMatchingParent', `Service ${key} not found`);
  if (ref.port !== undefined && !svc.ports.some((p) => p.port === ref.port)) {
    return no('NoMatchingParent', `Service ${key} has no port ${ref.port}`);
  }
  if (!parent.attached) {
    const why =
      svc.routedPort === undefined
        ? `Service ${key} has only tcp ports; Weft routes HTTP and gRPC only`
        : `Weft routes only the first HTTP port (${svc.routedPort}) of Service ${key}, not port ${ref.port}`;
    return no('UnsupportedValue', why);
  }
  const dropped: string[] = [];
  translateRouteRules(services, [route], svc.routedPort, (name, reason) =>
    dropped.push(`${name}: ${reason}`),
  );
  if (dropped.length > 0) return no('UnsupportedValue', `rules left out: ${dropped.join('; ')}`);
  return {
    type: 'Accepted',
    status: 'True',
    reason: 'Accepted',
    message: `attached to Service ${key} port ${svc.routedPort}`,
  };
}

function resolvedRefs(
  route: RouteResource,
  services: ServiceIndex,
  parentPort: number | undefined,
): RouteCondition {
  const ns = namespaceOf(route);
  const missing: string[] = [];
  const invalidKind: string[] = [];
  for (const rule of route.spec.rules ?? []) {
    for (const ref of rule.backendRefs ?? []) {
      const b = resolveBackendRef(services, ref, ns, parentPort);
      if (!b.ok) (b.reason === 'BackendNotFound' ? missing : invalidKind).push(b.message);
    }
  }
  if (missing.length + invalidKind.length === 0) {
    return {
      type: 'ResolvedRefs',
      status: 'True',
      reason: 'ResolvedRefs',
      message: 'all backendRefs resolved',
    };
  }
  return {
    type: 'ResolvedRefs',
    status: 'False',
    reason: missing.length > 0 ? 'BackendNotFound' : 'InvalidKind',
    message: [...new Set([...missing, ...invalidKind])].join('; '),
  };
}

/**
 * Status of every HTTPRoute and GRPCRoute in `state`, keyed by resourceId
 * (`HTTPRoute/default/reviews`): Service parents first, then Gateway parents, each in parentRefs
 * order. Routes without such parents get `{parents: []}`.
 */
export function routeStatus(state: MeshState): Map<string, RouteStatus> {
  const services = indexServices(state.resources);
  const out = new Map<string, RouteStatus>();
  for (const route of routeResources(state.resources)) {
    const parents = serviceParents(route, services).map(
      (p): RouteParentStatus => ({
        parentRef: p.ref,
        controllerName: CONTROLLER_NAME,
        conditions: [
          accepted(route, services, p),
          resolvedRefs(route, services, p.ref.port ?? p.service?.routedPort),
        ],
      }),
    );
    for (const ref of (route.spec.parentRefs ?? []).filter(isGatewayRef)) {
      parents.push({
        parentRef: ref,
        controllerName: CONTROLLER_NAME,
        conditions: [gatewayAccepted(state, services, route, ref), resolvedRefs(route, services, undefined)],
      });
    }
    out.set(resourceId(route), { parents });
  }
  return out;
}
