/**
 * The router's contract with the rest of the proxy core.
 *
 * A `RouteTable` is compiled once per RouteConfiguration (see `compile.ts`) and never mutated;
 * a new config version compiles a new table and the listener swaps the reference atomically.
 * Matching follows Gateway API v1 HTTPRoute: host, then path / headers / query / method with the
 * spec's precedence. `undefined` from `match` means no route: the caller answers 404 NO_ROUTE.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { RouteTimeouts } from '../config/types.ts';

/** What the router looks at. All fields are as received except where noted. */
export interface RouteRequest {
  /** Host without port, lower-cased (from the absolute-form URI or the Host header). */
  readonly host: string;
  /** Path as received, without the query string, e.g. `/api/v1/items`. */
  readonly path: string;
  /** Raw query string without the leading `?` (may be empty). Forwarded byte for byte. */
  readonly query: string;
  /** Request method, upper-case as received (methods are case-sensitive, RFC 9110 §9.1). */
  readonly method: string;
  /** Request headers as Node parses them (lower-case names). */
  readonly headers: IncomingHttpHeaders;
}

/** Mutable outgoing header map, lower-case names; arrays keep repeated fields in order. */
export type HeaderMap = Record<string, string | string[]>;

/** A compiled Gateway API HTTPHeaderFilter. `apply` edits the map in place. */
export interface CompiledHeaderModifier {
  apply(headers: HeaderMap): void;
}

/** Where a request goes after a match. */
export type RouteAction =
  | {
      readonly kind: 'forward';
      /** Picks a backend by weight; `random` is in [0, 1). Never returns a weight-0 backend. */
      pickBackend(random: number): WeightedBackend;
    }
  | {
      readonly kind: 'redirect';
      /** Status (301/302/303/307/308) and the absolute Location for this request. */
      redirect(
        req: RouteRequest,
        scheme: string,
        port: number | undefined,
      ): { status: number; location: string };
    }
  | { readonly kind: 'direct'; readonly status: number; readonly body: string; readonly contentType: string };

export interface WeightedBackend {
  /** Cluster name; look it up in the cluster manager. */
  readonly cluster: string;
  /** Set for an unresolved backendRef: answer 500 INVALID_BACKEND. */
  readonly invalidReason: string | undefined;
  readonly requestHeaderModifier: CompiledHeaderModifier | undefined;
  readonly responseHeaderModifier: CompiledHeaderModifier | undefined;
}

/** The result of `RouteTable.match`. */
export interface RouteMatchResult {
  readonly routeName: string;
  readonly virtualHost: string;
  readonly action: RouteAction;
  readonly requestHeaderModifier: CompiledHeaderModifier | undefined;
  readonly responseHeaderModifier: CompiledHeaderModifier | undefined;
  /**
   * Gateway API URLRewrite applied to this request: the new path (query untouched) and host,
   * or `undefined` when the route has no rewrite. REPLACE_PREFIX_MATCH uses the matched prefix.
   */
  rewrite(req: RouteRequest): { readonly path: string; readonly host: string | undefined } | undefined;
  readonly timeouts: Required<RouteTimeouts>;
  /** The route's retry policy (defaults applied), or `undefined` when it has none. */
  readonly retry: CompiledRetryPolicy | undefined;
  /** The route's fault injection, or `undefined` when it injects none. */
  readonly fault: CompiledFault | undefined;
  /** Gateway API RequestMirror targets; empty (a shared frozen array) when none. */
  readonly mirrors: readonly CompiledMirror[];
}

/**
 * Envoy-style fault injection for one route: delay `delayPercent` % of requests by `delayMs`,
 * then abort `abortPercent` % with `abortStatus`. A part with 0 ms / status 0 is off; percents
 * are in [0, 100] (an absent percent in the config means 100).
 */
export interface CompiledFault {
  readonly delayMs: number;
  readonly delayPercent: number;
  readonly abortStatus: number;
  readonly abortPercent: number;
}

/** One RequestMirror: a copy of `percent` % of requests (0..100) goes to `cluster`. */
export interface CompiledMirror {
  readonly cluster: string;
  readonly percent: number;
}

/**
 * A route's retry policy (GEP-1731, Envoy's retry policy) with its defaults applied. Attempts are
 * `1 + numRetries`; a status in `retryOnStatus`, a connect failure or reset when enabled, and a
 * per-try timeout are retriable; only methods in `retryMethods` are retried, and a request body
 * only when it was buffered within `maxBufferedBodyBytes`. A gRPC status in `retryOnGrpcStatus`
 * in a Trailers-Only response to a gRPC request is retriable too (retry.ts).
 */
export interface CompiledRetryPolicy {
  readonly numRetries: number;
  readonly retryOnStatus: ReadonlySet<number>;
  readonly retryOnConnectFailure: boolean;
  readonly retryOnReset: boolean;
  /** Per-attempt timeout (ms); 0: the route's `backendRequestMs`, if any. */
  readonly perTryTimeoutMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly retryMethods: ReadonlySet<string>;
  readonly maxBufferedBodyBytes: number;
  /**
   * gRPC statuses retried when a gRPC request's response is Trailers-Only (whatever the method:
   * `retryMethods` does not apply to them).
   */
  readonly retryOnGrpcStatus: ReadonlySet<number>;
}

export interface RouteTable {
  readonly name: string;
  match(req: RouteRequest): RouteMatchResult | undefined;
}
