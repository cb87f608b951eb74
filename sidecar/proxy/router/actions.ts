/**
 * Route actions: weighted forwarding, RequestRedirect and direct responses (Gateway API v1).
 *
 * Forward: backendRefs split traffic by weight / sum(weights); weight defaults to 1 and 0 sends
 * nothing. Cumulative weights are precomputed over the positive-weight backends only, so a
 * weight-0 backend is never picked. With no backend of positive weight every request gets one
 * invalid backend ("no backend with weight > 0"), which the caller answers with 500.
 *
 * Redirect (HTTPRequestRedirectFilter): scheme, hostname, port and path default to the request's;
 * statusCode defaults to 302. Port when unset: the well-known port of a configured scheme
 * (http 80, https 443), otherwise the listener port the caller passes. The port is left out of
 * Location for http:80 and https:443. The query string is kept.
 *
 * Fault injection and request mirrors (Envoy's fault filter and request_mirror_policies; Gateway
 * API RequestMirror) are route policies compiled here too: percents in [0, 100], absent meaning
 * 100 (proto3 cannot tell an explicit 0 from absent on the wire, so the translator never sends 0);
 * an abort status in [200, 599]; a mirror names a cluster.
 *
 * Retry policy (GEP-1731 plus Envoy's retry policy): proto3 zero values mean "unset" and take the
 * defaults in `RETRY_DEFAULTS`; backoffMaxMs unset is 10 × backoffBaseMs (Envoy), so 250 ms by
 * default; retryMethods unset are the idempotent methods of RFC 9110 §9.2.2. Statuses must lie in
 * [400, 599] (GEP-1731's HTTPRouteRetryStatusCode), methods must be tokens, the per-try timeout may
 * not exceed the request timeout, and the body buffer is bounded (`MAX_BUFFERED_BODY_BYTES`).
 * gRPC statuses to retry on (`retryOnGrpcStatus`) must be codes in [0, 16].
 */
import type {
  DirectResponseAction,
  FaultInjection,
  RedirectAction as RedirectConfig,
  RequestMirror,
  RetryPolicy,
  RouteAction as RouteActionConfig,
} from '../config/types.ts';
import { type ConfigLocation, invalid } from './config-error.ts';
import { compileHeaderModifier } from './headers.ts';
import { TOKEN } from './match.ts';
import {
  applyPathModifier,
  type CompiledPathModifier,
  compileHostname,
  compilePathModifier,
} from './rewrite.ts';
import type {
  CompiledFault,
  CompiledMirror,
  CompiledRetryPolicy,
  RouteAction,
  RouteRequest,
  WeightedBackend,
} from './types.ts';

export const NO_WEIGHTED_BACKEND = 'no backend with weight > 0';
export const DEFAULT_CONTENT_TYPE = 'text/plain; charset=utf-8';
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
const WELL_KNOWN_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };

/** A forward action: `pickBackend` is a binary search over cumulative weights. */
class WeightedForward {
  readonly kind = 'forward';
  readonly #backends: readonly WeightedBackend[];
  readonly #cumulative: readonly number[];
  readonly #total: number;

  constructor(backends: readonly WeightedBackend[], weights: readonly number[]) {
    const cumulative: number[] = [];
    let total = 0;
    for (const w of weights) {
      total += w;
      cumulative.push(total);
    }
    this.#backends = backends;
    this.#cumulative = cumulative;
    this.#total = total;
  }

  /** `random` in [0, 1); values outside are clamped. */
  pickBackend(random: number): WeightedBackend {
    const cumulative = this.#cumulative;
    const target = random * this.#total;
    let lo = 0;
    let hi = cumulative.length - 1;
    // First index whose cumulative weight exceeds target; the last one catches rounding and random >= 1.
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return this.#backends[lo]!;
  }
}

/**
 * Compiles `route.clusters` at `field` (`route`).
 * @throws RouteConfigError for a weight that is not an integer in [0, 2^32), or a cluster with no
 *   name and no invalidReason; plus header modifier errors.
 */
