/**
 * What the translator reads from user resources: read-only views of the Gateway API v1
 * `HTTPRoute` / `GRPCRoute` specs (field names exactly as in apis/v1/httproute_types.go and
 * grpcroute_types.go) and of Weft's `BackendTrafficPolicy` (Envoy Gateway names). Only the
 * fields the translator uses are listed; everything else is ignored.
 *
 * Invariants assumed from validation (control-plane/resources/): specs are valid and defaults are
 * applied (metadata.namespace, backendRef weight 1, rule matches default PathPrefix "/"). The
 * translator still reads every optional field defensively, so a spec missing a default never
 * crashes it. These views are structural: the resource validator's own spec types satisfy them.
 */
import type { Resource } from '../resources/types.ts';

/** Gateway API ParentReference (GAMMA: `group: "" | core, kind: Service`). */
export interface ParentRefView {
  readonly group?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
  readonly port?: number;
  readonly sectionName?: string;
}

/** Gateway API HTTPHeader / HTTPHeaderFilter. */
export interface HeaderView {
  readonly name: string;
  readonly value: string;
}
export interface HeaderFilterView {
  readonly set?: readonly HeaderView[];
  readonly add?: readonly HeaderView[];
  readonly remove?: readonly string[];
}

/** Gateway API HTTPPathModifier. */
export interface PathModifierView {
  readonly type: string;
  readonly replaceFullPath?: string;
  readonly replacePrefixMatch?: string;
}

/** Gateway API HTTPRouteFilter (and GRPCRouteFilter, a subset). */
export interface FilterView {
  readonly type: string;
  readonly requestHeaderModifier?: HeaderFilterView;
  readonly responseHeaderModifier?: HeaderFilterView;
  readonly requestRedirect?: {
    readonly scheme?: string;
    readonly hostname?: string;
    readonly path?: PathModifierView;
    readonly port?: number;
    readonly statusCode?: number;
  };
  readonly urlRewrite?: { readonly hostname?: string; readonly path?: PathModifierView };
  readonly requestMirror?: RequestMirrorView;
}

/** Gateway API HTTPRequestMirrorFilter: percent xor fraction (neither: every request). */
export interface RequestMirrorView {
  readonly backendRef: BackendRefView;
  readonly percent?: number;
  readonly fraction?: { readonly numerator: number; readonly denominator?: number };
}

/** Gateway API HTTPBackendRef / GRPCBackendRef. */
export interface BackendRefView {
  readonly group?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
  readonly port?: number;
  readonly weight?: number;
  readonly filters?: readonly FilterView[];
}

/** Gateway API HTTPHeaderMatch, HTTPQueryParamMatch, GRPCHeaderMatch. */
export interface ValueMatchView {
  readonly name: string;
  readonly type?: string;
  readonly value: string;
}

export interface HTTPRouteMatchView {
  readonly path?: { readonly type?: string; readonly value?: string };
  readonly headers?: readonly ValueMatchView[];
  readonly queryParams?: readonly ValueMatchView[];
  readonly method?: string;
}

export interface HTTPRouteRuleView {
  readonly name?: string;
  readonly matches?: readonly HTTPRouteMatchView[];
  readonly filters?: readonly FilterView[];
  readonly backendRefs?: readonly BackendRefView[];
  readonly timeouts?: { readonly request?: string; readonly backendRequest?: string };
  readonly retry?: HTTPRouteRetryView;
}

/** Gateway API HTTPRouteRetry (GEP-1731): codes 400..599, attempts, backoff (GEP-2257 duration). */
export interface HTTPRouteRetryView {
  readonly codes?: readonly number[];
  readonly attempts?: number;
  readonly backoff?: string;
}

export interface GRPCRouteMatchView {
  readonly method?: { readonly type?: string; readonly service?: string; readonly method?: string };
  readonly headers?: readonly ValueMatchView[];
}

export interface GRPCRouteRuleView {
  readonly name?: string;
  readonly matches?: readonly GRPCRouteMatchView[];
  readonly filters?: readonly FilterView[];
  readonly backendRefs?: readonly BackendRefView[];
}

