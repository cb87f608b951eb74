/**
 * `Service` (weft.dev/v1alpha1): a named set of workloads and the ports clients address.
 *
 * ```yaml
 * spec:
 *   selector: {app: reviews}        # optional; default {app: <metadata.name>}
 *   ports:                          # 1..64 ports, numbers and names unique
 *   - {name: http, port: 8080, appProtocol: http}   # appProtocol http | http2 | grpc | tcp, default http
 * ```
 * Label keys and values follow Kubernetes label syntax; port names are DNS-1123 labels.
 */
import { dnsLabel, labelValue, qualifiedName } from '../names.ts';
import { enumOf, int, list, map, obj, optional, type Schema, withDefault } from '../schema.ts';
import type { ServicePort, ServiceSpec } from '../types.ts';
import type { KindHandler } from './kind.ts';

export const servicePortSchema: Schema<ServicePort> = obj({
  name: optional(dnsLabel),
  port: int(1, 65535),
  appProtocol: withDefault(enumOf('http', 'http2', 'grpc', 'tcp'), 'http'),
});

export const serviceSpecSchema: Schema<ServiceSpec> = obj({
  selector: optional(map(labelValue, qualifiedName, 64)),
  ports: list(servicePortSchema, {
    minItems: 1,
    maxItems: 64,
    uniqueBy: [
      { key: (p) => String(p.port), what: 'port', field: 'port' },
      { key: (p) => p.name, what: 'port name', field: 'name' },
    ],
  }),
});

export const service: KindHandler = {
  check(spec, ctx, issues) {
    const out = serviceSpecSchema.check(spec, 'spec', issues);
    if (out === undefined) return undefined;
    return { ...out, selector: out.selector ?? { app: ctx.name } } satisfies ServiceSpec;
  },
};
