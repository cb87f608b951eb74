/**
 * Transparent traffic capture for a pod (or any network namespace): the iptables `nat` rules, in
 * `iptables-restore` format, that send the app's outbound TCP to the sidecar's outbound listener
 * and inbound TCP to its inbound listener, as Istio's init container does
 * (https://istio.io/latest/docs/ops/deployment/architecture/ — `istio-iptables`).
 *
 * - `PREROUTING` → `WEFT_INBOUND`: TCP arriving for this namespace is `REDIRECT`ed to the inbound
 *   port (15006), except to the sidecar's own ports (inbound, admin) and `excludeInboundPorts`.
 * - `OUTPUT` → `WEFT_OUTPUT`: TCP the namespace sends is `REDIRECT`ed to the outbound port
 *   (15001), except the sidecar's own (by UID and GID `proxyUid`: no loop), traffic to loopback
 *   (the inbound listener forwards to 127.0.0.1:<app port>) and `excludeOutboundPorts`.
 * The redirected connection keeps the HTTP `Host` the app sent, so the outbound listener routes
 * it by name as it routes `Host:`-addressed requests.
 *
 * Invariants: idempotent to apply (`--noflush` is not used: the `nat` table is replaced as a
 * whole, chains are declared before use); pure (no I/O).
 */

export interface CaptureOptions {
  readonly inboundPort: number;
  readonly outboundPort: number;
  readonly adminPort: number;
  /** UID (and GID) the sidecar runs as; its traffic is never captured. */
  readonly proxyUid: number;
  readonly excludeInboundPorts?: readonly number[];
  readonly excludeOutboundPorts?: readonly number[];
}

function checkPort(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new RangeError(`${name}: must be a port 1..65535, got ${n}`);
}

/**
 * The `nat` table for `iptables-restore` (text ending in `COMMIT\n`).
 * @throws RangeError for a port or UID out of range.
 */
export function captureRules(o: CaptureOptions): string {
  checkPort('inboundPort', o.inboundPort);
  checkPort('outboundPort', o.outboundPort);
  checkPort('adminPort', o.adminPort);
  if (!Number.isInteger(o.proxyUid) || o.proxyUid < 0)
    throw new RangeError(`proxyUid: must be a UID, got ${o.proxyUid}`);
  const inboundExcluded = [...new Set([o.inboundPort, o.adminPort, ...(o.excludeInboundPorts ?? [])])];
  const outboundExcluded = [...new Set(o.excludeOutboundPorts ?? [])];
  for (const p of [...inboundExcluded, ...outboundExcluded]) checkPort('excluded port', p);
  return [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':WEFT_INBOUND - [0:0]',
    ':WEFT_OUTPUT - [0:0]',
    '-A PREROUTING -p tcp -j WEFT_INBOUND',
    ...inboundExcluded.map((p) => `-A WEFT_INBOUND -p tcp --dport ${p} -j RETURN`),
    `-A WEFT_INBOUND -p tcp -j REDIRECT --to-ports ${o.inboundPort}`,
    '-A OUTPUT -p tcp -j WEFT_OUTPUT',
    `-A WEFT_OUTPUT -m owner --uid-owner ${o.proxyUid} -j RETURN`,
    `-A WEFT_OUTPUT -m owner --gid-owner ${o.proxyUid} -j RETURN`,
    '-A WEFT_OUTPUT -d 127.0.0.0/8 -j RETURN',
    ...outboundExcluded.map((p) => `-A WEFT_OUTPUT -p tcp --dport ${p} -j RETURN`),
    `-A WEFT_OUTPUT -p tcp -j REDIRECT --to-ports ${o.outboundPort}`,
    'COMMIT',
    '',
  ].join('\n');
}