export interface HTTPRouteSpecView {
  readonly parentRefs?: readonly ParentRefView[];
  /** Ignored for Service parents (GAMMA: the Service is the host). */
  readonly hostnames?: readonly string[];
  readonly rules?: readonly HTTPRouteRuleView[];
}

export interface GRPCRouteSpecView {
  readonly parentRefs?: readonly ParentRefView[];
  readonly hostnames?: readonly string[];
  readonly rules?: readonly GRPCRouteRuleView[];
}

/** Policy attachment target (Gateway API LocalPolicyTargetReference). */
export interface TargetRefView {
  readonly group?: string;
  readonly kind: string;
  readonly name: string;
}

/** `BackendTrafficPolicy` (weft.dev/v1alpha1), Envoy Gateway names; durations are GEP-2257 strings. */
export interface BackendTrafficPolicySpecView {
  readonly targetRefs?: readonly TargetRefView[];
  readonly loadBalancer?: {
    /** RoundRobin | LeastRequest | Random | ConsistentHash */
    readonly type?: string;
    readonly consistentHash?: { readonly type?: string; readonly header?: { readonly name?: string } };
  };
  readonly retry?: PolicyRetryView;
  readonly timeout?: {
    readonly tcp?: { readonly connectTimeout?: string; readonly idleTimeout?: string };
    readonly http?: { readonly requestTimeout?: string; readonly connectionIdleTimeout?: string };
  };
  readonly circuitBreaker?: {
    readonly maxConnections?: number;
    readonly maxPendingRequests?: number;
    readonly maxParallelRequests?: number;
    readonly maxParallelRetries?: number;
    readonly errorRate?: {
      readonly thresholdPercent: number;
      readonly volumeThreshold?: number;
      readonly resetTimeout?: string;
      readonly window?: string;
    };
  };
  readonly outlierDetection?: {
    readonly consecutive5xxErrors?: number;
    readonly consecutiveGatewayErrors?: number;
    readonly interval?: string;
    readonly baseEjectionTime?: string;
    readonly maxEjectionPercent?: number;
  };
  readonly healthCheck?: {
    readonly active?: {
      readonly http?: { readonly path?: string };
      readonly interval?: string;
      readonly timeout?: string;
      readonly healthyThreshold?: number;
      readonly unhealthyThreshold?: number;
    };
  };
  readonly faultInjection?: {
    readonly delay?: { readonly fixedDelay?: string; readonly percentage?: number };
    readonly abort?: { readonly httpStatus?: number; readonly percentage?: number };
  };
}

/** BackendTrafficPolicy `retry` (Envoy Gateway's Retry). */
export interface PolicyRetryView {
  readonly numRetries?: number;
  readonly perRetry?: {
    readonly timeout?: string;
    readonly backOff?: { readonly baseInterval?: string; readonly maxInterval?: string };
  };
  readonly retryOn?: { readonly httpStatusCodes?: readonly number[]; readonly triggers?: readonly string[] };
  readonly budget?: { readonly percent?: number; readonly minRetriesPerSecond?: number };
}

/** A route kind the translator turns into proxy routes. */
export type RouteKind = 'HTTPRoute' | 'GRPCRoute';

export type HTTPRouteResource = Resource<HTTPRouteSpecView> & { readonly kind: 'HTTPRoute' };
export type GRPCRouteResource = Resource<GRPCRouteSpecView> & { readonly kind: 'GRPCRoute' };
export type RouteResource = HTTPRouteResource | GRPCRouteResource;

export function isRouteResource(r: Resource): r is Resource & RouteResource {
  return r.kind === 'HTTPRoute' || r.kind === 'GRPCRoute';
}

/** `namespace` of a resource, default "default". */
export function namespaceOf(r: Pick<Resource, 'metadata'>): string {
  return r.metadata.namespace ?? 'default';
}

/** True for a reference to a core Service: group "" or "core" (both accepted), kind Service. */
export function isServiceRef(
  ref: { readonly group?: string; readonly kind?: string },
  kindDefault: string,
): boolean {
  const group = ref.group ?? '';
  return (group === '' || group === 'core') && (ref.kind ?? kindDefault) === 'Service';
}
