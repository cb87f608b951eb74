/**
 * Gateway API `RequestMirror` filters (HTTPRoute and GRPCRoute rules; HTTPRequestMirrorFilter) →
 * proxy `Route.mirrors`.
 *
 * - `backendRef` resolves as any backendRef does (backends.ts) to the Service port's cluster
 *   `outbound|<port>|<name>.<namespace>`; the translator emits that cluster and its endpoints
 *   (translate.ts counts mirror clusters as used).
 * - The share is `percent`, or `fraction` numerator / denominator (default 100) as a percent;
 *   neither means every request, written as no `percent` (the proxy's default, 100).
 * - A mirror whose backend does not resolve, or whose share is 0, is left out: a mirror never
 *   affects the caller, and a percent of 0 could not cross the wire (proto3 drops zero values, and
 *   the proxy reads an absent percent as 100).
 * - RequestMirror on a backendRef (rather than the rule) is not translated.
 *
 * Invariants: list order is filter order; fields are set only when meaningful.
 */
import type { RequestMirror } from '../../sidecar/proxy/config/types.ts';
import { resolveBackendRef } from './backends.ts';
import type { ServiceIndex } from './services.ts';
import type { FilterView, RequestMirrorView } from './specs.ts';

/** The share of requests a mirror takes, in percent (0..100). */
function mirrorPercent(m: RequestMirrorView): number {
  if (m.percent !== undefined) return m.percent;
  if (m.fraction !== undefined) return (m.fraction.numerator / (m.fraction.denominator ?? 100)) * 100;
  return 100;
}

/**
 * The mirrors of a rule's `filters` written in a route in `routeNamespace`, for the parent routed
 * on `parentPort`.
 */
export function ruleMirrors(
  services: ServiceIndex,
  filters: readonly FilterView[] | undefined,
  routeNamespace: string,
  parentPort: number | undefined,
): RequestMirror[] {
  const out: RequestMirror[] = [];
  for (const f of filters ?? []) {
    if (f.type !== 'RequestMirror' || f.requestMirror === undefined) continue;
    const percent = Math.min(mirrorPercent(f.requestMirror), 100);
    if (!(percent > 0)) continue;
    const b = resolveBackendRef(services, f.requestMirror.backendRef, routeNamespace, parentPort);
    if (!b.ok) continue;
    out.push({ cluster: b.clusterName, ...(percent < 100 && { percent }) });
  }
  return out;
}
