/**
 * AuthorizationPolicy for opaque TCP connections, with Istio's TCP semantics: a TCP connection has
 * a source (principal, namespace) and nothing HTTP, so
 * - a DENY rule's HTTP fields (`to`, `when`) are dropped: the rule matches on its source alone
 *   (more restrictive: a DENY rule with only HTTP fields denies every TCP connection);
 * - an ALLOW rule with HTTP fields never matches (dropped; more restrictive as well);
 * - `allowEnforced` stays as configured.
 * The result is compiled by the HTTP RBAC compiler (filters/rbac.ts) and asked with no method,
 * path or headers.
 */
import type { Rbac, RbacRule } from '../config/types.ts';
import { authorize, type CompiledRbac, compileRbac } from '../filters/rbac.ts';

function httpOnly(r: RbacRule): boolean {
  return (r.to?.length ?? 0) > 0 || (r.when?.length ?? 0) > 0;
}

/**
 * The TCP view of a listener's `rbac`, compiled.
 * @throws RbacConfigError as `compileRbac` does (the HTTP filter rejects the same config first).
 */
export function compileTcpRbac(rbac: Rbac): CompiledRbac {
  return compileRbac({
    deny: (rbac.deny ?? []).map((r) => ({
      ...(r.name !== undefined && { name: r.name }),
      from: r.from ?? [],
    })),
    allow: (rbac.allow ?? []).filter((r) => !httpOnly(r)),
    allowEnforced: rbac.allowEnforced === true || (rbac.allow?.length ?? 0) > 0,
  });
}

const NO_HEADERS = Object.freeze({});

/**
 * Whether a connection from `principal` (SPIFFE ID, '' when none) may pass; `reason` names the
 * rule that decided (see `authorize`).
 */
export function authorizeConnection(
  rbac: CompiledRbac,
  principal: string,
): { allowed: boolean; reason: string } {
  const v = authorize(rbac, principal, '', '', NO_HEADERS);
  return { allowed: v.allowed, reason: v.reason };
}
