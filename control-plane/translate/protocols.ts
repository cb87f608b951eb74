/**
 * Upstream protocols of a sidecar's clusters (`Cluster.protocol`, proto/weft/v1/config.proto) from
 * the Service ports' `appProtocol` (DESIGN §2: http | http2 | grpc | tcp):
 * - `outbound|<port>|<name>.<ns>`: HTTP2 when that Service port is `grpc` or `http2` (sidecars
 *   then talk h2 to each other, by ALPN over mTLS), else the proxy default (HTTP/1.1);
 * - `inbound|<appPort>`: HTTP2 (h2c to the app) when the port the sidecar's own Service routes (its
 *   first non-tcp port, services.ts) is `grpc` or `http2`.
 * HTTP/1.1 stays implicit (the field left out), so configs without HTTP/2 ports are unchanged.
 *
 * Invariants: pure; only the `protocol` field of the given clusters changes; order is kept.
 */
import type { Cluster } from '../../sidecar/proxy/config/types.ts';
import type { OutboundClusterRef } from './clusters.ts';
import { inboundClusterName, type ServiceIndex, serviceKey } from './services.ts';
import type { ProxyIdentity } from './types.ts';

const HTTP2_APP_PROTOCOLS = new Set(['grpc', 'http2']);

function isHttp2(appProtocol: string | undefined): boolean {
  return appProtocol !== undefined && HTTP2_APP_PROTOCOLS.has(appProtocol);
}

/** `clusters` with `protocol: HTTP2` where the Service port behind them speaks HTTP/2 (see the header). */
export function withUpstreamProtocols(
  clusters: readonly Cluster[],
  used: readonly OutboundClusterRef[],
  services: ServiceIndex,
  proxy: Pick<ProxyIdentity, 'service' | 'namespace' | 'appPort'>,
): Cluster[] {
  const http2 = new Set<string>();
  for (const ref of used) {
    if (isHttp2(ref.service.ports.find((p) => p.port === ref.port)?.appProtocol)) http2.add(ref.name);
  }
  const own = services.byKey.get(serviceKey(proxy.namespace, proxy.service));
  if (own !== undefined && isHttp2(own.ports.find((p) => p.port === own.routedPort)?.appProtocol)) {
    http2.add(inboundClusterName(proxy.appPort));
  }
  return clusters.map((c) => (http2.has(c.name) ? { ...c, protocol: 'HTTP2' } : c));
}
