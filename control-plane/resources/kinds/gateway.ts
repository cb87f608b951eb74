/**
 * `Gateway` (gateway.networking.k8s.io/v1): schema check by `@kubernetes-models/gateway-api`,
 * unknown fields, CRD defaults, then the CEL rules of apis/v1/gateway_types.go:
 * - listener names unique; port + protocol + hostname unique across listeners;
 * - no `tls` for HTTP, TCP and UDP listeners; HTTPS and TLS listeners need `tls` (documented as
 *   required); HTTPS terminates TLS; no `hostname` for TCP and UDP;
 * - a Terminate listener names certificateRefs or options;
 * - IPAddress addresses are IPs, Hostname addresses are DNS names, values unique per type.
 * Defaults: listener allowedRoutes `{namespaces: {from: Same}}`, route kind group
 * gateway.networking.k8s.io, tls mode Terminate, certificateRef group "" / kind Secret, address
 * type IPAddress.
 */
import { isIP } from 'node:net';
import { Gateway } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway';
import type { IGatewaySpec } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GatewaySpec';
import type { IListener } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Listener';
import { checkGatewayApiSpec, type FieldTree } from '../gateway-api.ts';
import type { GatewaySpec, Listener } from '../gateway-types.ts';
import { isDnsSubdomain } from '../names.ts';
import { type Issues, joinPath } from '../schema.ts';
import type { KindHandler } from './kind.ts';
import { GATEWAY_GROUP } from './route-common.ts';

const objectRefTree = { group: true, kind: true, name: true, namespace: true } as const;
const selectorTree = {
  matchLabels: 'map',
  matchExpressions: { key: true, operator: true, values: true },
} as const;
const namespacesTree = { from: true, selector: selectorTree } as const;
const validationTree = { caCertificateRefs: objectRefTree, mode: true } as const;

/** Every field of GatewaySpec the model knows. */
export const gatewaySpecTree = {
  gatewayClassName: true,
  listeners: {
    name: true,
    hostname: true,
    port: true,
    protocol: true,
    tls: { mode: true, certificateRefs: objectRefTree, options: 'map' },
    allowedRoutes: { namespaces: namespacesTree, kinds: { group: true, kind: true } },
  },
  addresses: { type: true, value: true },
  infrastructure: {
    labels: 'map',
    annotations: 'map',
    parametersRef: { group: true, kind: true, name: true },
  },
  allowedListeners: { namespaces: namespacesTree },
  tls: {
    backend: { clientCertificateRef: objectRefTree },
    frontend: {
      default: { validation: validationTree },
      perPort: { port: true, tls: { validation: validationTree } },
    },
  },
  defaultScope: true,
} as const satisfies FieldTree<IGatewaySpec>;

function defaultListener(l: Readonly<IListener>): Listener {
  const out: Record<string, unknown> = { ...l };
  const routes = l.allowedRoutes ?? {};
  const allowed: Record<string, unknown> = {
    ...routes,
    namespaces: { ...routes.namespaces, from: routes.namespaces?.from ?? 'Same' },
  };
  if (routes.kinds) allowed.kinds = routes.kinds.map((k) => ({ ...k, group: k.group ?? GATEWAY_GROUP }));
  out.allowedRoutes = allowed;
  if (l.tls) {
    const tls: Record<string, unknown> = { ...l.tls, mode: l.tls.mode ?? 'Terminate' };
    if (l.tls.certificateRefs)
      tls.certificateRefs = l.tls.certificateRefs.map((c) => ({
        ...c,
        group: c.group ?? '',
        kind: c.kind ?? 'Secret',
      }));
    out.tls = tls;
  }
  return out as unknown as Listener;
}

export function defaultGatewaySpec(s: Readonly<IGatewaySpec>): GatewaySpec {
  const out: Record<string, unknown> = { ...s, listeners: s.listeners.map(defaultListener) };
  if (s.addresses) out.addresses = s.addresses.map((a) => ({ ...a, type: a.type ?? 'IPAddress' }));
  return out as unknown as GatewaySpec;
}

/** Gateway API CEL rules over a defaulted spec. */
export function checkGatewayRules(spec: GatewaySpec, issues: Issues): void {
  const names = new Map<string, number>();
  const bindings = new Map<string, number>();
  spec.listeners.forEach((l, i) => {
    const path = joinPath('spec.listeners', i);
    const first = names.get(l.name);
    if (first === undefined) names.set(l.name, i);
    else
      issues.add(
        joinPath(path, 'name'),
        `duplicate listener name ${JSON.stringify(l.name)} (also at spec.listeners[${first}])`,
      );
    const binding = `${l.port}/${l.protocol}/${l.hostname ?? ''}`;
    const same = bindings.get(binding);
    if (same === undefined) bindings.set(binding, i);
    else
      issues.add(
        path,
        `port, protocol and hostname must be unique per listener (same as spec.listeners[${same}])`,
      );
    if (['HTTP', 'TCP', 'UDP'].includes(l.protocol) && l.tls !== undefined) {
      issues.add(joinPath(path, 'tls'), `must not be set for protocol ${l.protocol}`);
    }
    if (['HTTPS', 'TLS'].includes(l.protocol) && l.tls === undefined)
      issues.add(joinPath(path, 'tls'), `is required for protocol ${l.protocol}`);
    if (l.protocol === 'HTTPS' && l.tls !== undefined && l.tls.mode !== 'Terminate') {
      issues.add(
        joinPath(joinPath(path, 'tls'), 'mode'),
        `must be Terminate for protocol HTTPS (got ${l.tls.mode})`,
      );
    }
    if (['TCP', 'UDP'].includes(l.protocol) && l.hostname !== undefined) {
      issues.add(joinPath(path, 'hostname'), `must not be set for protocol ${l.protocol}`);
    }
    const tls = l.tls;
    if (
      tls?.mode === 'Terminate' &&
      (tls.certificateRefs ?? []).length === 0 &&
      Object.keys(tls.options ?? {}).length === 0
    ) {
      issues.add(joinPath(path, 'tls'), 'certificateRefs or options must be set when mode is Terminate');
    }
  });
  const seen = new Map<string, number>();
  (spec.addresses ?? []).forEach((a, i) => {
    const path = joinPath(joinPath('spec.addresses', i), 'value');
    if (a.value === undefined) return;
    if (a.type === 'IPAddress' && isIP(a.value) === 0)
      issues.add(path, `must be an IP address for type IPAddress (got ${JSON.stringify(a.value)})`);
    if (a.type === 'Hostname' && !isDnsSubdomain(a.value))
      issues.add(path, `must be a DNS name for type Hostname (got ${JSON.stringify(a.value)})`);
    const key = `${a.type}/${a.value}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, i);
    else issues.add(path, `duplicate ${a.type} address ${a.value} (also at spec.addresses[${first}])`);
  });
}

export const gateway: KindHandler = {
  check(spec, ctx, issues) {
    const before = issues.count;
    if (!checkGatewayApiSpec(Gateway, gatewaySpecTree, spec, ctx, issues)) return undefined;
    const out = defaultGatewaySpec(spec as IGatewaySpec);
    checkGatewayRules(out, issues);
    return issues.count > before ? undefined : out;
  },
};
