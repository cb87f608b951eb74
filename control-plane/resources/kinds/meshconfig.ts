/**
 * `MeshConfig` (weft.dev/v1alpha1, cluster-scoped, exactly one, named `default`): identity
 * settings for the whole mesh.
 *
 * ```yaml
 * spec:
 *   trustDomain: cluster.local      # SPIFFE trust domain, a DNS name; default cluster.local
 *   mtls: {mode: STRICT}            # STRICT (mTLS only) | PERMISSIVE (also plaintext); default STRICT
 *   certificateTtl: 24h             # workload certificate lifetime, 1h..720h; default 24h
 *   rateLimit:                      # optional: the store of Global RateLimitPolicies
 *     redis: {url: redis://10.0.0.5:6379}   # redis:// or rediss://
 *     failMode: Open                # Open (requests pass; default) | Closed (503) while Redis is down
 *     timeout: 100ms                # per command, 10ms..10s; default 100ms
 * ```
 * Names after Istio's MeshConfig / PeerAuthentication. The name rule lives in validate.ts (it is
 * about metadata).
 */
import { dnsSubdomain } from '../names.ts';
import { duration, enumOf, obj, optional, type Schema, str, withDefault } from '../schema.ts';
import type { MeshConfigSpec } from '../types.ts';
import type { KindHandler } from './kind.ts';

export const meshConfigSpecSchema: Schema<MeshConfigSpec> = obj({
  trustDomain: withDefault(dnsSubdomain, 'cluster.local'),
  mtls: withDefault(obj({ mode: withDefault(enumOf('STRICT', 'PERMISSIVE'), 'STRICT') }), { mode: 'STRICT' }),
  certificateTtl: withDefault(duration({ min: '1h', max: '720h' }), '24h'),
  rateLimit: optional(
    obj({
      redis: obj({
        url: str({
          maxLength: 2048,
          describe: 'a Redis URL such as redis://127.0.0.1:6379',
          rule: (s) => (/^rediss?:\/\/[^\s]+$/.test(s) ? undefined : 'must be a redis:// or rediss:// URL'),
        }),
      }),
      failMode: withDefault(enumOf('Open', 'Closed'), 'Open'),
      timeout: withDefault(duration({ min: '10ms', max: '10s' }), '100ms'),
    }),
  ),
});

export const meshConfig: KindHandler = {
  check: (spec, _ctx, issues) => meshConfigSpecSchema.check(spec, 'spec', issues),
};
