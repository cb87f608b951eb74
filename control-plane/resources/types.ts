/**
 * User resources: what people write and `weft apply` sends (Kubernetes style
 * `apiVersion/kind/metadata/spec`). Routing kinds are Gateway API v1; Weft's own kinds are
 * `weft.dev/v1alpha1` and attach to their targets with `targetRefs` (policy attachment).
 */

import type { GatewaySpec, GRPCRouteSpec, HTTPRouteSpec } from './gateway-types.ts';

export const GATEWAY_API_VERSION = 'gateway.networking.k8s.io/v1';
export const WEFT_API_VERSION = 'weft.dev/v1alpha1';

/** Every kind the control plane accepts, with its apiVersion. */
export const KINDS = {
  HTTPRoute: GATEWAY_API_VERSION,
  GRPCRoute: GATEWAY_API_VERSION,
  Gateway: GATEWAY_API_VERSION,
  Service: WEFT_API_VERSION,
  MeshConfig: WEFT_API_VERSION,
  BackendTrafficPolicy: WEFT_API_VERSION,
  AuthorizationPolicy: WEFT_API_VERSION,
  SecurityPolicy: WEFT_API_VERSION,
  RateLimitPolicy: WEFT_API_VERSION,
  Secret: WEFT_API_VERSION,
} as const;

export type Kind = keyof typeof KINDS;

export interface ObjectMeta {
  readonly name: string;
  /** Default "default". MeshConfig is cluster-scoped: its namespace is ignored. */
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  /** Set by the control plane: RFC 3339 time of first creation (kept across updates). */
  readonly creationTimestamp?: string;
  /** Set by the control plane: the store revision of the last write (decimal string). */
  readonly resourceVersion?: string;
}

/** A stored or submitted resource. `spec` is validated per kind; `status` is written by Weft. */
export interface Resource<S = Record<string, unknown>> {
  readonly apiVersion: string;
  readonly kind: Kind;
  readonly metadata: ObjectMeta;
  readonly spec: S;
  readonly status?: Record<string, unknown>;
}

/** `<kind>/<namespace>/<name>`, e.g. `HTTPRoute/default/reviews`. */
export function resourceId(r: Pick<Resource, 'kind' | 'metadata'>): string {
  return `${r.kind}/${r.metadata.namespace ?? 'default'}/${r.metadata.name}`;
}

/** `Service` (weft.dev/v1alpha1): a named set of workloads, chosen by labels, and its ports. */
export interface ServiceSpec {
  /**
   * Endpoint registrations whose labels include all of these belong to the Service.
   * Default `{ app: <metadata.name> }`.
   */
  readonly selector?: Readonly<Record<string, string>>;
  readonly ports: readonly ServicePort[];
}

export interface ServicePort {
  readonly name?: string;
  /** The port clients address (`Host: api:8080`); 1..65535. */
  readonly port: number;
  /** Protocol on this port; default `http`. */
  readonly appProtocol?: 'http' | 'http2' | 'grpc' | 'tcp';
}

// ---------------------------------------------------------------------------------------------
// Spec types of the other kinds, as returned by `validateResource` (defaults applied: a field
// with a default is required here). Field names follow Envoy Gateway and Istio.
// ---------------------------------------------------------------------------------------------

/** The Gateway API spec types (HTTPRouteSpec, GRPCRouteSpec, GatewaySpec and their parts). */
export type * from './gateway-types.ts';

/**
 * Policy attachment (Gateway API LocalPolicyTargetReference): a target in the policy's namespace.
 * `group` defaults by kind: `""` for Service (`core` accepted, stored as `""`),
 * `gateway.networking.k8s.io` for Gateway, HTTPRoute and GRPCRoute.
 */
export interface PolicyTargetReference {
  readonly group: string;
  readonly kind: 'Service' | 'Gateway' | 'HTTPRoute' | 'GRPCRoute';
  readonly name: string;
}

