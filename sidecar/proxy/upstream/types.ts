/**
 * The upstream side's contract: clusters of endpoints, each endpoint one undici `Pool`
 * (keep-alive, HTTP/1.1), chosen by the cluster's load balancer.
 */
import type { buildConnector, Pool } from 'undici';

/** One upstream host:port with its connection pool. `activeRequests` drives LEAST_REQUEST. */
export interface UpstreamEndpoint {
  /** `address:port` (IPv6 in brackets), e.g. `127.0.0.1:8080`, `[::1]:8080`. */
  readonly key: string;
  /** Origin for undici, e.g. `http://127.0.0.1:8080` (`https://…` over mTLS). */
  readonly origin: string;
  readonly pool: Pool;
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

export interface UpstreamCluster {
  readonly name: string;
  /** A healthy endpoint for a new request, or `undefined` when there is none (503 NO_HEALTHY_UPSTREAM). */
  pick(ctx: PickContext): UpstreamEndpoint | undefined;
  /** The cluster's hash header name (lower-case) for CONSISTENT_HASH, else undefined. */
  readonly hashHeader: string | undefined;
}