export function compileForward(cfg: RouteActionConfig, where: ConfigLocation, field: string): RouteAction {
  const backends: WeightedBackend[] = [];
  const weights: number[] = [];
  (cfg.clusters ?? []).forEach((c, i) => {
    const at = `${field}.clusters[${i}]`;
    const weight = c.weight ?? 1;
    if (!Number.isInteger(weight) || weight < 0 || weight > 0xffffffff) {
      invalid(where, `${at}.weight`, `weight must be an integer in [0, 4294967295], got ${String(weight)}`);
    }
    const invalidReason = c.invalidReason || undefined;
    if (!c.name && invalidReason === undefined) invalid(where, `${at}.name`, 'cluster name is required');
    const backend: WeightedBackend = Object.freeze({
      cluster: c.name ?? '',
      invalidReason,
      requestHeaderModifier: compileHeaderModifier(
        c.requestHeaderModifier,
        where,
        `${at}.requestHeaderModifier`,
      ),
      responseHeaderModifier: compileHeaderModifier(
        c.responseHeaderModifier,
        where,
        `${at}.responseHeaderModifier`,
      ),
    });
    if (weight > 0) {
      backends.push(backend);
      weights.push(weight);
    }
  });
  if (backends.length === 0) {
    const none: WeightedBackend = Object.freeze({
      cluster: '',
      invalidReason: NO_WEIGHTED_BACKEND,
      requestHeaderModifier: undefined,
      responseHeaderModifier: undefined,
    });
    return new WeightedForward([none], [1]);
  }
  return new WeightedForward(backends, weights);
}

/** A compiled RequestRedirect for one match (the matched prefix is fixed per candidate). */
class Redirect {
  readonly kind = 'redirect';
  readonly #status: number;
  readonly #scheme: string | undefined;
  readonly #hostname: string | undefined;
  readonly #port: number | undefined;
  readonly #path: CompiledPathModifier | undefined;
  readonly #matchedPrefix: string;

  constructor(spec: CompiledRedirect, matchedPrefix: string) {
    this.#status = spec.status;
    this.#scheme = spec.scheme;
    this.#hostname = spec.hostname;
    this.#port = spec.port;
    this.#path = spec.path;
    this.#matchedPrefix = matchedPrefix;
  }

  /**
   * `scheme` is the request's scheme and `port` the listener port the client addressed
   * (`undefined` when unknown: then no port is written unless one is configured).
   */
  redirect(
    req: RouteRequest,
    scheme: string,
    port: number | undefined,
  ): { status: number; location: string } {
    const outScheme = this.#scheme ?? scheme;
    let outPort = this.#port;
    if (outPort === undefined) {
      outPort = this.#scheme === undefined ? port : (WELL_KNOWN_PORTS[this.#scheme] ?? port);
    }
    const host = this.#hostname ?? req.host;
    const path =
      this.#path === undefined ? req.path : applyPathModifier(this.#path, req.path, this.#matchedPrefix);
    const defaultPort = WELL_KNOWN_PORTS[outScheme];
    const portPart = outPort === undefined || outPort === defaultPort ? '' : `:${outPort}`;
    const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
    const query = req.query.length > 0 ? `?${req.query}` : '';
    return { status: this.#status, location: `${outScheme}://${hostPart}${portPart}${path}${query}` };
  }
}

/** A RequestRedirect validated once per route; `bind` makes the per-match action. */
export interface CompiledRedirect {
  readonly status: number;
  readonly scheme: string | undefined;
  readonly hostname: string | undefined;
  readonly port: number | undefined;
  readonly path: CompiledPathModifier | undefined;
}

/**
 * Compiles a RequestRedirect at `field` (`redirect`).
 * @throws RouteConfigError for a scheme other than http/https, a bad host name, a port outside
 *   1–65535, a status code other than 301/302/303/307/308, or a bad path modifier.
 */
export function compileRedirect(cfg: RedirectConfig, where: ConfigLocation, field: string): CompiledRedirect {
  const scheme = cfg.scheme || undefined;
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') {
    invalid(where, `${field}.scheme`, `scheme must be "http" or "https", got "${scheme}"`);
  }
  const port = cfg.port || undefined;
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
    invalid(where, `${field}.port`, `port must be an integer in [1, 65535], got ${String(port)}`);
  }
  const status = cfg.statusCode || 302;
  if (!REDIRECT_STATUSES.has(status)) {
    invalid(
      where,
      `${field}.statusCode`,
      `status code must be one of 301, 302, 303, 307, 308, got ${status}`,
    );
  }
  return {
    status,
    scheme,
    port,
    hostname: cfg.hostname ? compileHostname(cfg.hostname, where, `${field}.hostname`) : undefined,
    path: cfg.path === undefined ? undefined : compilePathModifier(cfg.path, where, `${field}.path`),
  };
}

