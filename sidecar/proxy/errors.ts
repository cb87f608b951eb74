/**
 * The closed set of errors the proxy can answer with locally, in the style of Envoy's response
 * flags and fastify's error catalogue. One kind drives everything a failure shows: the HTTP status
 * of the local reply, the `x-weft-error` response header, the `response_flags` metric label and the
 * access log's `flags` field, and a stable `WEFT_ERR_*` code.
 *
 * Statuses follow RFC 9110 §15 (502 bad gateway for an invalid upstream response or reset,
 * 503 when no upstream could be reached, 504 when the upstream did not answer in time).
 * One kind's status is only a default: `FAULT_INJECTED` (a route's fault injection aborted the
 * request, Envoy's `FI` flag) answers with the status the route configures (`fault.abortStatus`).
 */

export const ERROR_CATALOGUE = {
  NO_ROUTE: { status: 404, message: 'no route matched the request' },
  INVALID_BACKEND: { status: 500, message: 'the route sends this share of traffic to an invalid backend' },
  CLUSTER_NOT_FOUND: { status: 503, message: 'the route names a cluster the proxy does not know' },
  NO_HEALTHY_UPSTREAM: { status: 503, message: 'the cluster has no healthy endpoint' },
  UPSTREAM_CONNECT_FAILURE: { status: 503, message: 'could not connect to the upstream' },
  UPSTREAM_RESET: { status: 502, message: 'the upstream reset the connection before a full response' },
  UPSTREAM_PROTOCOL_ERROR: { status: 502, message: 'the upstream sent an invalid HTTP response' },
  UPSTREAM_TIMEOUT: {
    status: 504,
    message: 'the upstream did not answer within the backend request timeout',
  },
  REQUEST_TIMEOUT: { status: 504, message: 'the request did not complete within the route request timeout' },
  OVERFLOW: { status: 503, message: 'the cluster is at its connection or request limit' },
  OVERLOADED: { status: 503, message: 'the proxy is overloaded and shed the request (overload manager)' },
  CIRCUIT_OPEN: { status: 503, message: 'the circuit breaker for the upstream is open' },
  FAULT_INJECTED: { status: 503, message: 'the route aborted the request (fault injection)' },
  RBAC_DENIED: { status: 403, message: 'denied by authorization policy' },
  RATE_LIMITED: { status: 429, message: 'rate limit exceeded' },
  RATE_LIMIT_UNAVAILABLE: {
    status: 503,
    message: 'the rate limit store is unreachable and the limit fails closed',
  },
  REQUEST_BODY_TOO_LARGE: { status: 413, message: 'request content too large for this route' },
  UNAUTHENTICATED: { status: 401, message: 'authentication required' },
  BAD_REQUEST: { status: 400, message: 'malformed request' },
  URI_TOO_LONG: { status: 414, message: 'the request target is too long' },
  REQUEST_HEADERS_TOO_LARGE: { status: 431, message: 'request header fields too large' },
  DOWNSTREAM_HEADERS_TIMEOUT: { status: 408, message: 'the request headers did not arrive in time' },
  DOWNSTREAM_REQUEST_TIMEOUT: {
    status: 408,
    message: 'the whole request did not arrive within the listener request timeout',
  },
  STREAM_IDLE_TIMEOUT: {
    status: 408,
    message: 'no bytes moved in either direction within the listener stream idle timeout',
  },
  DOWNSTREAM_DISCONNECT: { status: 499, message: 'the downstream closed the connection before the response' },
} as const satisfies Record<string, { readonly status: number; readonly message: string }>;

/** One member of the closed error set, e.g. `'UPSTREAM_CONNECT_FAILURE'`. */
export type ErrorKind = keyof typeof ERROR_CATALOGUE;

/** Stable error code for docs and logs: `WEFT_ERR_<KIND>`. */
export function errorCode(kind: ErrorKind): `WEFT_ERR_${ErrorKind}` {
  return `WEFT_ERR_${kind}`;
}

/** HTTP status for a kind (RFC 9110 §15). */
export function errorStatus(kind: ErrorKind): number {
  return ERROR_CATALOGUE[kind].status;
}

/** An error carrying a kind, thrown inside the proxy and turned into a local reply at the edge. */
export class ProxyError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, detail?: string, options?: ErrorOptions) {
    super(detail ? `${ERROR_CATALOGUE[kind].message}: ${detail}` : ERROR_CATALOGUE[kind].message, options);
    this.name = 'ProxyError';
    this.kind = kind;
  }
}
