/**
 * Spec types of the Gateway API v1 kinds Weft accepts (`HTTPRoute`, `GRPCRoute`, `Gateway`),
 * as they come out of validation: field names exactly as in gateway-api apis/v1/*_types.go,
 * read-only, and with the CRD defaults applied, so a defaulted field is required here
 * (backendRef `group`/`kind`/`weight`, rule `matches`, path match `type`/`value`, header match
 * `type`, redirect `statusCode`, listener `allowedRoutes`, …). Filters are unions on `type`:
 * validation guarantees the member named by `type` is set and no other.
 *
 * Parts Weft does not interpret yet (Gateway TLS, infrastructure, allowed listeners)
 * reuse the `@kubernetes-models/gateway-api` interfaces, made read-only.
 */
import type { IIoK8sSigsGatewayApiApisV1AllowedListeners } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/AllowedListeners';
import type { IIoK8sSigsGatewayApiApisV1GatewayInfrastructure } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GatewayInfrastructure';
import type { IIoK8sSigsGatewayApiApisV1GatewayTLSConfig } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GatewayTLSConfig';

/** Recursively read-only view of a model type. */
export type DeepReadonly<T> = T extends (infer E)[]
  ? readonly DeepReadonly<E>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** Where a route attaches: a Gateway (north-south) or, with GAMMA, a Service (east-west). */
export interface ParentReference {
  /** Default `gateway.networking.k8s.io`; `""` for a Service (`core` is accepted and stored as `""`). */
  readonly group: string;
  /** Default `Gateway`; `Service` for mesh (GAMMA) routes. */
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
  readonly sectionName?: string;
  readonly port?: number;
}

/** A reference to a backend: by default a Service in the route's namespace. */
export interface BackendObjectReference {
  /** Default `""` (core). */
  readonly group: string;
  /** Default `Service`. */
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  /** Required when the backend is a Service. */
  readonly port?: number;
}

export interface LocalObjectReference {
  readonly group: string;
  readonly kind: string;
  readonly name: string;
}

export interface HTTPHeader {
  readonly name: string;
  readonly value: string;
}

/** set / add / remove; header names are unique within each list (case-insensitive). */
export interface HTTPHeaderFilter {
  readonly set?: readonly HTTPHeader[];
  readonly add?: readonly HTTPHeader[];
  readonly remove?: readonly string[];
}

export type HTTPPathModifier =
  | { readonly type: 'ReplaceFullPath'; readonly replaceFullPath: string }
  | { readonly type: 'ReplacePrefixMatch'; readonly replacePrefixMatch: string };

export interface HTTPRequestRedirectFilter {
  readonly scheme?: 'http' | 'https';
  readonly hostname?: string;
  readonly path?: HTTPPathModifier;
  readonly port?: number;
  /** Default 302. */
  readonly statusCode: 301 | 302 | 303 | 307 | 308;
}

export interface HTTPURLRewriteFilter {
  readonly hostname?: string;
  readonly path?: HTTPPathModifier;
}

export interface HTTPRequestMirrorFilter {
  readonly backendRef: BackendObjectReference;
  /** 0..100; at most one of percent and fraction. Neither: mirror everything. */
  readonly percent?: number;
  /** numerator <= denominator (default 100). */
  readonly fraction?: { readonly numerator: number; readonly denominator: number };
}

export interface HTTPCORSFilter {
  readonly allowOrigins?: readonly string[];
  readonly allowCredentials?: boolean;
  readonly allowMethods?: readonly string[];
  readonly allowHeaders?: readonly string[];
  readonly exposeHeaders?: readonly string[];
  /** Seconds; default 5. */
  readonly maxAge: number;
}

export type HTTPRouteFilter =
  | { readonly type: 'RequestHeaderModifier'; readonly requestHeaderModifier: HTTPHeaderFilter }
  | { readonly type: 'ResponseHeaderModifier'; readonly responseHeaderModifier: HTTPHeaderFilter }
  | { readonly type: 'RequestRedirect'; readonly requestRedirect: HTTPRequestRedirectFilter }
  | { readonly type: 'URLRewrite'; readonly urlRewrite: HTTPURLRewriteFilter }
  | { readonly type: 'RequestMirror'; readonly requestMirror: HTTPRequestMirrorFilter }
  | { readonly type: 'CORS'; readonly cors: HTTPCORSFilter }
  | { readonly type: 'ExtensionRef'; readonly extensionRef: LocalObjectReference };

export interface HTTPBackendRef extends BackendObjectReference {
  /** 0..1000000, default 1; the share is weight / sum of the rule's weights. */
  readonly weight: number;
  readonly filters?: readonly HTTPRouteFilter[];
}

export type PathMatchType = 'Exact' | 'PathPrefix' | 'RegularExpression';
export type ValueMatchType = 'Exact' | 'RegularExpression';
export type HTTPMethod =
  | 'GET'
  | 'HEAD'
  | 'POST'
  | 'PUT'
  | 'DELETE'
  | 'CONNECT'
  | 'OPTIONS'
  | 'TRACE'
  | 'PATCH';

export interface HTTPPathMatch {
  /** Default PathPrefix. */
  readonly type: PathMatchType;
  /** Default "/". Exact and PathPrefix values are absolute, normalised paths. */
  readonly value: string;
}

/** Header (case-insensitive name) or query parameter (exact name) match. */
export interface HTTPValueMatch {
  /** Default Exact. */
  readonly type: ValueMatchType;
  readonly name: string;
  readonly value: string;
}