/** The redirect action for one match; `matchedPrefix` is its normalised PathPrefix (or `''`). */
export function bindRedirect(spec: CompiledRedirect, matchedPrefix: string): RouteAction {
  return new Redirect(spec, matchedPrefix);
}

/**
 * Compiles a direct response at `field` (`directResponse`).
 * @throws RouteConfigError for a status outside 200–599 or a content type with control characters.
 */
export function compileDirect(cfg: DirectResponseAction, where: ConfigLocation, field: string): RouteAction {
  const status = cfg.status;
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    invalid(where, `${field}.status`, `status must be an integer in [200, 599], got ${String(status)}`);
  }
  const contentType = cfg.contentType || DEFAULT_CONTENT_TYPE;
  if (!/^[\t\x20-\x7e]*$/.test(contentType)) {
    invalid(where, `${field}.contentType`, 'content type must be visible ASCII');
  }
  return Object.freeze({ kind: 'direct', status, body: cfg.body ?? '', contentType });
}

/** `percent` (absent: 100) checked to lie in [0, 100]. */
function percentOf(value: number | undefined, where: ConfigLocation, field: string): number {
  const percent = value ?? 100;
  if (typeof percent !== 'number' || !(percent >= 0 && percent <= 100)) {
    invalid(where, field, `must be a number in [0, 100], got ${String(value)}`);
  }
  return percent;
}

/**
 * Compiles a route's fault injection at `field` (`fault`); `undefined` when it injects nothing
 * (no delay and no abort).
 * @throws RouteConfigError for a delay that is not a non-negative integer, a percent outside
 *   [0, 100], or an abort status outside 200–599.
 */
export function compileFault(
  cfg: FaultInjection | undefined,
  where: ConfigLocation,
  field: string,
): CompiledFault | undefined {
  if (cfg === undefined) return undefined;
  const delayMs = cfg.delayMs ?? 0;
  if (!Number.isInteger(delayMs) || delayMs < 0) {
    invalid(where, `${field}.delayMs`, `must be a non-negative integer, got ${String(cfg.delayMs)}`);
  }
  const abortStatus = cfg.abortStatus ?? 0;
  if (abortStatus !== 0 && (!Number.isInteger(abortStatus) || abortStatus < 200 || abortStatus > 599)) {
    invalid(where, `${field}.abortStatus`, `must be an integer in [200, 599], got ${String(abortStatus)}`);
  }
  const delayPercent = percentOf(cfg.delayPercent, where, `${field}.delayPercent`);
  const abortPercent = percentOf(cfg.abortPercent, where, `${field}.abortPercent`);
  if (delayMs === 0 && abortStatus === 0) return undefined;
  return Object.freeze({ delayMs, delayPercent, abortStatus, abortPercent });
}

const NO_MIRRORS: readonly CompiledMirror[] = Object.freeze([]);

/**
 * Compiles a route's request mirrors at `field` (`mirrors`).
 * @throws RouteConfigError for a mirror without a cluster name or a percent outside [0, 100].
 */
export function compileMirrors(
  cfg: readonly RequestMirror[] | undefined,
  where: ConfigLocation,
  field: string,
): readonly CompiledMirror[] {
  if (cfg === undefined || cfg.length === 0) return NO_MIRRORS;
  return Object.freeze(
    cfg.map((m, i) => {
      if (typeof m.cluster !== 'string' || m.cluster.length === 0) {
        invalid(where, `${field}[${i}].cluster`, 'cluster name is required');
      }
      return Object.freeze({
        cluster: m.cluster,
        percent: percentOf(m.percent, where, `${field}[${i}].percent`),
      });
    }),
  );
}

/** Defaults of `RetryPolicy` fields left unset (0 / empty). */
export const RETRY_DEFAULTS = Object.freeze({
  backoffBaseMs: 25,
  /** Times backoffBaseMs when backoffMaxMs is unset (Envoy's default cap). */
  backoffMaxFactor: 10,
  maxBufferedBodyBytes: 65_536,
  /** The idempotent methods (RFC 9110 §9.2.2). */
  retryMethods: Object.freeze(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']),
});

/** Largest request body a route may buffer for replay (bytes): memory per in-flight request. */
export const MAX_BUFFERED_BODY_BYTES = 64 * 1024 * 1024;

function nonNegativeInt(value: number | undefined, where: ConfigLocation, field: string): number {
  const v = value ?? 0;
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) {
    invalid(where, field, `must be a non-negative integer, got ${String(value)}`);
  }
  return v;
}

