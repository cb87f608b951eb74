/**
 * Proxy configuration types: the TypeScript face of `proto/weft/v1/config.proto` in its proto3 JSON
 * mapping (lowerCamelCase names, enums as their string names, absent fields omitted).
 *
 * These are what a bootstrap YAML/JSON file holds and, later, what the control plane streams.
 * `load.ts` checks every document against the proto schema before a value of these types exists,
 * and `test/unit/config/proto-shape.test.ts` keeps the two definitions in step.
 * Units live in names: `*Ms` milliseconds, `*Bytes` bytes.
 */

export type TrafficDirection = 'TRAFFIC_DIRECTION_UNSPECIFIED' | 'OUTBOUND' | 'INBOUND' | 'GATEWAY';
export type MatchType = 'MATCH_TYPE_UNSPECIFIED' | 'EXACT' | 'PATH_PREFIX' | 'REGULAR_EXPRESSION';
export type PathModifierType =
  | 'PATH_MODIFIER_TYPE_UNSPECIFIED'
  | 'REPLACE_FULL_PATH'
  | 'REPLACE_PREFIX_MATCH';
export type LbPolicy =
  | 'LB_POLICY_UNSPECIFIED'
  | 'ROUND_ROBIN'
  | 'LEAST_REQUEST'
  | 'RANDOM'
  | 'CONSISTENT_HASH';
export type HealthStatus = 'HEALTH_STATUS_UNSPECIFIED' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING';
export type TlsMode = 'TLS_MODE_UNSPECIFIED' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';
export type UpstreamProtocol = 'UPSTREAM_PROTOCOL_UNSPECIFIED' | 'HTTP1' | 'HTTP2';

export interface Bootstrap {
  readonly node?: Node;
  readonly admin?: Admin;
  readonly listeners?: readonly Listener[];
  readonly routes?: readonly RouteConfiguration[];
  readonly clusters?: readonly Cluster[];
  readonly endpoints?: readonly ClusterLoadAssignment[];
  readonly trustBundle?: TrustBundle;
  readonly rateLimitService?: RateLimitService;
  readonly certificates?: readonly TlsCertificate[];
}

/** A server certificate: PEM inline, files, or neither (the gateway resolves the name). */
export interface TlsCertificate {
  readonly name: string;
  readonly certChainPem?: string;
  readonly privateKeyPem?: string;
  readonly certChainFile?: string;
  readonly privateKeyFile?: string;
}

/** TLS termination on a listener (config.proto `ServerTls`). */
export interface ServerTls {
  readonly certificates?: readonly SniCertificate[];
  readonly minVersion?: string;
  readonly ciphers?: string;
}

export interface SniCertificate {
  readonly serverNames?: readonly string[];
  readonly certificateName: string;
}

export interface TrustBundle {
  readonly trustDomain?: string;
  readonly rootsPem?: readonly string[];
}

export interface Node {
  readonly id?: string;
  readonly service?: string;
  readonly namespace?: string;
  readonly workload?: string;
}

export interface Admin {
  readonly address?: string;
  readonly port?: number;
}

export interface Listener {
  readonly name: string;
  readonly address?: string;
  readonly port: number;
  readonly direction?: TrafficDirection;
  readonly routeConfigName: string;
  readonly limits?: HttpConnectionLimits;
  readonly xffNumTrustedHops?: number;
  readonly drainTimeoutMs?: number;
  readonly tls?: DownstreamTls;
  readonly rbac?: Rbac;
  readonly authProviders?: AuthProviders;
  readonly auth?: AuthPolicy;
  readonly rateLimits?: readonly RateLimitRule[];
  readonly maxRequestBodyBytes?: number;
  readonly responseCacheMaxBytes?: number;
  readonly serverTls?: ServerTls;
  /** A TCP proxy listener (no HTTP); `routeConfigName` is then unused (may be ''). */
  readonly tcpProxy?: TcpProxy;
  /** Inbound mTLS listener: app ports that take opaque TCP from peer sidecars. */
  readonly inboundTcp?: InboundTcp;
}

/** config.proto `TcpProxy`: opaque TCP to `cluster` (defaults there). */
export interface TcpProxy {
  readonly cluster: string;
  readonly idleTimeoutMs?: number;
  readonly maxConnections?: number;
  readonly destinationPort?: number;
}

/** config.proto `InboundTcp`: app ports on 127.0.0.1 that peers may reach as opaque TCP. */
export interface InboundTcp {
  readonly ports?: readonly number[];
  readonly idleTimeoutMs?: number;
}

