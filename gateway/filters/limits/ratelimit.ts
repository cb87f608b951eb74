/**
 * The edge rate limit filter (`weft.filters.http.ratelimit`): a GATEWAY listener's rules, then the
 * matched route's, each counted per bucket (limiters.ts), answered with the fields of
 * draft-ietf-httpapi-ratelimit-headers-06 (the last draft with separate fields; -07 and later merge
 * them into `RateLimit` / `RateLimit-Policy` structured fields):
 *
 * - every request a rule applied to gets `RateLimit-Limit` (requests per window), `RateLimit-Remaining`
 *   and `RateLimit-Reset` (delta-seconds until the window resets), plus `RateLimit-Policy:
 *   <limit>;w=<window seconds>`, for the most restrictive rule (least remaining);
 * - over a limit: 429 `RATE_LIMITED` (RFC 6585 §4) with `Retry-After` (RFC 9110 §10.2.3,
 *   delta-seconds, at least 1) until the limiting window resets, and the same fields;
 * - global store down: `FAIL_OPEN` lets the request pass on its other rules (result `failed_open`),
 *   `FAIL_CLOSED` answers 503 `RATE_LIMIT_UNAVAILABLE` with `Retry-After: 1` (result `failed_closed`).
 *
 * A rule applies when the client is on its `plan` (when set; the plan of `ctx.principal`, set by the
 * edge auth filters) and every selector matches. Selector values: a header (repeated fields joined
 * with `, `), the client address (`ctx.clientAddress`: X-Forwarded-For trusted for the listener's
 * `xffNumTrustedHops` only), the authenticated client id, a JWT claim, the plan. An absent value
 * matches nothing (an inverted selector then matches). The bucket is the rule's scope (its name, plus
 * the route for a route's rule; see `compileRateLimits`) plus the values of its DISTINCT selectors.
 *
 * Config errors (`EdgeConfigError`, naming the field) are raised when compiling, never per request.
 */
import { BlockList, isIP } from 'node:net';
import type {
  RateLimitRule,
  RateLimitSelector,
  RateLimitSource,
} from '../../../sidecar/proxy/config/types.ts';
import { CONTINUE, type FilterResult, type HttpFilter } from '../../../sidecar/proxy/filters/filter.ts';
import { addResponseTap, type RequestContext } from '../../../sidecar/proxy/http/context.ts';
import type { HeaderMap } from '../../../sidecar/proxy/router/types.ts';
import type { LimiterStore, RuleLimiter, StoreFailure, Verdict } from './limiters.ts';
import { UNIT_SECONDS } from './limiters.ts';
import type { EdgeRoutes } from './routes.ts';
import { publishRateLimit, type RateLimitResult } from './telemetry.ts';

export const RATE_LIMIT_FILTER_NAME = 'weft.filters.http.ratelimit';

/** A config value the edge compilers reject; `field` is relative to the listener or route. */
export class EdgeConfigError extends Error {
  readonly field: string;
  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'EdgeConfigError';
    this.field = field;
  }
}

interface CompiledSelector {
  readonly source: RateLimitSource;
  readonly name: string;
  readonly kind: 'EQUALS' | 'MATCHES_REGEX' | 'DISTINCT' | 'IN_CIDR';
  readonly value: string;
  readonly regex: RegExp | undefined;
  readonly cidr: BlockList | undefined;
  readonly invert: boolean;
}

/** One rule ready for requests. */
export interface CompiledRule {
  readonly name: string;
  readonly scope: string;
  readonly plan: string;
  readonly selectors: readonly CompiledSelector[];
  readonly limiter: RuleLimiter;
}

const SOURCES = new Set<RateLimitSource>([
  'SOURCE_HEADER',
  'SOURCE_CLIENT_IP',
  'SOURCE_CLIENT_ID',
  'SOURCE_JWT_CLAIM',
  'SOURCE_PLAN',
]);

