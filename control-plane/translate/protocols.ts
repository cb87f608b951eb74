/**
 * Upstream protocols of a sidecar's clusters (`Cluster.protocol`, issue 6), from the Service ports'
 * `appProtocol` (http | http2 | grpc | tcp; default http):
 * - clusters to other sidecars over mTLS are HTTP2: the connection negotiates h2 by ALPN and carries
 *   many requests at once; the peer's inbound speaks to its app in the app's own protocol, so an
 *   HTTP/1.1 app still sees HTTP/1.1 at both ends. In plain text (no mesh CA) a cluster is HTTP2
 *   (h2c with prior knowledge, which the peer's listener detects) only for `http2`/`grpc` ports;
 * - the inbound cluster (`inbound|<appPort>`) is HTTP2 (h2c) when the proxy's own Service port is
 *   `http2` or `grpc`, HTTP/1.1 otherwise.
 * HTTP/1.1 clusters leave the field unset (its default), so their config is unchanged.
 *
 * Pure: returns new cluster objects where the protocol is set.
 */
import type { Cluster } from '../../sidecar/proxy/config/types.ts';
import type { Resource } from '../resources/types.ts';
import type { OutboundClusterRef } from './clusters.ts';
import { inboundClusterName, indexServices, type MeshService, serviceKey } from './services.ts';
import type { ProxyIdentity } from './types.ts';

/** True when a Service port with `appProtocol` speaks HTTP/2 (`http2`, `grpc`). */
export function speaksHttp2(appProtocol: string | undefined): boolean {
  return appProtocol === 'http2' || appProtocol === 'grpc';
}

function portProtocol(service: MeshService | undefined, port: number | undefined): string | undefined {
  if (service === undefined || port === undefined) return undefined;
  return service.ports.find((p) => p.port === port)?.appProtocol;
}

/** `clusters` with `protocol: HTTP2` set where the rules in the module header say so. */
export function withUpstreamProtocols(
  clusters: readonly Cluster[],
  refs: readonly OutboundClusterRef[],
  resources: readonly Resource[],
  proxy: ProxyIdentity,
  mtls: boolean,
): Cluster[] {
  const http2 = new Set<string>();
  for (const ref of refs) {
    if (mtls || speaksHttp2(portProtocol(ref.service, ref.port))) http2.add(ref.name);
  }
  const own = indexServices(resources).byKey.get(serviceKey(proxy.namespace, proxy.service));
  if (speaksHttp2(portProtocol(own, own?.routedPort))) http2.add(inboundClusterName(proxy.appPort));
  return clusters.map((c) => (http2.has(c.name) ? { ...c, protocol: 'HTTP2' } : c));
}
