/**
 * The upstream side's contract: clusters of endpoints, each endpoint one undici `Pool`
 * (keep-alive, HTTP/1.1), chosen by the cluster's load balancer.
 */
import type { buildConnector, Dispatcher } from 'undici';
import type { ErrorKind } from '../errors.ts';

/**
 * An endpoint's connection pool: an undici `Pool` (HTTP/1.1) or an `H2Pool` (HTTP/2, h2-pool.ts),
 * both behind undici's dispatcher contract.
 */
export interface EndpointPool {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  close(): Promise<void>;
  readonly closed: boolean;
  readonly destroyed: boolean;
}

/** One upstream host:port with its connection pool. `activeRequests` drives LEAST_REQUEST. */
export interface UpstreamEndpoint {
  /** `address:port` (IPv6 in brackets), e.g. `127.0.0.1:8080`, `[::1]:8080`. */
  readonly key: string;
  /** Origin for undici, e.g. `http://127.0.0.1:8080` (`https://…` over mTLS). */
  readonly origin: string;
  readonly pool: EndpointPool;
  /** The endpoint speaks HTTP/2 (cluster `protocol: HTTP2`); absent/false: HTTP/1.1. */
  readonly http2?: boolean;
  /** The mTLS connector for extra connections to this endpoint (undefined: plain text). */
  readonly connector?: buildConnector.connector | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly weight: number;
  /** In-flight requests on this endpoint; the forwarder increments and decrements it. */
  activeRequests: number;
}

/** What a load balancer may look at besides the endpoints. */
export interface PickContext {
  /** Value of the cluster's hash header, for CONSISTENT_HASH. */
  readonly hashKey: string | undefined;
  /** In [0, 1); the caller's random source, injectable for tests. */
  readonly random: () => number;
}

/** What one attempt on an endpoint came to, for outlier detection, breakers and budgets. */
export type AttemptOutcome =
  | { readonly kind: 'response'; readonly status: number }
  | { readonly kind: 'error'; readonly error: ErrorKind };

/** Why `pick` found no endpoint: none healthy, or every healthy one behind an open breaker. */
export type PickFailure = 'NO_HEALTHY_UPSTREAM' | 'CIRCUIT_OPEN';

/** Why `admitRetry` said no: the cluster's `maxRetries` (503-style overflow) or its retry budget. */
export type RetryDenial = 'OVERFLOW' | 'BUDGET_EXHAUSTED';

export interface UpstreamCluster {
  readonly name: string;
  /**
   * A healthy endpoint for a new attempt (skipping ejected and health-check-failing endpoints, unless
   * the panic threshold says to use all, then endpoints whose error-rate breaker is open), or
   * `undefined` when there is none — `lastPickFailure` then says which error to answer with.
   * `exclude`: an endpoint to avoid if another is available (a retry prefers a different host).
   */
  pick(ctx: PickContext, exclude?: UpstreamEndpoint): UpstreamEndpoint | undefined;
  /**
   * Set by a `pick` that returned `undefined`, read right after it: `NO_HEALTHY_UPSTREAM` (503) or
   * `CIRCUIT_OPEN` (503; every healthy endpoint's breaker is open). Absent means NO_HEALTHY_UPSTREAM.
   */
  readonly lastPickFailure?: PickFailure | undefined;
  /** Set by an `admitRetry` that returned false, read right after it. Absent means OVERFLOW. */
  readonly lastRetryDenial?: RetryDenial | undefined;
  /** The cluster's hash header name (lower-case) for CONSISTENT_HASH, else undefined. */
  readonly hashHeader: string | undefined;
  /**
   * Admits a new downstream request (circuit breakers: active and pending request limits).
   * Returns 'OVERFLOW' when over a limit (answer 503 OVERFLOW at once); otherwise the caller
   * must call `releaseRequest()` exactly once when the request ends. Counts toward the retry budget.
   */
  admitRequest(): 'OVERFLOW' | undefined;
  releaseRequest(): void;
  /**
   * Admits one retry (max active retries and the retry budget); false → do not retry (counted as
   * `weft_retries_total{reason="budget_exhausted"|"overflow"}`). When true, call `releaseRetry()`
   * once the retry attempt ends.
   */
  admitRetry(): boolean;
  releaseRetry(): void;
  /** Records an attempt's outcome on `endpoint` (outlier detection, error-rate breaker). */
  record(endpoint: UpstreamEndpoint, outcome: AttemptOutcome): void;
}
