/**
 * RateLimitPolicy → edge RateLimitRules (control-plane/translate/ratelimit.ts), and MeshConfig
 * `rateLimit` → RateLimitService; the rules it makes compile on the proxy and pass the proto check.
 */
import { describe, expect, it } from 'vitest';
import type { MeshConfigSpec } from '../../../control-plane/resources/types.ts';
import {
  attachEdgeRateLimits,
  rateLimitServiceOf,
  translateRateLimitPolicies,
} from '../../../control-plane/translate/ratelimit.ts';
import { LimiterStore } from '../../../gateway/filters/limits/limiters.ts';
import { compileRateLimits } from '../../../gateway/filters/limits/ratelimit.ts';
import { checkAgainstProto } from '../../../sidecar/proxy/config/schema.ts';
import { doc, valid } from '../resources/helpers.ts';

function policy(name: string, spec: Record<string, unknown>, created: string) {
  const d = doc('RateLimitPolicy', spec, name) as { metadata: Record<string, unknown> };
  d.metadata.creationTimestamp = created;
  return valid(d);
}

const api = policy(
  'api-limits',
  {
    targetRefs: [{ kind: 'HTTPRoute', name: 'api' }],
    type: 'Global',
    limits: [
      {
        clientSelectors: [
          {
            headers: [{ name: 'X-User', type: 'Distinct' }],
            sourceCIDR: { type: 'Distinct', value: '10.0.0.0/8' },
          },
          {
            clientId: { type: 'Distinct' },
            jwtClaim: { name: 'tenant', type: 'RegularExpression', value: 'acme-.*' },
          },
        ],
        limit: { requests: 100, unit: 'Minute', burst: 20 },
      },
      {
        clientSelectors: [{ clientId: { type: 'Distinct' } }],
        limit: { requests: 1000, unit: 'Month' },
        plan: 'free',
      },
    ],
  },
  '2026-01-01T00:00:00Z',
);
const edge = policy(
  'edge',
  {
    targetRefs: [
      { kind: 'Gateway', name: 'public' },
      { kind: 'HTTPRoute', name: 'api' },
    ],
    limits: [{ limit: { requests: 5, unit: 'Second' } }],
  },
  '2026-02-01T00:00:00Z',
);

describe('translateRateLimitPolicies', () => {
  const limits = translateRateLimitPolicies([edge, api]);

  it('maps selectors, units, burst, plan and type to RateLimitRules, oldest policy first', () => {
    expect(limits.forRoute('HTTPRoute', 'default', 'api')).toEqual([
      {
        name: 'default/api-limits/limit-0',
        selectors: [
          { source: 'SOURCE_HEADER', name: 'x-user', match: 'DISTINCT' },
          { source: 'SOURCE_CLIENT_IP', match: 'IN_CIDR', value: '10.0.0.0/8' },
          { source: 'SOURCE_CLIENT_IP', match: 'DISTINCT' },
          { source: 'SOURCE_CLIENT_ID', match: 'DISTINCT' },
          { source: 'SOURCE_JWT_CLAIM', name: 'tenant', match: 'MATCHES_REGEX', value: 'acme-.*' },
        ],
        requests: 100,
        unit: 'PER_MINUTE',
        burst: 20,
        global: true,
      },
      {
        name: 'default/api-limits/limit-1',
        selectors: [{ source: 'SOURCE_CLIENT_ID', match: 'DISTINCT' }],
        requests: 1000,
        unit: 'PER_MONTH',
        plan: 'free',
        global: true,
      },
      { name: 'default/edge/limit-0', requests: 5, unit: 'PER_SECOND' },
    ]);
  });

  it('puts Gateway-targeted rules on the Gateway only', () => {
    expect(limits.forGateway('default', 'public')).toEqual([
      { name: 'default/edge/limit-0', requests: 5, unit: 'PER_SECOND' },
    ]);
    expect(limits.forGateway('other', 'public')).toEqual([]);
    expect(limits.forRoute('GRPCRoute', 'default', 'api')).toEqual([]);
  });

  it('makes rules the proxy compiles and the proto accepts', () => {
    const rules = limits.forRoute('HTTPRoute', 'default', 'api');
    expect(compileRateLimits(rules, 'rateLimits', { listener: 'edge' }, new LimiterStore())).toHaveLength(3);
    expect(checkAgainstProto('weft.v1.Route', { name: 'r', rateLimits: rules })).toEqual([]);
  });
});

describe('attachEdgeRateLimits', () => {
  it("puts the Gateway's rules on the listener and each user route's rules on its proxy Routes", () => {
    const limits = translateRateLimitPolicies([edge, api]);
    const out = attachEdgeRateLimits(
      limits,
      { namespace: 'default', name: 'public' },
      { name: 'http-80', port: 80, routeConfigName: 'r', direction: 'GATEWAY' },
      [{ name: 'default/api/rule-0' }, { name: 'default/other/rule-0' }, { name: 'default-route' }],
      (r) =>
        r.name === 'default/api/rule-0'
          ? 'HTTPRoute/default/api'
          : r.name === 'default-route'
            ? undefined
            : 'HTTPRoute/default/other',
    );
    expect(out.listener.rateLimits?.map((r) => r.name)).toEqual(['default/edge/limit-0']);
    expect(out.routes[0]?.rateLimits?.map((r) => r.name)).toEqual([
      'default/api-limits/limit-0',
      'default/api-limits/limit-1',
      'default/edge/limit-0',
    ]);
    expect(out.routes[1]).toEqual({ name: 'default/other/rule-0' });
    expect(out.routes[2]).toEqual({ name: 'default-route' });
  });
});

describe('rateLimitServiceOf', () => {
  it('maps MeshConfig rateLimit to the RateLimitService (absent: none)', () => {
    const mesh = valid(
      doc(
        'MeshConfig',
        { rateLimit: { redis: { url: 'redis://10.0.0.5:6379' }, failMode: 'Closed' } },
        'default',
      ),
    ).spec as unknown as MeshConfigSpec;
    expect(rateLimitServiceOf(mesh)).toEqual({
      redisUrl: 'redis://10.0.0.5:6379',
      failMode: 'FAIL_CLOSED',
      timeoutMs: 100,
    });
    expect(rateLimitServiceOf(undefined)).toBeUndefined();
  });
});