/**
 * Compiles a route's retry policy at `field` (`retry`) with its defaults applied; `requestMs` is
 * the route's compiled request timeout (0: none).
 * @throws RouteConfigError for a count, timeout or size that is not a non-negative integer, a status
 *   outside [400, 599], a gRPC status outside [0, 16], a method that is not a token, backoffMaxMs
 *   below backoffBaseMs, a per-try timeout above the request timeout, or a body buffer above
 *   `MAX_BUFFERED_BODY_BYTES`.
 */
export function compileRetryPolicy(
  cfg: RetryPolicy | undefined,
  requestMs: number,
  where: ConfigLocation,
  field: string,
): CompiledRetryPolicy | undefined {
  if (cfg === undefined) return undefined;
  const numRetries = nonNegativeInt(cfg.numRetries, where, `${field}.numRetries`);
  const statuses = new Set<number>();
  (cfg.retryOnStatus ?? []).forEach((status, i) => {
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      invalid(
        where,
        `${field}.retryOnStatus[${i}]`,
        `must be an integer in [400, 599], got ${String(status)}`,
      );
    }
    statuses.add(status);
  });
  const grpcStatuses = new Set<number>();
  (cfg.retryOnGrpcStatus ?? []).forEach((code, i) => {
    if (!Number.isInteger(code) || code < 0 || code > 16) {
      invalid(
        where,
        `${field}.retryOnGrpcStatus[${i}]`,
        `must be a gRPC status code, an integer in [0, 16], got ${String(code)}`,
      );
    }
    grpcStatuses.add(code);
  });
  const perTryTimeoutMs = nonNegativeInt(cfg.perTryTimeoutMs, where, `${field}.perTryTimeoutMs`);
  if (requestMs > 0 && perTryTimeoutMs > requestMs) {
    invalid(
      where,
      `${field}.perTryTimeoutMs`,
      `${perTryTimeoutMs} must not exceed timeouts.requestMs ${requestMs}`,
    );
  }
  const backoffBaseMs =
    nonNegativeInt(cfg.backoffBaseMs, where, `${field}.backoffBaseMs`) || RETRY_DEFAULTS.backoffBaseMs;
  const backoffMaxMs =
    nonNegativeInt(cfg.backoffMaxMs, where, `${field}.backoffMaxMs`) ||
    backoffBaseMs * RETRY_DEFAULTS.backoffMaxFactor;
  if (backoffMaxMs < backoffBaseMs) {
    invalid(
      where,
      `${field}.backoffMaxMs`,
      `${backoffMaxMs} must not be below backoffBaseMs ${backoffBaseMs}`,
    );
  }
  const methods = cfg.retryMethods !== undefined && cfg.retryMethods.length > 0 ? cfg.retryMethods : null;
  (methods ?? []).forEach((method, i) => {
    if (typeof method !== 'string' || !TOKEN.test(method)) {
      invalid(where, `${field}.retryMethods[${i}]`, `"${String(method)}" is not a valid method`);
    }
  });
  const maxBufferedBodyBytes =
    nonNegativeInt(cfg.maxBufferedBodyBytes, where, `${field}.maxBufferedBodyBytes`) ||
    RETRY_DEFAULTS.maxBufferedBodyBytes;
  if (maxBufferedBodyBytes > MAX_BUFFERED_BODY_BYTES) {
    invalid(
      where,
      `${field}.maxBufferedBodyBytes`,
      `${maxBufferedBodyBytes} exceeds the limit of ${MAX_BUFFERED_BODY_BYTES} bytes`,
    );
  }
  return Object.freeze({
    numRetries,
    retryOnStatus: statuses,
    retryOnConnectFailure: cfg.retryOnConnectFailure === true,
    retryOnReset: cfg.retryOnReset === true,
    perTryTimeoutMs,
    backoffBaseMs,
    backoffMaxMs,
    retryMethods: new Set(methods ?? RETRY_DEFAULTS.retryMethods),
    maxBufferedBodyBytes,
    retryOnGrpcStatus: grpcStatuses,
  });
}
