/**
 * TCP metrics (names from issue 8 and DESIGN §6, Istio's `istio_tcp_*` under `weft_`), fed from the
 * `weft:tcp` channel (telemetry/tcp.ts), registered on the proxy's registry:
 * - `weft_tcp_connections_opened_total`, `weft_tcp_connections_closed_total` (counters);
 * - `weft_tcp_received_bytes_total` (bytes read from the downstream), `weft_tcp_sent_bytes_total`
 *   (bytes written to the downstream), reported every 5 s while a connection is open and at close.
 * Labels: the service-graph set that applies to TCP (`TCP_LABELS`): no response code, no route;
 * `response_flags` is `-` or the error kind that ended the connection (UPSTREAM_CONNECT_FAILURE,
 * NO_HEALTHY_UPSTREAM, OVERFLOW, RBAC_DENIED, ...). At the source, `destination_service` is the
 * cluster (as for HTTP) and `destination_principal` the SPIFFE ID the endpoint presented; at the
 * destination, `source_principal` is the peer's SPIFFE ID and `connection_security_policy`
 * `mutual_tls`. Children are cached per label combination.
 */
import { Counter, type Registry } from 'prom-client';
import type { Workload } from './labels.ts';
import { type TcpConnectionRecord, type TcpEvent, tcpChannel } from './tcp.ts';

export const TCP_LABELS = [
  'reporter',
  'source_workload',
  'source_namespace',
  'source_principal',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_workload',
  'destination_namespace',
  'destination_principal',
  'response_flags',
  'connection_security_policy',
] as const;

type TcpLabel = (typeof TCP_LABELS)[number];

interface TcpChildren {
  readonly opened: { inc(): void };
  readonly closed: { inc(): void };
  readonly received: { inc(v: number): void };
  readonly sent: { inc(v: number): void };
}

/** The TCP counters of one proxy process; `close()` unsubscribes. */
export class TcpMetrics {
  readonly #opened: Counter<TcpLabel>;
  readonly #closed: Counter<TcpLabel>;
  readonly #received: Counter<TcpLabel>;
  readonly #sent: Counter<TcpLabel>;
  readonly #workload: Workload;
  readonly #children = new Map<string, TcpChildren>();
  readonly #onEvent = (message: unknown): void => this.#record(message as TcpEvent);

  constructor(registry: Registry, workload: Workload) {
    this.#workload = workload;
    const counter = (name: string, help: string): Counter<TcpLabel> =>
      new Counter({ name, help, labelNames: TCP_LABELS, registers: [registry] });
    this.#opened = counter(
      'weft_tcp_connections_opened_total',
      'TCP connections opened, by source and destination.',
    );
    this.#closed = counter(
      'weft_tcp_connections_closed_total',
      'TCP connections closed, by source, destination and response_flags.',
    );
    this.#received = counter(
      'weft_tcp_received_bytes_total',
      'Bytes received from the downstream of TCP connections (the request direction).',
    );
    this.#sent = counter(
      'weft_tcp_sent_bytes_total',
      'Bytes sent to the downstream of TCP connections (the response direction).',
    );
    tcpChannel.subscribe(this.#onEvent);
  }

  #record(e: TcpEvent): void {
    const c = this.#childrenOf(e.connection);
    if (e.event === 'open') c.opened.inc();
    else if (e.event === 'close') c.closed.inc();
    else {
      if (e.receivedBytes > 0) c.received.inc(e.receivedBytes);
      if (e.sentBytes > 0) c.sent.inc(e.sentBytes);
    }
  }

  #childrenOf(conn: TcpConnectionRecord): TcpChildren {
    const key =
      `${conn.reporter}\0${conn.cluster}\0${conn.sourcePrincipal}\0${conn.destinationPrincipal}` +
      `\0${conn.securityPolicy}\0${conn.flags}`;
    let children = this.#children.get(key);
    if (children === undefined) {
      const labels = this.#labels(conn);
      children = {
        opened: this.#opened.labels(labels),
        closed: this.#closed.labels(labels),
        received: this.#received.labels(labels),
        sent: this.#sent.labels(labels),
      };
      this.#children.set(key, children);
    }
    return children;
  }

  #labels(conn: TcpConnectionRecord): Record<TcpLabel, string> {
    const self = this.#workload;
    const inbound = conn.reporter === 'destination';
    const dest = conn.cluster || 'unknown';
    return {
      reporter: conn.reporter,
      source_workload: inbound ? 'unknown' : self.workload,
      source_namespace: inbound ? 'unknown' : self.namespace,
      source_principal: conn.sourcePrincipal || 'unknown',
      destination_service: inbound ? self.service : dest,
      destination_service_name: inbound ? self.service : dest,
      destination_service_namespace: inbound ? self.namespace : 'unknown',
      destination_workload: inbound ? self.workload : 'unknown',
      destination_namespace: inbound ? self.namespace : 'unknown',
      destination_principal: conn.destinationPrincipal || 'unknown',
      response_flags: conn.flags === '' ? '-' : conn.flags,
      connection_security_policy: conn.securityPolicy,
    };
  }

  close(): void {
    tcpChannel.unsubscribe(this.#onEvent);
  }
}