/** `MeshConfig` (weft.dev/v1alpha1, cluster-scoped, named `default`): mesh-wide identity settings. */
export interface MeshConfigSpec {
  /** SPIFFE trust domain (a DNS name); default `cluster.local`. */
  readonly trustDomain: string;
  /** Peer authentication between sidecars; default STRICT (mTLS only). */
  readonly mtls: { readonly mode: 'STRICT' | 'PERMISSIVE' };
  /** Workload certificate lifetime, GEP-2257 duration 1h..720h; default `24h`. */
  readonly certificateTtl: string;
  /** The store of Global RateLimitPolicies (gateway replicas share it); absent: Global counts locally. */
  readonly rateLimit?: {
    readonly redis: { readonly url: string };
    /** When Redis is unreachable: Open (requests pass, default) or Closed (503). */
    readonly failMode: 'Open' | 'Closed';
    /** Per Redis command, GEP-2257 duration 10ms..10s; default 100ms. */
    readonly timeout: string;
  };
}

/** `BackendTrafficPolicy`: how clients reach the target Services (Envoy Gateway names). */
export interface BackendTrafficPolicySpec {
  readonly targetRefs: readonly PolicyTargetReference[];
  readonly loadBalancer?: {
    readonly type: 'RoundRobin' | 'LeastRequest' | 'Random' | 'ConsistentHash';
    /** Required when type is ConsistentHash (and only then). */
    readonly consistentHash?: { readonly type: 'Header'; readonly header: { readonly name: string } };
  };
  readonly retry?: {
    /** Retries after the first attempt; default 2. */
    readonly numRetries: number;
    readonly perRetry?: {
      readonly timeout?: string;
      readonly backOff?: { readonly baseInterval?: string; readonly maxInterval?: string };
    };
    readonly retryOn?: {
      readonly httpStatusCodes?: readonly number[];
      readonly triggers?: readonly RetryTrigger[];
    };
    /** Retries in flight may be at most `percent` % of active requests, but always `minRetriesPerSecond`. */
    readonly budget?: { readonly percent: number; readonly minRetriesPerSecond: number };
  };
  readonly timeout?: {
    /** `idleTimeout`: TCP services (appProtocol tcp) close a connection idle this long (default 1h). */
    readonly tcp?: { readonly connectTimeout?: string; readonly idleTimeout?: string };
    readonly http?: { readonly requestTimeout?: string; readonly connectionIdleTimeout?: string };
  };
  /** Per-endpoint-set limits; each defaults to 1024 (Envoy's default). */
  readonly circuitBreaker?: {
    readonly maxConnections: number;
    readonly maxPendingRequests: number;
    readonly maxParallelRequests: number;
    readonly maxParallelRetries: number;
    /** Error-rate breaker per endpoint (Weft's; opossum's settings): off when absent. */
    readonly errorRate?: {
      /** Open at this share of failed requests in `window` (1..100). */
      readonly thresholdPercent: number;
      /** Only once `window` saw this many requests; default 20. */
      readonly volumeThreshold: number;
      /** Open this long, then one probe; default `10s`. */
      readonly resetTimeout: string;
      /** The rolling window; default `10s`. */
      readonly window: string;
    };
  };
  /** Passive health checking (Envoy outlier detection). */
  readonly outlierDetection?: {
    readonly consecutive5xxErrors: number;
    readonly consecutiveGatewayErrors: number;
    readonly interval: string;
    readonly baseEjectionTime: string;
    readonly maxEjectionPercent: number;
  };
  readonly healthCheck?: {
    readonly active?: {
      readonly type: 'HTTP';
      readonly http: { readonly path: string };
      readonly interval: string;
      readonly timeout: string;
      readonly healthyThreshold: number;
      readonly unhealthyThreshold: number;
    };
  };
  /** Fault injection on the routes to the target Services (Envoy Gateway's names); delay and/or abort. */
  readonly faultInjection?: {
    /** Delay `percentage` % (0..100, default 100) of requests by `fixedDelay`. */
    readonly delay?: { readonly fixedDelay: string; readonly percentage: number };
    /** Answer `percentage` % (default 100) of requests with `httpStatus` (200..599). */
    readonly abort?: { readonly httpStatus: number; readonly percentage: number };
  };
}

/** Envoy retry_on conditions, by Envoy Gateway's names. */
export type RetryTrigger =
  | '5xx'
  | 'gateway-error'
  | 'reset'
  | 'connect-failure'
  | 'retriable-4xx'
  | 'refused-stream'
  | 'retriable-status-codes'
  | 'cancelled'
  | 'deadline-exceeded'
  | 'internal'
  | 'resource-exhausted'
  | 'unavailable';