export interface DownstreamTls {
  readonly mode?: TlsMode;
  readonly maxConnectionAgeMs?: number;
}

export interface UpstreamTls {
  readonly enabled?: boolean;
}

/** Istio AuthorizationPolicy semantics; see config.proto `Rbac`. */
export interface Rbac {
  readonly deny?: readonly RbacRule[];
  readonly allow?: readonly RbacRule[];
  readonly allowEnforced?: boolean;
}

export interface RbacRule {
  readonly name?: string;
  readonly from?: readonly RbacSource[];
  readonly to?: readonly RbacOperation[];
  readonly when?: readonly RbacCondition[];
}

export interface RbacSource {
  readonly principals?: readonly string[];
  readonly notPrincipals?: readonly string[];
  readonly namespaces?: readonly string[];
  readonly notNamespaces?: readonly string[];
}

export interface RbacOperation {
  readonly methods?: readonly string[];
  readonly notMethods?: readonly string[];
  readonly paths?: readonly string[];
  readonly notPaths?: readonly string[];
}

export interface RbacCondition {
  readonly header: string;
  readonly values?: readonly string[];
  readonly notValues?: readonly string[];
}

export interface HttpConnectionLimits {
  /** Longest request target, bytes (default 8192); longer → 414. */
  readonly maxRequestUrlBytes?: number;
  readonly maxRequestHeadersBytes?: number;
  readonly maxRequestHeadersCount?: number;
  readonly requestHeadersTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly maxConnections?: number;
  readonly requestTimeoutMs?: number;
  readonly http2MaxConcurrentStreams?: number;
  readonly http2InitialStreamWindowBytes?: number;
  readonly http2InitialConnectionWindowBytes?: number;
  readonly http2MaxResetsPerWindow?: number;
  readonly http2ResetWindowMs?: number;
  readonly http2MaxInvalidFrames?: number;
  /** Requests in progress on the listener beyond which new ones get 503 OVERLOADED (default 4096; 0: no bound). */
  readonly maxActiveRequests?: number;
  /** Event-loop delay (ms, p99 over 250 ms) at which new requests get 503 OVERLOADED (default 0: off). */
  readonly maxEventLoopDelayMs?: number;
  /**
   * A request with no byte either way for this long ends (ms; default 300000, Envoy's
   * `stream_idle_timeout`; 0: off): 408 STREAM_IDLE_TIMEOUT, or a reset once the response started.
   */
  readonly streamIdleTimeoutMs?: number;
}

export interface RouteConfiguration {
  readonly name: string;
  readonly virtualHosts?: readonly VirtualHost[];
}

export interface VirtualHost {
  readonly name?: string;
  readonly domains?: readonly string[];
  readonly routes?: readonly Route[];
}

/** One HTTPRoute rule. Exactly one of `route`, `redirect`, `directResponse` is set. */
export interface Route {
  readonly name?: string;
  readonly matches?: readonly RouteMatch[];
  readonly route?: RouteAction;
  readonly redirect?: RedirectAction;
  readonly directResponse?: DirectResponseAction;
  readonly requestHeaderModifier?: HeaderModifier;
  readonly responseHeaderModifier?: HeaderModifier;
  readonly urlRewrite?: UrlRewrite;
  readonly timeouts?: RouteTimeouts;
  readonly retry?: RetryPolicy;
  readonly fault?: FaultInjection;
  readonly mirrors?: readonly RequestMirror[];
  readonly auth?: AuthPolicy;
  readonly rateLimits?: readonly RateLimitRule[];
  readonly cache?: ResponseCachePolicy;
  readonly maxRequestBodyBytes?: number;
}

export interface RetryPolicy {
  readonly numRetries?: number;
  readonly retryOnStatus?: readonly number[];
  readonly retryOnConnectFailure?: boolean;
  readonly retryOnReset?: boolean;
  readonly perTryTimeoutMs?: number;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  readonly retryMethods?: readonly string[];
  readonly maxBufferedBodyBytes?: number;
  /** gRPC status codes (0..16) retried on a Trailers-Only response to a gRPC request. */
  readonly retryOnGrpcStatus?: readonly number[];
}

export interface FaultInjection {
  readonly delayMs?: number;
  readonly delayPercent?: number;
  readonly abortStatus?: number;
  readonly abortPercent?: number;
}

