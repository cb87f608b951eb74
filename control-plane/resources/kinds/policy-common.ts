/**
 * Policy attachment for Weft's policies (Gateway API GEP-713 `targetRefs`): a list of
 * `{group?, kind, name}` naming targets in the policy's own namespace.
 *
 * `group` may be left out; it defaults by kind (`""` for Service, `gateway.networking.k8s.io` for
 * Gateway, HTTPRoute and GRPCRoute). A Service is in the core group: `""` and `core` are both
 * accepted and stored as `""`, as for route parentRefs. Targets are unique per policy.
 */
import { dnsSubdomain } from '../names.ts';
import { enumOf, list, obj, optional, refine, type Schema, str, transform } from '../schema.ts';
import type { PolicyTargetReference } from '../types.ts';
import { GATEWAY_GROUP, normalizeGroup } from './route-common.ts';

type TargetKind = PolicyTargetReference['kind'];

const GROUP_OF: Readonly<Record<TargetKind, string>> = {
  Service: '',
  Gateway: GATEWAY_GROUP,
  HTTPRoute: GATEWAY_GROUP,
  GRPCRoute: GATEWAY_GROUP,
};

/** One target reference whose kind is one of `kinds`. */
export function targetRef(kinds: readonly TargetKind[]): Schema<PolicyTargetReference> {
  const ref = obj({ group: optional(str({ maxLength: 253 })), kind: enumOf(...kinds), name: dnsSubdomain });
  const checked = refine(ref, (r, path, issues) => {
    const expected = GROUP_OF[r.kind];
    if (r.group !== undefined && normalizeGroup(r.group, expected) !== expected) {
      issues.add(
        `${path}.group`,
        `must be ${JSON.stringify(expected)} for kind ${r.kind}${expected === '' ? ' (or "core")' : ''} (got ${JSON.stringify(r.group)})`,
      );
    }
  });
  return transform(
    checked,
    (r): PolicyTargetReference => ({ group: GROUP_OF[r.kind], kind: r.kind, name: r.name }),
  );
}

/** `targetRefs`: 1..16 unique targets (0..16 when `optional`). */
export function targetRefs(
  kinds: readonly TargetKind[],
  minItems = 1,
): Schema<readonly PolicyTargetReference[]> {
  return list(targetRef(kinds), {
    minItems,
    maxItems: 16,
    uniqueBy: [{ key: (r) => `${r.kind}/${r.name}`, what: 'target' }],
  });
}