/** `AuthorizationPolicy` (Istio-like): ALLOW or DENY requests by SPIFFE principal, namespace, path, method. */
export interface AuthorizationPolicySpec {
  /** Services or Gateways; absent means every Service in the policy's namespace. */
  readonly targetRefs?: readonly PolicyTargetReference[];
  /** Default ALLOW. */
  readonly action: 'ALLOW' | 'DENY';
  /** A request matches the policy when it matches any rule; a rule matches when every from and to entry does. */
  readonly rules?: readonly AuthorizationRule[];
}

export interface AuthorizationRule {
  /** Any entry matches (OR). */
  readonly from?: readonly { readonly source: AuthorizationSource }[];
  readonly to?: readonly { readonly operation: AuthorizationOperation }[];
  /** Every condition holds (AND). */
  readonly when?: readonly AuthorizationCondition[];
}

/** Values may start or end with `*`; `*` alone matches anything present. `not*`: no value matches. */
export interface AuthorizationSource {
  /** SPIFFE IDs without or with `spiffe://`, e.g. `cluster.local/ns/shop/sa/cart`. */
  readonly principals?: readonly string[];
  readonly notPrincipals?: readonly string[];
  readonly namespaces?: readonly string[];
  readonly notNamespaces?: readonly string[];
}

export interface AuthorizationOperation {
  readonly paths?: readonly string[];
  readonly notPaths?: readonly string[];
  readonly methods?: readonly string[];
  readonly notMethods?: readonly string[];
}

/** Istio `Condition`: `key` is `request.headers[<name>]`; at least one of values, notValues. */
export interface AuthorizationCondition {
  readonly key: string;
  readonly values?: readonly string[];
  readonly notValues?: readonly string[];
}

/** `SecurityPolicy` (Envoy Gateway): authentication and access control at the gateway. */
export interface SecurityPolicySpec {
  readonly targetRefs: readonly PolicyTargetReference[];
  readonly jwt?: {
    readonly providers: readonly JWTProvider[];
    /** When true, requests without a token pass (tokens present must still be valid). */
    readonly optional?: boolean;
  };
  readonly apiKeyAuth?: {
    /** Envoy Gateway's Secrets: rejected (Weft has no Secret kind); use `clients`. */
    readonly credentialRefs?: readonly {
      readonly group: string;
      readonly kind: string;
      readonly name: string;
      readonly namespace?: string;
    }[];
    /** Weft's own: the clients and their keys, stored as SHA-256 digests only. */
    readonly clients?: readonly ApiKeyClientSpec[];
    /** Where to look for the key; the first hit wins (default: header x-api-key). */
    readonly extractFrom?: readonly {
      readonly headers?: readonly string[];
      readonly params?: readonly string[];
      readonly cookies?: readonly string[];
    }[];
    /** Header that receives the authenticated client ID. */
    readonly forwardClientIDHeader?: string;
    /** Remove the key from the request before forwarding. */
    readonly sanitize?: boolean;
    /** Weft's own: requests without a key pass (a bad key never does). */
    readonly optional?: boolean;
  };
  readonly authorization?: {
    /** Default Deny. */
    readonly defaultAction: 'Allow' | 'Deny';
    /** First matching rule decides. */
    readonly rules?: readonly {
      readonly name?: string;
      readonly action: 'Allow' | 'Deny';
      readonly operation?: { readonly methods: readonly string[] };
      readonly principal: {
        readonly clientCIDRs?: readonly string[];
        /** Weft's own: authenticated by an API key (of these clients / plans, with these scopes). */
        readonly apiKey?: {
          readonly clients?: readonly string[];
          readonly plans?: readonly string[];
          readonly scopes?: readonly string[];
        };
        readonly jwt?: {
          readonly provider: string;
          readonly scopes?: readonly string[];
          readonly claims?: readonly { readonly name: string; readonly values: readonly string[] }[];
        };
      };
    }[];
  };
  readonly cors?: {
    readonly allowOrigins?: readonly string[];
    readonly allowMethods?: readonly string[];
    readonly allowHeaders?: readonly string[];
    readonly exposeHeaders?: readonly string[];
    readonly maxAge?: string;
    readonly allowCredentials?: boolean;
  };
}

/** One API-key client (SecurityPolicy `apiKeyAuth.clients[]`, Weft's own). */
export interface ApiKeyClientSpec {
  readonly id: string;
  readonly plan?: string;
  readonly keys: readonly {
    readonly id: string;
    /** Lower-case hex SHA-256 of the key. */
    readonly sha256: string;
    /** RFC 3339; absent: no expiry. */
    readonly expiresAt?: string;
    readonly scopes?: readonly string[];
  }[];
}

