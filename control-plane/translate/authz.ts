/**
 * AuthorizationPolicy → the `rbac` of a sidecar's inbound listener (Istio AuthorizationPolicy
 * semantics; the proxy side is sidecar/proxy/filters/rbac.ts).
 *
 * Which policies apply to a sidecar (its proxy identity's `service` in its `namespace`):
 * - a policy in the sidecar's namespace whose `targetRefs` name its Service (group `""`/`core`,
 *   kind Service); references to a Gateway or another Service are not this sidecar's;
 * - a policy in the sidecar's namespace without `targetRefs` (every Service of the namespace).
 * Policies of other namespaces never apply (targetRefs are local references).
 *
 * Each rule becomes an `RbacRule` named `<ns>/<policy>/rule-<i>`; DENY policies fill `deny`,
 * ALLOW policies fill `allow` and set `allowEnforced` (so an ALLOW policy without rules denies
 * every request, as in Istio). A DENY policy without rules matches nothing. Principals lose
 * their `spiffe://` prefix; a `when` key `request.headers[<name>]` becomes a lower-case header
 * name. When nothing is denied and nothing enforced, no `rbac` is emitted (allow all).
 *
 * Invariants: deterministic (policies in Gateway API tie-break order, rules in spec order); lists
 * that would be empty are left out, as the proto3 JSON mapping omits them.
 */

import type {
  Rbac,
  RbacCondition,
  RbacOperation,
  RbacRule,
  RbacSource,
} from '../../sidecar/proxy/config/types.ts';
import { HEADER_KEY } from '../resources/kinds/authorizationpolicy.ts';
import type {
  AuthorizationCondition,
  AuthorizationOperation,
  AuthorizationPolicySpec,
  AuthorizationRule,
  AuthorizationSource,
  Resource,
} from '../resources/types.ts';
import { compareResources } from './order.ts';
import { isServiceRef, namespaceOf } from './specs.ts';
import type { ProxyIdentity } from './types.ts';

type PolicyResource = Resource & Resource<AuthorizationPolicySpec>;

const SPIFFE_SCHEME = 'spiffe://';

/** True when `policy` applies to the sidecar of `service` in `namespace`. */
export function appliesTo(policy: PolicyResource, service: string, namespace: string): boolean {
  if (namespaceOf(policy) !== namespace) return false;
  const refs = policy.spec.targetRefs ?? [];
  if (refs.length === 0) return true;
  return refs.some((ref) => isServiceRef(ref, 'Service') && ref.name === service);
}

/** `{[key]: list}` when the list has items, else undefined (spread into an object literal). */
function some<K extends string>(key: K, list: readonly string[] | undefined) {
  return list !== undefined && list.length > 0
    ? ({ [key]: list } as Record<K, readonly string[]>)
    : undefined;
}

function withoutScheme(principal: string): string {
  return principal.startsWith(SPIFFE_SCHEME) ? principal.slice(SPIFFE_SCHEME.length) : principal;
}

function source(s: AuthorizationSource): RbacSource {
  return {
    ...some('principals', s.principals?.map(withoutScheme)),
    ...some('notPrincipals', s.notPrincipals?.map(withoutScheme)),
    ...some('namespaces', s.namespaces),
    ...some('notNamespaces', s.notNamespaces),
  };
}

function operation(o: AuthorizationOperation): RbacOperation {
  return {
    ...some('methods', o.methods),
    ...some('notMethods', o.notMethods),
    ...some('paths', o.paths),
    ...some('notPaths', o.notPaths),
  };
}

/** `request.headers[X-Tenant]` → `x-tenant` (validation guarantees the key's form). */
function condition(c: AuthorizationCondition): RbacCondition {
  const header = (HEADER_KEY.exec(c.key)?.[1] ?? c.key).toLowerCase();
  return { header, ...some('values', c.values), ...some('notValues', c.notValues) };
}

function rule(r: AuthorizationRule, name: string): RbacRule {
  const from = (r.from ?? []).map((f) => source(f.source));
  const to = (r.to ?? []).map((t) => operation(t.operation));
  const when = (r.when ?? []).map(condition);
  return {
    name,
    ...(from.length > 0 && { from }),
    ...(to.length > 0 && { to }),
    ...(when.length > 0 && { when }),
  };
}

/**
 * The `rbac` of the inbound listener of `proxy` (a sidecar), or undefined when no policy denies
 * or enforces anything for it.
 */
export function inboundRbac(resources: readonly Resource[], proxy: ProxyIdentity): Rbac | undefined {
  const policies = resources
    .filter((r): r is PolicyResource => r.kind === 'AuthorizationPolicy')
    .filter((p) => appliesTo(p, proxy.service, proxy.namespace))
    .sort(compareResources);
  const deny: RbacRule[] = [];
  const allow: RbacRule[] = [];
  let allowEnforced = false;
  for (const p of policies) {
    const prefix = `${namespaceOf(p)}/${p.metadata.name}/rule-`;
    const rules = (p.spec.rules ?? []).map((r, i) => rule(r, `${prefix}${i}`));
    if (p.spec.action === 'DENY') {
      deny.push(...rules);
    } else {
      allow.push(...rules);
      allowEnforced = true;
    }
  }
  if (deny.length === 0 && !allowEnforced) return undefined;
  return {
    ...(deny.length > 0 && { deny }),
    ...(allow.length > 0 && { allow }),
    ...(allowEnforced && { allowEnforced }),
  };
}
