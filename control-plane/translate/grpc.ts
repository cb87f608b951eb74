/**
 * GRPCRoute rules → the shared rule parts (Gateway API v1 GRPCRoute, apis/v1/grpcroute_types.go).
 *
 * gRPC calls are HTTP/2 POSTs to `/<package.Service>/<Method>`, so a GRPCMethodMatch becomes a
 * path match:
 * - type Exact (default) with service and method → Exact `/service/method`;
 *   service only → PathPrefix `/service/` (element-wise: every method of the service);
 *   method only → RegularExpression `/[^/]+/<method, escaped>` (that method on any service);
 * - type RegularExpression → RegularExpression `/(?:service)/(?:method)`, a missing half as
 *   `[^/]+`;
 * - no method match → no path condition (every call).
 * Header matches translate as for HTTPRoute. Filters: the header modifiers and RequestMirror
 * (ExtensionRef later). GRPCRoute has no timeouts, retries or redirects.
 */
import type { PathMatch, RouteMatch } from '../../sidecar/proxy/config/types.ts';
import { UnsupportedValue } from './filters.ts';
import { checkRegex, valueMatch } from './matches.ts';
import type { RuleParts } from './routes.ts';
import type { GRPCRouteMatchView, GRPCRouteRuleView } from './specs.ts';

const ANY_SEGMENT = '[^/]+';

/** `s` with every regex metacharacter escaped. */
function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** GRPCMethodMatch → path condition, or undefined for "any method". */
export function grpcPath(m: GRPCRouteMatchView['method']): PathMatch | undefined {
  if (m === undefined || (m.service === undefined && m.method === undefined)) return undefined;
  const type = m.type ?? 'Exact';
  if (type === 'Exact') {
    if (m.service !== undefined && m.method !== undefined)
      return { type: 'EXACT', value: `/${m.service}/${m.method}` };
    if (m.service !== undefined) return { type: 'PATH_PREFIX', value: `/${m.service}/` };
    return { type: 'REGULAR_EXPRESSION', value: `/${ANY_SEGMENT}/${escapeRegex(m.method!)}` };
  }
  if (type === 'RegularExpression') {
    const value = `/(?:${m.service ?? ANY_SEGMENT})/(?:${m.method ?? ANY_SEGMENT})`;
    checkRegex(value);
    return { type: 'REGULAR_EXPRESSION', value };
  }
  throw new UnsupportedValue(`GRPCMethodMatch type "${type}"`);
}

function grpcMatch(m: GRPCRouteMatchView): RouteMatch {
  const path = grpcPath(m.method);
  const headers = (m.headers ?? []).map(valueMatch);
  return {
    ...(path !== undefined && { path }),
    ...(headers.length > 0 && { headers }),
  };
}

/** One GRPCRoute rule as kind-independent rule parts. */
export function grpcRuleParts(rule: GRPCRouteRuleView): RuleParts {
  return {
    matches: (rule.matches ?? []).map(grpcMatch),
    ...(rule.filters !== undefined && {
      filters: rule.filters.filter((f) => f.type !== 'RequestRedirect' && f.type !== 'URLRewrite'),
    }),
    ...(rule.backendRefs !== undefined && { backendRefs: rule.backendRefs }),
  };
}
