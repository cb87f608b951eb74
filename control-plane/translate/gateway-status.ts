/**
 * Route status for Gateway parentRefs (Gateway API RouteParentStatus `Accepted`), computed with the
 * gateway translator's own attachment rules (gateway.ts), so status and snapshots agree:
 * - False NoMatchingParent: the Gateway does not exist, or no listener matches `sectionName`/`port`,
 *   or none of the matching listeners is served (protocol other than HTTP/HTTPS, or an HTTPS listener
 *   without a usable certificateRef, or a protocol conflict on its port);
 * - False NotAllowedByListeners: the listeners' `allowedRoutes` (namespaces, kinds) refuse the route;
 * - False NoMatchingListenerHostname: no route hostname intersects a listener hostname;
 * - False UnsupportedValue: a rule holds a value Weft cannot translate (the rule is left out);
 * - True Accepted otherwise, naming the listeners.
 * `ResolvedRefs` is the same check as for Service parents (status.ts).
 */

import {
  allowsRoute,
  findGateway,
  intersectHostnames,
  selectedListeners,
  servedListeners,
} from './gateway.ts';
import { translateRouteRules } from './routes.ts';
import type { ServiceIndex } from './services.ts';
import { namespaceOf, type ParentRefView, type RouteResource } from './specs.ts';
import type { RouteCondition } from './status.ts';
import type { MeshState } from './types.ts';

function no(reason: string, message: string): RouteCondition {
  return { type: 'Accepted', status: 'False', reason, message };
}

/** The `Accepted` condition of `route` for its Gateway parentRef `ref`. */
export function gatewayAccepted(
  state: MeshState,
  services: ServiceIndex,
  route: RouteResource,
  ref: ParentRefView,
): RouteCondition {
  const routeNs = namespaceOf(route);
  const id = `${ref.namespace ?? routeNs}/${ref.name}`;
  const gw = findGateway(state.resources, ref, routeNs);
  if (gw === undefined) return no('NoMatchingParent', `Gateway ${id} not found`);
  const selected = selectedListeners(gw, ref);
  if (selected.length === 0) {
    const which = [
      ref.sectionName !== undefined && `named ${ref.sectionName}`,
      ref.port !== undefined && `on port ${ref.port}`,
    ].filter(Boolean);
    return no('NoMatchingParent', `Gateway ${id} has no listener ${which.join(' ')}`);
  }
  const served = servedListeners(gw);
  const usable = selected.filter((l) => served.has(l));
  if (usable.length === 0) {
    return no(
      'NoMatchingParent',
      `Gateway ${id}: listener ${selected.map((l) => l.name).join(', ')} is not served (only HTTP, and HTTPS with a certificateRef in the Gateway's namespace)`,
    );
  }
  const allowed = usable.filter((l) => allowsRoute(gw, l, route));
  if (allowed.length === 0) {
    return no(
      'NotAllowedByListeners',
      `the allowedRoutes of Gateway ${id} do not admit ${route.kind} ${routeNs}/${route.metadata.name}`,
    );
  }
  const hostnames = route.spec.hostnames ?? [];
  const attached = allowed.filter((l) => intersectHostnames(l.hostname, hostnames).length > 0);
  if (attached.length === 0) {
    return no(
      'NoMatchingListenerHostname',
      `no hostname of the route matches a listener hostname of Gateway ${id}`,
    );
  }
  const dropped: string[] = [];
  translateRouteRules(services, [route], undefined, (name, reason) => dropped.push(`${name}: ${reason}`));
  if (dropped.length > 0) return no('UnsupportedValue', `rules left out: ${dropped.join('; ')}`);
  return {
    type: 'Accepted',
    status: 'True',
    reason: 'Accepted',
    message: `attached to Gateway ${id} listener ${attached.map((l) => l.name).join(', ')}`,
  };
}