function compileSelector(s: RateLimitSelector, field: string): CompiledSelector {
  if (!SOURCES.has(s.source)) throw new EdgeConfigError(`${field}.source`, `unknown source "${s.source}"`);
  const name = (s.name ?? '').toLowerCase();
  if ((s.source === 'SOURCE_HEADER' || s.source === 'SOURCE_JWT_CLAIM') && name === '') {
    throw new EdgeConfigError(`${field}.name`, `is required for ${s.source}`);
  }
  const kind = s.match === undefined || s.match === 'RATE_LIMIT_MATCH_UNSPECIFIED' ? 'EQUALS' : s.match;
  const value = s.value ?? '';
  const invert = s.invert === true;
  if (kind === 'DISTINCT') {
    if (invert) throw new EdgeConfigError(`${field}.invert`, 'must not be set with DISTINCT');
  } else if (value === '') {
    throw new EdgeConfigError(`${field}.value`, `is required with ${kind}`);
  }
  let regex: RegExp | undefined;
  if (kind === 'MATCHES_REGEX') {
    try {
      regex = new RegExp(`^(?:${value})$`);
    } catch (err) {
      throw new EdgeConfigError(`${field}.value`, `invalid regular expression: ${(err as Error).message}`);
    }
  }
  let cidr: BlockList | undefined;
  if (kind === 'IN_CIDR') {
    if (s.source !== 'SOURCE_CLIENT_IP')
      throw new EdgeConfigError(`${field}.match`, 'IN_CIDR needs SOURCE_CLIENT_IP');
    const [addr = '', bitsText] = value.split('/');
    const family = isIP(addr);
    const max = family === 6 ? 128 : 32;
    const bits = bitsText === undefined ? max : Number(bitsText);
    if (family === 0 || !Number.isInteger(bits) || bits < 0 || bits > max) {
      throw new EdgeConfigError(`${field}.value`, `must be a CIDR such as 10.0.0.0/8, got "${value}"`);
    }
    cidr = new BlockList();
    cidr.addSubnet(addr, bits, family === 6 ? 'ipv6' : 'ipv4');
  }
  return { source: s.source, name, kind, value, regex, cidr, invert };
}

/**
 * Compiles `rules` (at `field`, e.g. `rateLimits`) with counters from `store`. Buckets: a named
 * rule of the listener is one bucket set wherever it appears (all the listeners of a Gateway share
 * its policy's buckets); a route's rule has its own per route name (a route served on two listeners
 * shares them); an unnamed rule is local to its listener. Throws `EdgeConfigError`.
 */
export function compileRateLimits(
  rules: readonly RateLimitRule[] | undefined,
  field: string,
  owner: { readonly listener: string; readonly route?: string },
  store: LimiterStore,
): CompiledRule[] {
  return (rules ?? []).map((rule, i) => {
    const where = `${field}[${i}]`;
    if (!Number.isInteger(rule.requests) || rule.requests < 1) {
      throw new EdgeConfigError(`${where}.requests`, 'must be a whole number ≥ 1');
    }
    if (!(rule.unit in UNIT_SECONDS))
      throw new EdgeConfigError(`${where}.unit`, `unknown unit "${rule.unit}"`);
    const burst = rule.burst ?? 0;
    if (!Number.isInteger(burst) || burst < 0)
      throw new EdgeConfigError(`${where}.burst`, 'must be a whole number ≥ 0');
    const name = rule.name || `${owner.listener}/${field}[${i}]`;
    return {
      name,
      scope: owner.route === undefined ? name : `${owner.route}|${name}`,
      plan: rule.plan ?? '',
      selectors: (rule.selectors ?? []).map((s, j) => compileSelector(s, `${where}.selectors[${j}]`)),
      limiter: store.limiterFor({ ...rule, name }),
    };
  });
}

function selectorValue(ctx: RequestContext, s: CompiledSelector): string | undefined {
  switch (s.source) {
    case 'SOURCE_HEADER': {
      const v = ctx.req.headers[s.name];
      return Array.isArray(v) ? v.join(', ') : v;
    }
    case 'SOURCE_CLIENT_IP':
      return ctx.clientAddress || undefined;
    case 'SOURCE_CLIENT_ID':
      return ctx.principal?.clientId || undefined;
    case 'SOURCE_PLAN':
      return ctx.principal?.plan || undefined;
    case 'SOURCE_JWT_CLAIM': {
      const v = ctx.principal?.claims[s.name];
      return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
    }
    default:
      return undefined;
  }
}

function valueMatches(s: CompiledSelector, v: string): boolean {
  switch (s.kind) {
    case 'EQUALS':
      return v === s.value;
    case 'MATCHES_REGEX':
      return (s.regex as RegExp).test(v);
    case 'IN_CIDR': {
      const family = isIP(v);
      return family !== 0 && (s.cidr as BlockList).check(v, family === 6 ? 'ipv6' : 'ipv4');
    }
    default:
      return true;
  }
}

