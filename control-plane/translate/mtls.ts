/**
 * Mesh mTLS in the translation: once the CA's trust bundle exists (`MeshState.trustBundle`),
 * traffic between sidecars is mutually authenticated.
 *
 * - The sidecar's inbound listener gets `tls.mode` from the MeshConfig `default`
 *   (`spec.mtls.mode`: STRICT | PERMISSIVE; STRICT when there is no MeshConfig or no mode);
 *   the outbound listener (the app's own loopback hop) stays plain text.
 * - Every mesh cluster (`outbound|…`) gets `tls.enabled`, and each endpoint the SPIFFE ID its
 *   sidecar must present: `spiffe://<trust domain>/ns/<registration namespace>/sa/<labels.app>`
 *   (the service account is the service name the CA binds join tokens to). The inbound cluster
 *   (the local app on 127.0.0.1) stays plain text.
 * - The snapshot carries the trust bundle, so the proxy verifies peers against the same roots.
 * Without a trust bundle nothing changes: plain text everywhere, as before the CA.
 *
 * Spec: SPIFFE ID (§2, path segments `[A-Za-z0-9._-]`); Istio's PeerAuthentication modes.
 */
import type { DownstreamTls, TrustBundle } from '../../sidecar/proxy/config/types.ts';
import type { Resource } from '../resources/types.ts';
import type { MeshState } from './types.ts';

/** What mesh mTLS looks like at one revision. */
export interface MeshMtls {
  readonly trustDomain: string;
  readonly bundle: TrustBundle;
  /** The inbound listener's TLS settings. */
  readonly inbound: DownstreamTls;
}

/** SPIFFE path segment (SPIFFE ID §2.2). */
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** The inbound mode from the MeshConfig `default` (STRICT unless it says PERMISSIVE). */
function inboundMode(resources: readonly Resource[]): 'STRICT' | 'PERMISSIVE' {
  const meshConfig = resources.find((r) => r.kind === 'MeshConfig' && r.metadata.name === 'default');
  const mode = (meshConfig?.spec as { mtls?: { mode?: string } } | undefined)?.mtls?.mode;
  return mode === 'PERMISSIVE' ? 'PERMISSIVE' : 'STRICT';
}

/** Mesh mTLS settings, or undefined when there is no trust bundle (plain text mesh). */
export function meshMtls(state: MeshState): MeshMtls | undefined {
  const bundle = state.trustBundle;
  if (bundle?.trustDomain === undefined || bundle.trustDomain === '') return undefined;
  return { trustDomain: bundle.trustDomain, bundle, inbound: { mode: inboundMode(state.resources) } };
}

/**
 * `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`, or undefined when a part is not a
 * valid SPIFFE path segment (such an endpoint could never authenticate; the caller leaves it out).
 */
export function workloadSpiffeId(
  trustDomain: string,
  namespace: string,
  serviceAccount: string,
): string | undefined {
  if (!SEGMENT.test(namespace) || !SEGMENT.test(serviceAccount)) return undefined;
  if (namespace === '.' || namespace === '..' || serviceAccount === '.' || serviceAccount === '..')
    return undefined;
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