export interface HTTPRouteMatch {
  /** Default `{type: PathPrefix, value: "/"}`. */
  readonly path: HTTPPathMatch;
  readonly headers?: readonly HTTPValueMatch[];
  readonly queryParams?: readonly HTTPValueMatch[];
  readonly method?: HTTPMethod;
}

/** GEP-2257 durations; `0s` disables; backendRequest <= request. */
export interface HTTPRouteTimeouts {
  readonly request?: string;
  readonly backendRequest?: string;
}

/** GEP-1731 (experimental): retry on these codes (400..599), at most `attempts` times. */
export interface HTTPRouteRetry {
  readonly codes?: readonly number[];
  readonly attempts?: number;
  readonly backoff?: string;
}

export interface SessionPersistence {
  readonly sessionName?: string;
  readonly absoluteTimeout?: string;
  readonly idleTimeout?: string;
  /** Default Cookie. */
  readonly type: 'Cookie' | 'Header';
  readonly cookieConfig?: { readonly lifetimeType: 'Permanent' | 'Session' };
}

export interface HTTPRouteRule {
  readonly name?: string;
  /** Default `[{path: {type: PathPrefix, value: "/"}}]`; never empty after validation. */
  readonly matches: readonly HTTPRouteMatch[];
  readonly filters?: readonly HTTPRouteFilter[];
  readonly backendRefs?: readonly HTTPBackendRef[];
  readonly timeouts?: HTTPRouteTimeouts;
  readonly retry?: HTTPRouteRetry;
  readonly sessionPersistence?: SessionPersistence;
}

export interface HTTPRouteSpec {
  readonly parentRefs?: readonly ParentReference[];
  readonly hostnames?: readonly string[];
  /** Default one rule matching PathPrefix "/". */
  readonly rules: readonly HTTPRouteRule[];
  readonly useDefaultGateways?: 'All' | 'None';
}

export interface GRPCMethodMatch {
  /** Default Exact. At least one of service and method is set. */
  readonly type: ValueMatchType;
  readonly service?: string;
  readonly method?: string;
}

export interface GRPCRouteMatch {
  readonly method?: GRPCMethodMatch;
  readonly headers?: readonly HTTPValueMatch[];
}

export type GRPCRouteFilter =
  | { readonly type: 'RequestHeaderModifier'; readonly requestHeaderModifier: HTTPHeaderFilter }
  | { readonly type: 'ResponseHeaderModifier'; readonly responseHeaderModifier: HTTPHeaderFilter }
  | { readonly type: 'RequestMirror'; readonly requestMirror: HTTPRequestMirrorFilter }
  | { readonly type: 'ExtensionRef'; readonly extensionRef: LocalObjectReference };

export interface GRPCBackendRef extends BackendObjectReference {
  readonly weight: number;
  readonly filters?: readonly GRPCRouteFilter[];
}

export interface GRPCRouteRule {
  readonly name?: string;
  /** No matches: every request. */
  readonly matches?: readonly GRPCRouteMatch[];
  readonly filters?: readonly GRPCRouteFilter[];
  readonly backendRefs?: readonly GRPCBackendRef[];
  readonly sessionPersistence?: SessionPersistence;
}

export interface GRPCRouteSpec {
  readonly parentRefs?: readonly ParentReference[];
  readonly hostnames?: readonly string[];
  readonly rules?: readonly GRPCRouteRule[];
  readonly useDefaultGateways?: 'All' | 'None';
}

export interface SecretObjectReference {
  /** Default "". */
  readonly group: string;
  /** Default Secret. */
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
}

export interface ListenerTLSConfig {
  /** Default Terminate. */
  readonly mode: 'Terminate' | 'Passthrough';
  readonly certificateRefs?: readonly SecretObjectReference[];
  readonly options?: Readonly<Record<string, string>>;
}

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly {
    readonly key: string;
    readonly operator: string;
    readonly values?: readonly string[];
  }[];
}

export interface AllowedRoutes {
  /** Default `{from: Same}`. */
  readonly namespaces: { readonly from: 'All' | 'Same' | 'Selector'; readonly selector?: LabelSelector };
  /** Route kinds; each group defaults to gateway.networking.k8s.io. */
  readonly kinds?: readonly { readonly group: string; readonly kind: string }[];
}

export interface Listener {
  readonly name: string;
  readonly hostname?: string;
  readonly port: number;
  /** HTTP, HTTPS, TLS, TCP, UDP or a domain-prefixed protocol. */
  readonly protocol: string;
  readonly tls?: ListenerTLSConfig;
  readonly allowedRoutes: AllowedRoutes;
}

export interface GatewaySpecAddress {
  /** Default IPAddress. */
  readonly type: string;
  readonly value?: string;
}

export interface GatewaySpec {
  readonly gatewayClassName: string;
  readonly listeners: readonly Listener[];
  readonly addresses?: readonly GatewaySpecAddress[];
  readonly infrastructure?: DeepReadonly<IIoK8sSigsGatewayApiApisV1GatewayInfrastructure>;
  readonly allowedListeners?: DeepReadonly<IIoK8sSigsGatewayApiApisV1AllowedListeners>;
  readonly tls?: DeepReadonly<IIoK8sSigsGatewayApiApisV1GatewayTLSConfig>;
  readonly defaultScope?: 'All' | 'None';
}