export interface JWTProvider {
  /** Unique within the policy; authorization rules refer to it. */
  readonly name: string;
  readonly issuer?: string;
  readonly audiences?: readonly string[];
  /** Exactly one of remoteJWKS and localJWKS. */
  readonly remoteJWKS?: { readonly uri: string };
  readonly localJWKS?: { readonly type: 'Inline'; readonly inline: string };
  readonly claimToHeaders?: readonly { readonly header: string; readonly claim: string }[];
  /** Weft's own: the algorithm allowlist (default every asymmetric one; never none or HS*). */
  readonly algorithms?: readonly string[];
  /** Weft's own: tolerance for exp/nbf (default 30s, at most 5m). */
  readonly clockSkew?: string;
  readonly extractFrom?: {
    readonly headers?: readonly { readonly name: string; readonly valuePrefix?: string }[];
    readonly cookies?: readonly string[];
    readonly params?: readonly string[];
  };
}

/** `RateLimitPolicy`: request limits per client, route and plan (Envoy Gateway's local rate limit names). */
export interface RateLimitPolicySpec {
  readonly targetRefs: readonly PolicyTargetReference[];
  /** Local (default): counted in each gateway replica; Global: shared by all replicas in Redis. */
  readonly type: 'Local' | 'Global';
  readonly limits: readonly RateLimit[];
}

export interface RateLimit {
  /** All selectors must match (AND); none: every request. */
  readonly clientSelectors?: readonly RateLimitSelector[];
  readonly limit: {
    readonly requests: number;
    /** A Month is 30 days from the bucket's first request. */
    readonly unit: 'Second' | 'Minute' | 'Hour' | 'Day' | 'Month';
    /** Extra requests per 10 units, drawn on once a unit's requests are spent; default 0. */
    readonly burst?: number;
  };
  /** Applies only to clients on this plan (from API key client metadata). */
  readonly plan?: string;
}

export interface RateLimitSelector {
  readonly headers?: readonly {
    readonly name: string;
    /** Default Exact; Distinct keeps a separate bucket per value. */
    readonly type: 'Exact' | 'RegularExpression' | 'Distinct';
    readonly value?: string;
    readonly invert?: boolean;
  }[];
  readonly sourceCIDR?: { readonly type: 'Exact' | 'Distinct'; readonly value: string };
  /** The authenticated client id (API-key client, else JWT `sub`); Distinct: a bucket per client. */
  readonly clientId?: { readonly type: 'Exact' | 'Distinct'; readonly value?: string };
  /** A claim of the verified JWT. */
  readonly jwtClaim?: {
    readonly name: string;
    readonly type: 'Exact' | 'RegularExpression' | 'Distinct';
    readonly value?: string;
    readonly invert?: boolean;
  };
}

/** The spec type of each kind. */
export interface KindSpecs {
  HTTPRoute: HTTPRouteSpec;
  GRPCRoute: GRPCRouteSpec;
  Gateway: GatewaySpec;
  Service: ServiceSpec;
  MeshConfig: MeshConfigSpec;
  BackendTrafficPolicy: BackendTrafficPolicySpec;
  AuthorizationPolicy: AuthorizationPolicySpec;
  SecurityPolicy: SecurityPolicySpec;
  RateLimitPolicy: RateLimitPolicySpec;
  Secret: TlsSecretSpec;
}

/** `Secret` (kinds/secret.ts): a TLS certificate chain and key (PEM) for Gateway listeners. */
export interface TlsSecretSpec {
  readonly type: 'kubernetes.io/tls';
  readonly stringData: { readonly 'tls.crt': string; readonly 'tls.key': string };
}

/** A resource of kind `K` with its typed spec. */
export type ResourceOf<K extends Kind> = Resource & { readonly kind: K; readonly spec: KindSpecs[K] };

/** Narrows a validated resource to its kind's spec type. */
export function isKind<K extends Kind>(r: Resource, kind: K): r is ResourceOf<K> {
  return r.kind === kind;
}

/** True for the cluster-scoped kinds (no namespace). */
export function isClusterScoped(kind: Kind): boolean {
  return kind === 'MeshConfig';
}
