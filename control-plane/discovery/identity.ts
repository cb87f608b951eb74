/**
 * From wire messages to the translator's records: a Hello to a `ProxyIdentity`, a Register to an
 * `EndpointRegistration`, with the defaults the proto documents filled in. Both throw
 * `InvalidMessageError` (the server answers INVALID_ARGUMENT) naming the field and the reason.
 */
import type { TcpUpstreamBind } from '../translate/tcp.ts';
import type { EndpointRegistration, ProxyIdentity } from '../translate/types.ts';
import type { HelloMessage, RegisterMessage } from './proto.ts';

/** Sidecar defaults (DESIGN.md §4). */
export const DEFAULT_OUTBOUND_PORT = 15001;
export const DEFAULT_INBOUND_PORT = 15006;
export const DEFAULT_LISTEN_ADDRESS = '127.0.0.1';
export const DEFAULT_NAMESPACE = 'default';

/** A message the server cannot accept; `message` names the field and the reason. */
export class InvalidMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidMessageError';
  }
}

function port(value: number | undefined, field: string, fallback: number): number {
  const p = value ?? 0;
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new InvalidMessageError(`${field}: must be 0..65535`);
  return p === 0 ? fallback : p;
}

/** The identity a Hello declares. Throws `InvalidMessageError` on a missing id or unknown kind. */
export function identityOf(hello: HelloMessage): ProxyIdentity {
  const proxyId = hello.proxyId ?? '';
  if (proxyId === '') throw new InvalidMessageError('hello.proxyId: must not be empty');
  const kind = hello.kind || 'sidecar';
  if (kind !== 'sidecar' && kind !== 'gateway') {
    throw new InvalidMessageError(`hello.kind: must be "sidecar" or "gateway", got ${JSON.stringify(kind)}`);
  }
  const service = hello.service ?? '';
  return {
    proxyId,
    kind,
    service,
    namespace: hello.namespace || DEFAULT_NAMESPACE,
    workload: hello.workload || service,
    labels: { ...hello.labels },
    outboundPort: port(hello.outboundPort, 'hello.outboundPort', DEFAULT_OUTBOUND_PORT),
    inboundPort: port(hello.inboundPort, 'hello.inboundPort', DEFAULT_INBOUND_PORT),
    appPort: port(hello.appPort, 'hello.appPort', 0),
    listenAddress: hello.listenAddress || DEFAULT_LISTEN_ADDRESS,
    ...(kind === 'gateway' &&
      hello.listenerPorts !== undefined && {
        listenerPorts: listenerPorts(hello.listenerPorts),
      }),
    ...((hello.tcpUpstreams?.length ?? 0) > 0 && { tcpUpstreams: tcpUpstreamsOf(hello) }),
    ...(hello.outboundAddress ? { outboundAddress: hello.outboundAddress } : {}),
  };
}

/** `hello.listenerPorts` checked: every key and value a port 0..65535. */
function listenerPorts(map: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(map)) {
    const from = Number(key);
    if (!Number.isInteger(from) || from < 1 || from > 65535)
      throw new InvalidMessageError(`hello.listenerPorts: key ${JSON.stringify(key)} is not a port 1..65535`);
    if (!Number.isInteger(value) || value < 0 || value > 65535)
      throw new InvalidMessageError(`hello.listenerPorts[${key}]: must be 0..65535`);
    out[String(from)] = value;
  }
  return out;
}

/**
 * The TCP upstream binds of a Hello: service required, port and localPort 1..65535, local ports
 * distinct and not the proxy's outbound or inbound port. Throws `InvalidMessageError`.
 */
function tcpUpstreamsOf(hello: HelloMessage): TcpUpstreamBind[] {
  const taken = new Set([
    port(hello.outboundPort, 'hello.outboundPort', DEFAULT_OUTBOUND_PORT),
    port(hello.inboundPort, 'hello.inboundPort', DEFAULT_INBOUND_PORT),
  ]);
  return (hello.tcpUpstreams ?? []).map((u, i) => {
    const field = `hello.tcpUpstreams[${i}]`;
    if (!u.service) throw new InvalidMessageError(`${field}.service: must not be empty`);
    const p = port(u.port, `${field}.port`, 0);
    const local = port(u.localPort, `${field}.localPort`, 0);
    if (p === 0) throw new InvalidMessageError(`${field}.port: must be 1..65535`);
    if (local === 0) throw new InvalidMessageError(`${field}.localPort: must be 1..65535`);
    if (taken.has(local))
      throw new InvalidMessageError(`${field}.localPort: ${local} is already in use by the proxy`);
    taken.add(local);
    return {
      service: u.service,
      ...(u.namespace ? { namespace: u.namespace } : {}),
      port: p,
      localPort: local,
    };
  });
}

/**
 * The endpoint a Register declares for the proxy `identity`: namespace, address and port
 * default to the identity's namespace, listen address and inbound port; `labels.app` is the
 * service (the Register's, else the identity's); weight defaults to 1. Not draining.
 * Throws `InvalidMessageError` when no service name is known or the port is out of range.
 */
export function registrationOf(register: RegisterMessage, identity: ProxyIdentity): EndpointRegistration {
  const service = register.service || identity.service;
  if (service === '') throw new InvalidMessageError('register.service: must not be empty');
  return {
    proxyId: identity.proxyId,
    namespace: register.namespace || identity.namespace,
    address: register.address || identity.listenAddress,
    port: port(register.port, 'register.port', identity.inboundPort),
    labels: { ...register.labels, app: service },
    weight: register.weight || 1,
    draining: false,
  };
}
