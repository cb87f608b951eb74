/**
 * Opaque TCP between sidecars: the wire convention, the defaults of `TcpProxy` and `InboundTcp`
 * (proto/weft/v1/config.proto) and their consistency checks.
 *
 * The convention (Istio encodes the port in SNI the same way): the outbound sidecar opens an mTLS
 * connection to the peer sidecar's inbound listener offering ALPN `weft-tcp` only, with SNI
 * `<port>.tcp.weft.internal`, where `<port>` is the destination app port. Nothing else precedes
 * the application's bytes. The inbound listener hands connections that negotiated `weft-tcp` to
 * the TCP handler (tcp/inbound.ts), which accepts only ports its `InboundTcp` lists. `weft.internal`
 * is not a resolvable name; SNI here only labels the stream (RFC 6066 §3 host_name).
 */
import type { InboundTcp, Listener, TcpProxy } from '../config/types.ts';

/** ALPN protocol id of opaque TCP between sidecars (RFC 7301). */
export const TCP_ALPN = 'weft-tcp';
/** Default idle timeout of TCP proxying (ms): 1 h, Envoy's tcp_proxy default. */
export const DEFAULT_TCP_IDLE_TIMEOUT_MS = 3_600_000;
/** Default cap on a TCP listener's concurrent downstream connections. */
export const DEFAULT_TCP_MAX_CONNECTIONS = 10_000;

const SNI_SUFFIX = '.tcp.weft.internal';
const SNI = /^([1-9][0-9]{0,4})\.tcp\.weft\.internal$/;

/** SNI naming app `port` of the peer: `6379.tcp.weft.internal`. */
export function tcpServerName(port: number): string {
  return `${port}${SNI_SUFFIX}`;
}

/** The app port named by a `weft-tcp` connection's SNI, or undefined when it names none. */
export function portFromServerName(servername: string | false | null | undefined): number | undefined {
  if (typeof servername !== 'string') return undefined;
  const m = SNI.exec(servername);
  if (m === null) return undefined;
  const port = Number(m[1]);
  return port <= 65535 ? port : undefined;
}

/** `TcpProxy` with defaults applied. */
export interface TcpProxySettings {
  readonly cluster: string;
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  /** 0: none (plain clusters connect to the endpoint itself). */
  readonly destinationPort: number;
}

export function tcpProxySettings(t: TcpProxy): TcpProxySettings {
  return {
    cluster: t.cluster,
    idleTimeoutMs: t.idleTimeoutMs || DEFAULT_TCP_IDLE_TIMEOUT_MS,
    maxConnections: t.maxConnections || DEFAULT_TCP_MAX_CONNECTIONS,
    destinationPort: t.destinationPort ?? 0,
  };
}

/** `InboundTcp` with defaults applied. */
export interface InboundTcpSettings {
  readonly ports: ReadonlySet<number>;
  readonly idleTimeoutMs: number;
}

export function inboundTcpSettings(t: InboundTcp | undefined): InboundTcpSettings {
  return {
    ports: new Set(t?.ports ?? []),
    idleTimeoutMs: t?.idleTimeoutMs || DEFAULT_TCP_IDLE_TIMEOUT_MS,
  };
}

function badPort(p: number | undefined): boolean {
  return p !== undefined && (!Number.isInteger(p) || p < 0 || p > 65535);
}

/**
 * Problems of a TCP listener (`tcpProxy` set) and its `inboundTcp`, each naming the listener (`id`)
 * and the field: missing or unknown cluster, ports out of range.
 */
export function checkTcpListener(l: Listener, id: string, clusters: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  const t = l.tcpProxy;
  if (t !== undefined) {
    if (!t.cluster) problems.push(`${id}: tcpProxy.cluster: must not be empty`);
    else if (!clusters.has(t.cluster))
      problems.push(`${id}: tcpProxy.cluster: no Cluster named "${t.cluster}"`);
    if (badPort(t.destinationPort)) problems.push(`${id}: tcpProxy.destinationPort: must be 0..65535`);
    if (l.inboundTcp !== undefined) problems.push(`${id}: inboundTcp: not allowed on a tcpProxy listener`);
  }
  return problems;
}

/** Problems of an HTTP listener's `inboundTcp` (ports 1..65535). */
export function checkInboundTcp(l: Listener, id: string): string[] {
  const problems: string[] = [];
  for (const [i, p] of (l.inboundTcp?.ports ?? []).entries()) {
    if (!Number.isInteger(p) || p < 1 || p > 65535)
      problems.push(`${id}: inboundTcp.ports[${i}]: must be 1..65535`);
  }
  return problems;
}
