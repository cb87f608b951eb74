/**
 * The `--upstream` flag of `weft sidecar`: a local bind for a Service's TCP port, Consul-style,
 * sent in the discovery Hello (`tcpUpstreams`, discovery.proto `TcpUpstream`).
 *
 * Syntax: `service[.namespace]:port=localPort`, e.g. `store-db:6379=16379` (the app then connects
 * to 127.0.0.1:16379) or `store-db.data:6379=16379` for a Service in namespace `data`.
 */

/** One parsed bind. */
export interface TcpUpstreamFlag {
  readonly service: string;
  /** Absent: the sidecar's own namespace. */
  readonly namespace?: string;
  readonly port: number;
  readonly localPort: number;
}

const SPEC = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)(?:\.([a-z0-9]([-a-z0-9]*[a-z0-9])?))?:(\d{1,5})=(\d{1,5})$/;

/**
 * Parses `service[.namespace]:port=localPort`.
 * @throws Error naming the value and the expected form when it does not parse or a port is not 1..65535.
 */
export function parseTcpUpstream(value: string): TcpUpstreamFlag {
  const m = SPEC.exec(value.trim());
  if (m === null) {
    throw new Error(`"${value}" is not service[.namespace]:port=localPort (e.g. store-db:6379=16379)`);
  }
  const port = Number(m[5]);
  const localPort = Number(m[6]);
  for (const [name, p] of [
    ['port', port],
    ['localPort', localPort],
  ] as const) {
    if (p < 1 || p > 65535) throw new Error(`"${value}": ${name} must be 1..65535`);
  }
  return { service: m[1] as string, ...(m[3] !== undefined && { namespace: m[3] }), port, localPort };
}
