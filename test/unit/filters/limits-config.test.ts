/**
 * Edge limit config checks (sidecar/proxy/filters/limits): bad values are rejected when a config is
 * applied, naming the field; non-GATEWAY listeners get no edge filters and may not set edge limits.
 */
import { describe, expect, it } from 'vitest';
import { EdgeLimits } from '../../../gateway/filters/limits/edge.ts';
import { LimiterStore } from '../../../gateway/filters/limits/limiters.ts';
import { compileRateLimits } from '../../../gateway/filters/limits/ratelimit.ts';
import type { Listener, RateLimitRule, RouteConfiguration } from '../../../sidecar/proxy/config/types.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';

const rc: RouteConfiguration = {
  name: 'r',
  virtualHosts: [
    { name: 'vh', domains: ['*'], routes: [{ name: 'a', route: { clusters: [{ name: 'c', weight: 1 }] } }] },
  ],
};
const listener = (extra: Partial<Listener>): Listener => ({
  name: 'l',
  port: 0,
  routeConfigName: 'r',
  ...extra,
});

function errorOf(rule: RateLimitRule): string {
  try {
    compileRateLimits([rule], 'rateLimits', { listener: 'l' }, new LimiterStore());
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}

describe('edge limit config', () => {
  it('builds body limit, rate limit and cache filters for a GATEWAY listener that asks for them', () => {
    const withCache: RouteConfiguration = {
      ...rc,
      virtualHosts: [
        { name: 'vh', routes: [{ name: 'a', cache: {}, route: { clusters: [{ name: 'c', weight: 1 }] } }] },
      ],
    };
    const filters = new EdgeLimits().filtersFor(
      listener({ direction: 'GATEWAY', rateLimits: [{ requests: 1, unit: 'PER_SECOND' }] }),
      withCache,
      compileRouteTable(withCache),
    );
    expect(filters.map((f) => f.name)).toEqual([
      'weft.filters.http.body_limit',
      'weft.filters.http.ratelimit',
      'weft.filters.http.cache',
    ]);
  });

  it('gives sidecar listeners no edge filters and refuses edge limits on them', () => {
    const edge = new EdgeLimits();
    expect(edge.filtersFor(listener({ direction: 'OUTBOUND' }), rc, compileRouteTable(rc))).toEqual([]);
    expect(() =>
      edge.filtersFor(
        listener({ direction: 'INBOUND', rateLimits: [{ requests: 1, unit: 'PER_SECOND' }] }),
        rc,
        undefined,
      ),
    ).toThrow('rateLimits: edge limits apply to GATEWAY listeners only');
  });

  it.each([
    [
      { requests: 0, unit: 'PER_SECOND' } as RateLimitRule,
      'rateLimits[0].requests: must be a whole number ≥ 1',
    ],
    [
      { requests: 1, unit: 'RATE_LIMIT_UNIT_UNSPECIFIED' } as RateLimitRule,
      'rateLimits[0].unit: unknown unit',
    ],
    [
      {
        requests: 1,
        unit: 'PER_SECOND',
        selectors: [{ source: 'SOURCE_HEADER', match: 'DISTINCT' }],
      } as RateLimitRule,
      'rateLimits[0].selectors[0].name: is required for SOURCE_HEADER',
    ],
    [
      {
        requests: 1,
        unit: 'PER_SECOND',
        selectors: [{ source: 'SOURCE_HEADER', name: 'x', match: 'MATCHES_REGEX', value: '[' }],
      } as RateLimitRule,
      'rateLimits[0].selectors[0].value: invalid regular expression',
    ],
    [
      {
        requests: 1,
        unit: 'PER_SECOND',
        selectors: [{ source: 'SOURCE_HEADER', name: 'x', match: 'IN_CIDR', value: '10.0.0.0/8' }],
      } as RateLimitRule,
      'rateLimits[0].selectors[0].match: IN_CIDR needs SOURCE_CLIENT_IP',
    ],
    [
      {
        requests: 1,
        unit: 'PER_SECOND',
        selectors: [{ source: 'SOURCE_CLIENT_IP', match: 'IN_CIDR', value: '10.0.0.0/33' }],
      } as RateLimitRule,
      'rateLimits[0].selectors[0].value: must be a CIDR',
    ],
    [
      {
        requests: 1,
        unit: 'PER_SECOND',
        selectors: [{ source: 'SOURCE_PLAN', match: 'DISTINCT', invert: true }],
      } as RateLimitRule,
      'rateLimits[0].selectors[0].invert: must not be set with DISTINCT',
    ],
  ])('rejects %j', (rule, message) => {
    expect(errorOf(rule)).toContain(message);
  });
});
