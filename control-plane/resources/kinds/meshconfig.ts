/**
 * `MeshConfig` (weft.dev/v1alpha1, cluster-scoped, exactly one, named `default`): identity
 * settings for the whole mesh.
 *
 * ```yaml
 * spec:
 *   trustDomain: cluster.local      # SPIFFE trust domain, a DNS name; default cluster.local
 *   mtls: {mode: STRICT}            # STRICT (mTLS only) | PERMISSIVE (also plaintext); default STRICT
 *   certificateTtl: 24h             # workload certificate lifetime, 1h..720h; default 24h
 * ```
 * Names after Istio's MeshConfig / PeerAuthentication. The name rule lives in validate.ts (it is
 * about metadata).
 */
import { dnsSubdomain } from '../names.ts';
import { duration, enumOf, obj, type Schema, withDefault } from '../schema.ts';
import type { MeshConfigSpec } from '../types.ts';
import type { KindHandler } from './kind.ts';

export const meshConfigSpecSchema: Schema<MeshConfigSpec> = obj({
  trustDomain: withDefault(dnsSubdomain, 'cluster.local'),
  mtls: withDefault(obj({ mode: withDefault(enumOf('STRICT', 'PERMISSIVE'), 'STRICT') }), { mode: 'STRICT' }),
  certificateTtl: withDefault(duration({ min: '1h', max: '720h' }), '24h'),
});

export const meshConfig: KindHandler = {
  check: (spec, _ctx, issues) => meshConfigSpecSchema.check(spec, 'spec', issues),
};
