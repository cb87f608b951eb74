/**
 * Connection pools: one undici `Pool` per upstream endpoint, configured from the cluster's
 * `connectionPool` settings. HTTP/1.1 keep-alive, no pipelining. An mTLS endpoint's pool has the
 * origin `https://address:port` and the connector of upstream/tls.ts (undici's own TLS is not used).
 *
 * Invariants: idle connections are dropped before the upstream would drop them (idle timeout below
 * Node's 5 s server default, and undici honours a shorter `Keep-Alive: timeout` minus
 * `KEEP_ALIVE_TIMEOUT_THRESHOLD_MS`); undici's own header/body timeouts are off because the forwarder
 * enforces route timeouts. proto3 zero values mean "unset" and take the defaults below.
 */
import { type buildConnector, Pool } from 'undici';
import type { ConnectionPool, Endpoint } from '../config/types.ts';
import { checkPort, endpointOrigin, normalizeAddress } from './address.ts';
import { H2Pool } from './h2-pool.ts';
import type { EndpointPool } from './types.ts';

export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
export const DEFAULT_IDLE_TIMEOUT_MS = 4000;
/**
 * Subtracted from an upstream's `Keep-Alive: timeout=N` hint. Below 1 s so that a 1 s hint (node:http with
 * `keepAliveTimeout = 1000`) still allows reuse: 1000 - 1000 = 0 made undici close every connection after
 * one request. undici's keep-alive timer is a native (precise) timer, so 500 ms covers transport latency.
 */
export const KEEP_ALIVE_TIMEOUT_THRESHOLD_MS = 500;
/** Longest timer Node can arm (2^31 - 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;

/** The undici options every endpoint pool of a cluster shares. */
export type EndpointPoolOptions = Pool.Options & {
  readonly connections: number | null;
  readonly connectTimeout: number;
  readonly keepAliveTimeout: number;
  readonly keepAliveMaxTimeout: number;
  readonly keepAliveTimeoutThreshold: number;
  readonly pipelining: 1;
  readonly headersTimeout: 0;
  readonly bodyTimeout: 0;
};

function nonNegativeInteger(pool: ConnectionPool, field: keyof ConnectionPool, max: number): number {
  const value = pool[field] ?? 0;
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new Error(`connectionPool.${field} must be an integer in 0-${max}, got ${String(value)}`);
  }
  return value;
}

/**
 * undici options for `connectionPool` (all fields optional, 0 = unset):
 * `connections` ← maxConnectionsPerEndpoint (unset → `null`, unlimited), `connectTimeout` ← connectTimeoutMs
 * (default 5000), `keepAliveTimeout` and `keepAliveMaxTimeout` ← idleTimeoutMs (default 4000),
 * `maxRequestsPerClient` ← maxRequestsPerConnection (only when set). Throws an `Error` naming the field
 * for a negative, fractional or out-of-range value.
 */
export function poolOptions(connectionPool: ConnectionPool | undefined): EndpointPoolOptions {
  const cp = connectionPool ?? {};
  const connections = nonNegativeInteger(cp, 'maxConnectionsPerEndpoint', 0xffff_ffff);
  const connectTimeout =
    nonNegativeInteger(cp, 'connectTimeoutMs', MAX_TIMER_MS) || DEFAULT_CONNECT_TIMEOUT_MS;
  const idle = nonNegativeInteger(cp, 'idleTimeoutMs', MAX_TIMER_MS) || DEFAULT_IDLE_TIMEOUT_MS;
  const maxRequests = nonNegativeInteger(cp, 'maxRequestsPerConnection', 0xffff_ffff);
  const options: EndpointPoolOptions = {
    connections: connections === 0 ? null : connections,
    connectTimeout,
    keepAliveTimeout: idle,
    keepAliveMaxTimeout: idle,
    keepAliveTimeoutThreshold: KEEP_ALIVE_TIMEOUT_THRESHOLD_MS,
    pipelining: 1,
    headersTimeout: 0,
    bodyTimeout: 0,
  };
  return maxRequests === 0 ? options : { ...options, maxRequestsPerClient: maxRequests };
}

/**
 * The `connections` of an endpoint pool: `maxConnectionsPerEndpoint` (null: unlimited) further capped by
 * the endpoint's share of the cluster's `circuitBreakers.maxConnections` (`connectionShare`, ≥ 1).
 * `Infinity` stands for unlimited.
 */
export function connectionLimit(
  options: EndpointPoolOptions,
  connectionShare = Number.POSITIVE_INFINITY,
): number {
  return Math.min(options.connections ?? Number.POSITIVE_INFINITY, connectionShare);
}

/**
 * A new pool for one endpoint of `cluster`: an undici `Pool` (HTTP/1.1), or for `http2` an `H2Pool`
 * (h2c, or h2 over `connector`; its sessions are the pool's connections, `maxConnectionsPerEndpoint`
 * and the connection share bound them; `idleTimeoutMs` and `connectTimeoutMs` apply alike). As an undici `Pool`: origin `http://address:port` (`http://[::1]:port`
 * for IPv6), or `https://…` with `connector` (an mTLS connector from upstream/tls.ts) as its `connect`.
 * `connectionShare` caps the pool's connections (the endpoint's share of the cluster's
 * `circuitBreakers.maxConnections`; see `connectionLimit`). Opens no connection until the first
 * request. Throws an `Error` naming the cluster and endpoint for a bad address, port or connection
 * pool setting.
 */
export function createEndpointPool(
  endpoint: Pick<Endpoint, 'address' | 'port'>,
  cluster: { readonly name: string; readonly connectionPool?: ConnectionPool | undefined },
  connector?: buildConnector.connector,
  connectionShare?: number,
): Pool;
export function createEndpointPool(
  endpoint: Pick<Endpoint, 'address' | 'port'>,
  cluster: { readonly name: string; readonly connectionPool?: ConnectionPool | undefined },
  connector: buildConnector.connector | undefined,
  connectionShare: number | undefined,
  http2: boolean,
): EndpointPool;
export function createEndpointPool(
  endpoint: Pick<Endpoint, 'address' | 'port'>,
  cluster: { readonly name: string; readonly connectionPool?: ConnectionPool | undefined },
  connector?: buildConnector.connector,
  connectionShare?: number,
  http2 = false,
): EndpointPool {
  try {
    const address = normalizeAddress(endpoint.address);
    checkPort(endpoint.port);
    const base = poolOptions(cluster.connectionPool);
    const limit = connectionLimit(base, connectionShare);
    if (http2) {
      return new H2Pool({
        origin: endpointOrigin(address, endpoint.port, connector === undefined ? 'http' : 'https'),
        connector,
        connectTimeoutMs: base.connectTimeout,
        idleTimeoutMs: base.keepAliveTimeout,
        maxSessions: limit,
      });
    }
    const options = { ...base, connections: Number.isFinite(limit) ? limit : null };
    if (connector === undefined) return new Pool(endpointOrigin(address, endpoint.port), options);
    return new Pool(endpointOrigin(address, endpoint.port, 'https'), { ...options, connect: connector });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(
      `cluster ${cluster.name}: endpoint ${String(endpoint.address)}:${String(endpoint.port)}: ${message}`,
      { cause: err },
    );
  }
}