export interface RequestMirror {
  readonly cluster: string;
  readonly percent?: number;
}

export interface RouteMatch {
  readonly path?: PathMatch;
  readonly headers?: readonly HeaderMatch[];
  readonly queryParams?: readonly QueryParamMatch[];
  readonly method?: string;
}

export interface PathMatch {
  readonly type?: MatchType;
  readonly value?: string;
}

export interface HeaderMatch {
  readonly name: string;
  readonly type?: MatchType;
  readonly value: string;
}

export interface QueryParamMatch {
  readonly name: string;
  readonly type?: MatchType;
  readonly value: string;
}

export interface RouteAction {
  readonly clusters?: readonly WeightedCluster[];
}

export interface WeightedCluster {
  readonly name: string;
  readonly weight?: number;
  readonly invalidReason?: string;
  readonly requestHeaderModifier?: HeaderModifier;
  readonly responseHeaderModifier?: HeaderModifier;
}

export interface RedirectAction {
  readonly scheme?: string;
  readonly hostname?: string;
  readonly port?: number;
  readonly path?: PathModifier;
  readonly statusCode?: number;
}

export interface DirectResponseAction {
  readonly status: number;
  readonly body?: string;
  readonly contentType?: string;
}

export interface HeaderValue {
  readonly name: string;
  readonly value: string;
}

export interface HeaderModifier {
  readonly set?: readonly HeaderValue[];
  readonly add?: readonly HeaderValue[];
  readonly remove?: readonly string[];
}

export interface PathModifier {
  readonly type: PathModifierType;
  readonly value: string;
}

export interface UrlRewrite {
  readonly hostname?: string;
  readonly path?: PathModifier;
}

export interface RouteTimeouts {
  readonly requestMs?: number;
  readonly backendRequestMs?: number;
}

export interface Cluster {
  readonly name: string;
  readonly lbPolicy?: LbPolicy;
  readonly hashHeader?: string;
  readonly connectionPool?: ConnectionPool;
  readonly tls?: UpstreamTls;
  readonly circuitBreakers?: CircuitBreakers;
  readonly outlierDetection?: OutlierDetection;
  readonly healthCheck?: HealthCheck;
  readonly retryBudget?: RetryBudget;
  readonly protocol?: UpstreamProtocol;
}

export interface CircuitBreakers {
  readonly maxConnections?: number;
  readonly maxPendingRequests?: number;
  readonly maxRequests?: number;
  readonly maxRetries?: number;
  readonly errorThresholdPercent?: number;
  readonly volumeThreshold?: number;
  readonly resetTimeoutMs?: number;
  readonly windowMs?: number;
}

export interface OutlierDetection {
  readonly consecutiveServerErrors?: number;
  readonly consecutiveGatewayErrors?: number;
  readonly intervalMs?: number;
  readonly baseEjectionTimeMs?: number;
  readonly maxEjectionPercent?: number;
  readonly successRateMinimumHosts?: number;
  readonly successRateRequestVolume?: number;
  readonly successRateStdevFactor?: number;
  readonly panicThresholdPercent?: number;
}

export interface HealthCheck {
  readonly path: string;
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly healthyThreshold?: number;
  readonly unhealthyThreshold?: number;
}

export interface RetryBudget {
  readonly percent?: number;
  readonly minRetriesPerSecond?: number;
  readonly windowMs?: number;
}

export interface ConnectionPool {
  readonly maxConnectionsPerEndpoint?: number;
  readonly connectTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly maxRequestsPerConnection?: number;
}

export interface Endpoint {
  readonly address: string;
  readonly port: number;
  readonly weight?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly health?: HealthStatus;
  readonly identity?: string;
}

export interface ClusterLoadAssignment {
  readonly clusterName: string;
  readonly endpoints?: readonly Endpoint[];
}

// ---- Edge authentication (config.proto `AuthProviders`, `AuthPolicy`) ----------------------

export type AuthAction = 'AUTH_ACTION_UNSPECIFIED' | 'AUTH_ALLOW' | 'AUTH_DENY';

export interface AuthProviders {
  readonly jwtProviders?: readonly JwtProvider[];
  readonly apiKeySets?: readonly ApiKeySet[];
}

export interface JwtProvider {
  readonly name: string;
  readonly issuer?: string;
  readonly audiences?: readonly string[];
  readonly remoteJwksUri?: string;
  readonly localJwks?: string;
  readonly algorithms?: readonly string[];
  readonly clockSkewMs?: number;
  readonly jwksCacheMs?: number;
  readonly jwksCooldownMs?: number;
  readonly jwksTimeoutMs?: number;
  readonly claimToHeaders?: readonly ClaimToHeader[];
  readonly sources?: readonly CredentialSource[];
}

