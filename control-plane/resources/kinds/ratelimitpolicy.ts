/**
 * `RateLimitPolicy` (weft.dev/v1alpha1): request limits per client, route and plan, enforced
 * where the traffic enters. Selector and limit names after Envoy Gateway's
 * BackendTrafficPolicy `rateLimit.local.rules`.
 *
 * ```yaml
 * spec:
 *   targetRefs: [{kind: HTTPRoute, name: api}]      # Gateway, HTTPRoute or GRPCRoute, 1..16
 *   type: Local                                     # Local (default, per replica) | Global (Redis)
 *   limits:                                         # 1..64
 *   - clientSelectors:                              # all must match; none: every request
 *     - headers: [{name: x-user, type: Distinct}]   # Exact (default) | RegularExpression | Distinct
 *       sourceCIDR: {type: Distinct, value: 0.0.0.0/0}
 *       clientId: {type: Distinct}                  # authenticated client: Exact (with value) | Distinct
 *       jwtClaim: {name: tenant, type: Distinct}    # Exact | RegularExpression | Distinct
 *     limit: {requests: 100, unit: Minute, burst: 20}  # Second | Minute | Hour | Day | Month (30 days)
 *     plan: gold                                    # optional: only clients on this plan (API key metadata)
 * ```
 * Rules: a Distinct header or claim has no value (one bucket per value), other types need one;
 * RegularExpression values compile; `invert` is not allowed with Distinct; a selector sets at
 * least one of headers, sourceCIDR, clientId, jwtClaim; `burst` is extra requests per 10 units.
 */
import { cidr, dnsLabel, headerName, regexError } from '../names.ts';
import {
  bool,
  enumOf,
  type Issues,
  int,
  list,
  obj,
  optional,
  type Schema,
  str,
  withDefault,
} from '../schema.ts';
import type { RateLimitPolicySpec } from '../types.ts';
import type { KindHandler } from './kind.ts';
import { targetRefs } from './policy-common.ts';

/** A value selector's rules: Distinct has no value and no invert; Exact / RegularExpression need one that compiles. */
function checkValue(
  h: { readonly type: string; readonly value?: string; readonly invert?: boolean },
  path: string,
  issues: Issues,
): void {
  if (h.type === 'Distinct') {
    if (h.value !== undefined) issues.add(`${path}.value`, 'must not be set when type is Distinct');
    if (h.invert === true) issues.add(`${path}.invert`, 'must not be true when type is Distinct');
    return;
  }
  if (h.value === undefined) issues.add(`${path}.value`, `is required when type is ${h.type}`);
  else if (h.type === 'RegularExpression') {
    const why = regexError(h.value);
    if (why !== undefined) issues.add(`${path}.value`, why);
  }
}

const headerSelector = obj(
  {
    name: headerName,
    type: withDefault(enumOf('Exact', 'RegularExpression', 'Distinct'), 'Exact'),
    value: optional(str({ minLength: 1, maxLength: 1024 })),
    invert: optional(bool()),
  },
  { refine: (h, path, issues) => checkValue(h, path, issues) },
);

const clientIdSelector = obj(
  {
    type: withDefault(enumOf('Exact', 'Distinct'), 'Exact'),
    value: optional(str({ minLength: 1, maxLength: 253 })),
  },
  {
    refine: (c, path, issues) => {
      if (c.type === 'Distinct' && c.value !== undefined)
        issues.add(`${path}.value`, 'must not be set when type is Distinct');
      if (c.type === 'Exact' && c.value === undefined)
        issues.add(`${path}.value`, 'is required when type is Exact');
    },
  },
);

const jwtClaimSelector = obj(
  {
    name: str({ minLength: 1, maxLength: 256 }),
    type: withDefault(enumOf('Exact', 'RegularExpression', 'Distinct'), 'Exact'),
    value: optional(str({ minLength: 1, maxLength: 1024 })),
    invert: optional(bool()),
  },
  { refine: (c, path, issues) => checkValue(c, path, issues) },
);

const selector = obj(
  {
    headers: optional(list(headerSelector, { minItems: 1, maxItems: 16 })),
    sourceCIDR: optional(obj({ type: withDefault(enumOf('Exact', 'Distinct'), 'Exact'), value: cidr })),
    clientId: optional(clientIdSelector),
    jwtClaim: optional(jwtClaimSelector),
  },
  {
    refine: (s, path, issues) =>
      Object.keys(s).length === 0
        ? issues.add(path, 'set at least one of headers, sourceCIDR, clientId, jwtClaim')
        : undefined,
  },
);

export const rateLimitPolicySpecSchema: Schema<RateLimitPolicySpec> = obj({
  targetRefs: targetRefs(['Gateway', 'HTTPRoute', 'GRPCRoute']),
  type: withDefault(enumOf('Local', 'Global'), 'Local'),
  limits: list(
    obj({
      clientSelectors: optional(list(selector, { minItems: 1, maxItems: 8 })),
      limit: obj({
        requests: int(1, 2 ** 32 - 1),
        unit: enumOf('Second', 'Minute', 'Hour', 'Day', 'Month'),
        burst: optional(int(0, 2 ** 32 - 1)),
      }),
      plan: optional(dnsLabel),
    }),
    { minItems: 1, maxItems: 64 },
  ),
});

export const rateLimitPolicy: KindHandler = {
  check: (spec, _ctx, issues) => rateLimitPolicySpecSchema.check(spec, 'spec', issues),
};
