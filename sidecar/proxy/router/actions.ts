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
 */
import type {
  DirectResponseAction,
  RedirectAction as RedirectConfig,
  RouteAction as RouteActionConfig,
} from '../config/types.ts';
import { type ConfigLocation, invalid } from './config-error.ts';
import { compileHeaderModifier } from './headers.ts';
import {
  applyPathModifier,
  type CompiledPathModifier,
  compileHostname,
  compilePathModifier,
} from './rewrite.ts';
import type { RouteAction, RouteRequest, WeightedBackend } from './types.ts';

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
