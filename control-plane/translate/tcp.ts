/**
 * TCP services (Service ports with `appProtocol: tcp`): opaque byte streams over mTLS between
 * sidecars, no protocol sniffing. Two sides:
 * - outbound, Consul-style: each TCP upstream bind the sidecar declares in its Hello
 *   (`--upstream store-db:6379=16379`) becomes a TCP proxy listener `outbound-tcp|<localPort>` on
 *   the proxy's listen address, whose cluster is the Service port's `outbound|<port>|<name>.<ns>`
 *   (endpoints: the peers' inbound listeners, with their SPIFFE IDs; clusters.ts) and whose
 *   `destinationPort` is the Service port (sent to the peer in SNI, sidecar/proxy/tcp/config.ts);
 * - inbound: the inbound listener's `inboundTcp.ports` are the TCP ports of the Services that
 *   select this workload (its labels plus `app: <service>`, in its namespace); the peer pipes them
 *   to 127.0.0.1:<port>, so the app listens on the Service port itself.
 * A BackendTrafficPolicy's `timeout.tcp.idleTimeout` sets the listener's idle timeout (default 1 h).
 * TCP needs mesh mTLS (the port travels in SNI): without a trust domain nothing is emitted. A bind
 * whose Service or TCP port does not exist (yet) gets no listener until it does.
 *
 * Invariants: deterministic (listeners sorted by local port, ports ascending).
 */
import type { Listener } from '../../sidecar/proxy/config/types.ts';
import { parseDurationMs } from '../resources/duration.ts';
import type { Resource } from '../resources/types.ts';
import type { OutboundClusterRef } from './clusters.ts';
import { compareResources } from './order.ts';
import { outboundClusterName, type ServiceIndex, selects, serviceKey } from './services.ts';
import { type BackendTrafficPolicySpecView, isServiceRef, namespaceOf } from './specs.ts';
import type { ProxyIdentity } from './types.ts';

/** A TCP upstream bind from the Hello: the Service port and the local port the app connects to. */
export interface TcpUpstreamBind {
  readonly service: string;
  /** '' or absent: the proxy's namespace. */
  readonly namespace?: string;
  readonly port: number;
  readonly localPort: number;
}

export interface TcpTranslation {
  /** One TCP proxy listener per bind that resolves. */
  readonly listeners: Listener[];
  /** The clusters those listeners use. */
  readonly refs: OutboundClusterRef[];
  /** The inbound listener's TCP ports (empty: no `inboundTcp`). */
  readonly inboundPorts: number[];
}

/** Name of the TCP proxy listener for a bind. */
export function tcpListenerName(localPort: number): string {
  return `outbound-tcp|${localPort}`;
}

/** The TCP side of `proxy`'s config; empty without mesh mTLS (`trustDomain`). */
/**
 * `timeout.tcp.idleTimeout` (ms) per Service key, from the oldest BackendTrafficPolicy targeting the
 * Service that sets it (Gateway API policy attachment order).
 */
export function tcpIdleTimeouts(resources: readonly Resource[]): Map<string, number> {
  const out = new Map<string, number>();
  const policies = resources
    .filter((r): r is Resource & Resource<BackendTrafficPolicySpecView> => r.kind === 'BackendTrafficPolicy')
    .sort(compareResources);
  for (const p of policies) {
    const idle = p.spec.timeout?.tcp?.idleTimeout;
    if (idle === undefined) continue;
    const ms = parseDurationMs(idle);
    for (const ref of p.spec.targetRefs ?? []) {
      if (!isServiceRef(ref, 'Service')) continue;
      const key = serviceKey(namespaceOf(p), ref.name);
      if (!out.has(key) && ms > 0) out.set(key, ms);
    }
  }
  return out;
}

export function translateTcp(
  services: ServiceIndex,
  proxy: ProxyIdentity,
  trustDomain: string | undefined,
  idleTimeouts: ReadonlyMap<string, number> = new Map(),
): TcpTranslation {
  const out: TcpTranslation = { listeners: [], refs: [], inboundPorts: [] };
  if (trustDomain === undefined) return out;
  const binds = [...(proxy.tcpUpstreams ?? [])].sort((a, b) => a.localPort - b.localPort);
  const refNames = new Set<string>();
  for (const b of binds) {
    const namespace = b.namespace || proxy.namespace;
    const service = services.byKey.get(serviceKey(namespace, b.service));
    const port = service?.ports.find((p) => p.port === b.port && p.appProtocol === 'tcp');
    if (service === undefined || port === undefined) continue;
    const cluster = outboundClusterName(b.port, service.name, service.namespace);
    const idleTimeoutMs = idleTimeouts.get(service.key);
    out.listeners.push({
      name: tcpListenerName(b.localPort),
      address: proxy.listenAddress,
      port: b.localPort,
      direction: 'OUTBOUND',
      routeConfigName: '',
      tcpProxy: { cluster, destinationPort: b.port, ...(idleTimeoutMs !== undefined && { idleTimeoutMs }) },
    });
    if (!refNames.has(cluster)) {
      refNames.add(cluster);
      out.refs.push({ name: cluster, service, port: b.port });
    }
  }
  const labels = { ...proxy.labels, app: proxy.service };
  const ports = new Set<number>();
  for (const svc of services.list) {
    if (svc.namespace !== proxy.namespace || !selects(svc.selector, labels)) continue;
    for (const p of svc.ports) if (p.appProtocol === 'tcp') ports.add(p.port);
  }
  out.inboundPorts.push(...[...ports].sort((a, b) => a - b));
  return out;
}
