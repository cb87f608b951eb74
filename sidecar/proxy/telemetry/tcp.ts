/**
 * TCP connection telemetry through `diagnostics_channel` `weft:tcp` (metrics subscribe, see
 * tcp-metrics.ts). One `TcpConnectionRecord` per proxied connection (TCP proxy listener, inbound
 * `weft-tcp` connection); it publishes:
 * - `open` once, when the connection's labels are known: when it is spliced to its upstream, or
 *   right before `close` when it never was (refused, connect failure), so that opened and closed
 *   connections carry the same labels;
 * - `bytes` with the bytes moved since the last report, every `TCP_REPORT_INTERVAL_MS` while the
 *   connection is open (one shared unref'd timer for all connections, as Istio reports long-lived
 *   TCP connections periodically), and at close;
 * - `close` once, with the connection's `flags` (why it failed, '' when it did not).
 * Messages are built only when someone listens.
 */
import diagnostics from 'node:diagnostics_channel';
import type { ErrorKind } from '../errors.ts';

export const tcpChannel = diagnostics.channel('weft:tcp');

/** How often the bytes of open connections are reported (ms). */
export const TCP_REPORT_INTERVAL_MS = 5000;

/** What a connection's counters read from: the splice once one runs. */
export interface ByteCounts {
  readonly receivedBytes: number;
  readonly sentBytes: number;
}

/** One `weft:tcp` message. Byte fields are deltas since the previous message of the connection. */
export interface TcpEvent {
  readonly event: 'open' | 'bytes' | 'close';
  readonly connection: TcpConnectionRecord;
  readonly receivedBytes: number;
  readonly sentBytes: number;
}

const open = new Set<TcpConnectionRecord>();
let reporter: NodeJS.Timeout | undefined;

function reportAll(): void {
  for (const c of open) c.report();
}

/** A proxied TCP connection as telemetry sees it; the labels' inputs are set by the handler. */
export class TcpConnectionRecord {
  /** The listener that accepted the connection. */
  readonly listener: string;
  /** `source` (outbound TCP proxy listener) or `destination` (inbound mTLS listener). */
  readonly reporter: 'source' | 'destination';
  /** The upstream cluster (source side); '' at the destination. */
  cluster = '';
  /** The downstream peer's SPIFFE ID (destination side), '' when unknown. */
  sourcePrincipal = '';
  /** The SPIFFE ID the upstream endpoint presented (source side, mTLS), '' when unknown. */
  destinationPrincipal = '';
  securityPolicy: 'mutual_tls' | 'none' | 'unknown' = 'unknown';
  /** Why the connection failed or was refused; '' when it did not. */
  flags: ErrorKind | '' = '';
  #counts: ByteCounts | undefined;
  #received = 0;
  #sent = 0;
  #closed = false;
  #announced = false;

  constructor(listener: string, reporter: 'source' | 'destination') {
    this.listener = listener;
    this.reporter = reporter;
  }

  /** The connection was accepted: it joins the periodic byte reports. */
  opened(): void {
    open.add(this);
    if (reporter === undefined) {
      reporter = setInterval(reportAll, TCP_REPORT_INTERVAL_MS);
      reporter.unref();
    }
  }

  /** The connection is spliced: publishes `open` (labels are final now); bytes come from `counts`. */
  countFrom(counts: ByteCounts): void {
    this.#counts = counts;
    this.#announce();
  }

  #announce(): void {
    if (this.#announced) return;
    this.#announced = true;
    if (tcpChannel.hasSubscribers) {
      tcpChannel.publish({
        event: 'open',
        connection: this,
        receivedBytes: 0,
        sentBytes: 0,
      } satisfies TcpEvent);
    }
  }

  /** Publishes the bytes moved since the last report, if any. */
  report(): void {
    const c = this.#counts;
    if (c === undefined) return;
    const received = c.receivedBytes - this.#received;
    const sent = c.sentBytes - this.#sent;
    if (received === 0 && sent === 0) return;
    this.#received = c.receivedBytes;
    this.#sent = c.sentBytes;
    if (tcpChannel.hasSubscribers) {
      tcpChannel.publish({
        event: 'bytes',
        connection: this,
        receivedBytes: received,
        sentBytes: sent,
      } satisfies TcpEvent);
    }
  }

  /** Reports the last bytes and publishes `close` (once). */
  closed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#announce();
    this.report();
    open.delete(this);
    if (open.size === 0 && reporter !== undefined) {
      clearInterval(reporter);
      reporter = undefined;
    }
    if (tcpChannel.hasSubscribers) {
      tcpChannel.publish({
        event: 'close',
        connection: this,
        receivedBytes: 0,
        sentBytes: 0,
      } satisfies TcpEvent);
    }
  }
}