export interface ClaimToHeader {
  readonly claim: string;
  readonly header: string;
}

/** Exactly one of `header`, `queryParam`, `cookie`. */
export interface CredentialSource {
  readonly header?: string;
  readonly valuePrefix?: string;
  readonly queryParam?: string;
  readonly cookie?: string;
}

export interface ApiKeySet {
  readonly name: string;
  readonly clients?: readonly ApiKeyClient[];
  readonly sources?: readonly CredentialSource[];
}

export interface ApiKeyClient {
  readonly id: string;
  readonly plan?: string;
  readonly keys?: readonly ApiKey[];
}

export interface ApiKey {
  readonly id: string;
  /** Lower-case hex SHA-256 of the key. */
  readonly sha256: string;
  /** RFC 3339; absent: no expiry. */
  readonly expiresAt?: string;
  readonly scopes?: readonly string[];
}

export interface AuthPolicy {
  readonly name?: string;
  readonly jwt?: AuthJwt;
  readonly apiKey?: AuthApiKey;
  readonly defaultAction?: AuthAction;
  readonly rules?: readonly AuthRule[];
  readonly cors?: Cors;
}

export interface AuthJwt {
  readonly providers?: readonly string[];
  readonly optional?: boolean;
}

export interface AuthApiKey {
  readonly keySet: string;
  readonly optional?: boolean;
  readonly forwardClientIdHeader?: string;
  readonly sanitize?: boolean;
}

export interface AuthRule {
  readonly name?: string;
  readonly action?: AuthAction;
  readonly clientCidrs?: readonly string[];
  readonly methods?: readonly string[];
  readonly jwtProvider?: string;
  readonly jwtScopes?: readonly string[];
  readonly jwtClaims?: readonly ClaimRequirement[];
  readonly apiKey?: boolean;
  readonly apiKeyScopes?: readonly string[];
  readonly apiKeyClients?: readonly string[];
  readonly plans?: readonly string[];
}

export interface ClaimRequirement {
  readonly name: string;
  readonly values?: readonly string[];
}

export interface Cors {
  readonly allowOrigins?: readonly string[];
  readonly allowMethods?: readonly string[];
  readonly allowHeaders?: readonly string[];
  readonly exposeHeaders?: readonly string[];
  readonly maxAgeSeconds?: number;
  readonly allowCredentials?: boolean;
}

// ---- Edge rate limits and response cache (issue 7); see config.proto `RateLimitRule` ----

export type RateLimitUnit =
  | 'RATE_LIMIT_UNIT_UNSPECIFIED'
  | 'PER_SECOND'
  | 'PER_MINUTE'
  | 'PER_HOUR'
  | 'PER_DAY'
  | 'PER_MONTH';
export type RateLimitSource =
  | 'RATE_LIMIT_SOURCE_UNSPECIFIED'
  | 'SOURCE_HEADER'
  | 'SOURCE_CLIENT_IP'
  | 'SOURCE_CLIENT_ID'
  | 'SOURCE_JWT_CLAIM'
  | 'SOURCE_PLAN';
export type RateLimitMatch =
  | 'RATE_LIMIT_MATCH_UNSPECIFIED'
  | 'EQUALS'
  | 'MATCHES_REGEX'
  | 'DISTINCT'
  | 'IN_CIDR';
export type RateLimitFailMode = 'RATE_LIMIT_FAIL_MODE_UNSPECIFIED' | 'FAIL_OPEN' | 'FAIL_CLOSED';

export interface RateLimitRule {
  readonly name?: string;
  readonly selectors?: readonly RateLimitSelector[];
  readonly requests: number;
  readonly unit: RateLimitUnit;
  readonly burst?: number;
  readonly plan?: string;
  readonly global?: boolean;
}

export interface RateLimitSelector {
  readonly source: RateLimitSource;
  readonly name?: string;
  readonly match?: RateLimitMatch;
  readonly value?: string;
  readonly invert?: boolean;
}

export interface RateLimitService {
  readonly redisUrl: string;
  readonly failMode?: RateLimitFailMode;
  readonly timeoutMs?: number;
}

export interface ResponseCachePolicy {
  readonly maxEntryBytes?: number;
}