/** The bucket key of `rule` for this request, or undefined when the rule does not apply. */
export function bucketKey(ctx: RequestContext, rule: CompiledRule): string | undefined {
  if (rule.plan !== '' && ctx.principal?.plan !== rule.plan) return undefined;
  let key = rule.scope;
  for (const s of rule.selectors) {
    const v = selectorValue(ctx, s);
    if (s.kind === 'DISTINCT') {
      if (v === undefined) return undefined;
      key += `|${encodeURIComponent(v)}`;
      continue;
    }
    const matched = v !== undefined && valueMatches(s, v);
    if (matched === s.invert) return undefined;
  }
  return key;
}

function seconds(ms: number): string {
  return String(Math.max(0, Math.ceil(ms / 1000)));
}

/** The RateLimit-* fields for `v` (draft-ietf-httpapi-ratelimit-headers-06). */
export function rateLimitFields(v: Verdict): Record<string, string> {
  return {
    'ratelimit-limit': String(v.limit),
    'ratelimit-remaining': String(v.remaining),
    'ratelimit-reset': seconds(v.resetMs),
    'ratelimit-policy': `${v.limit};w=${v.windowSeconds}`,
  };
}

/** Adds the RateLimit-* fields of the reported verdict to the response head. */
class RateLimitHeaders {
  readonly #fields: Record<string, string>;
  constructor(fields: Record<string, string>) {
    this.#fields = fields;
  }
  head(_status: number, headers: HeaderMap): void {
    Object.assign(headers, this.#fields);
  }
}

const FAILED_CLOSED: FilterResult = Object.freeze({
  kind: 'respond',
  status: 503,
  headers: { 'x-weft-error': 'RATE_LIMIT_UNAVAILABLE', 'retry-after': '1' },
  body: 'the rate limit store is unreachable and the limit fails closed\n',
});

/** The filter of one GATEWAY listener for one config version. */
export class RateLimitFilter implements HttpFilter {
  readonly name = RATE_LIMIT_FILTER_NAME;
  readonly #listenerRules: readonly CompiledRule[];
  readonly #routes: EdgeRoutes;
  readonly #store: LimiterStore;

  constructor(listenerRules: readonly CompiledRule[], routes: EdgeRoutes, store: LimiterStore) {
    this.#listenerRules = listenerRules;
    this.#routes = routes;
    this.#store = store;
  }

  /** Whether any rule exists on the listener or its routes (else the filter is left out). */
  static needed(listenerRules: readonly CompiledRule[], routes: EdgeRoutes): boolean {
    return listenerRules.length > 0 || routes.any((r) => r.rateLimits.length > 0);
  }

  async onRequest(ctx: RequestContext): Promise<FilterResult> {
    const route = this.#routes.lookup(ctx);
    const pending: Promise<Verdict | StoreFailure>[] = [];
    for (const rules of [this.#listenerRules, route?.rateLimits ?? []]) {
      for (const rule of rules) {
        const key = bucketKey(ctx, rule);
        if (key !== undefined) pending.push(rule.limiter.consume(key));
      }
    }
    if (pending.length === 0) return CONTINUE;
    const outcomes = await Promise.all(pending);
    let failed = false;
    let limiting: Verdict | undefined;
    let tightest: Verdict | undefined;
    for (const o of outcomes) {
      if ('failed' in o) {
        failed = true;
        continue;
      }
      if (!o.allowed) {
        if (limiting === undefined || o.resetMs > limiting.resetMs) limiting = o;
      } else if (tightest === undefined || o.remaining < tightest.remaining) {
        tightest = o;
      }
    }
    const routeName = route?.name ?? ctx.routeMatch?.routeName ?? '';
    const plan = ctx.principal?.plan ?? '';
    let result: RateLimitResult;
    if (failed && this.#store.failMode === 'FAIL_CLOSED') result = 'failed_closed';
    else if (limiting !== undefined) result = 'limited';
    else result = failed ? 'failed_open' : 'allowed';
    publishRateLimit(routeName, result, plan);
    if (result === 'failed_closed') {
      ctx.flags = 'RATE_LIMIT_UNAVAILABLE';
      return FAILED_CLOSED;
    }
    if (limiting !== undefined) {
      ctx.flags = 'RATE_LIMITED';
      return {
        kind: 'respond',
        status: 429,
        headers: {
          ...rateLimitFields(limiting),
          'retry-after': String(Math.max(1, Math.ceil(limiting.resetMs / 1000))),
          'x-weft-error': 'RATE_LIMITED',
        },
        body: 'rate limit exceeded\n',
      };
    }
    if (tightest !== undefined) {
      addResponseTap(ctx, new RateLimitHeaders(rateLimitFields(tightest)));
    }
    return CONTINUE;
  }
}
