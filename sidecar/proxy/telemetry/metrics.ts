/**
 * Request metrics for one proxy process (prom-client, one Registry per process):
 * `weft_requests_total` (counter) and `weft_request_duration_seconds` (histogram, OTel's
 * advised buckets, seconds), labelled with the service-graph set of `labels.ts`, plus the
 * standard process and Node.js metrics. Fed from the `weft:request:end` channel; metric
 * children are resolved once per label combination and cached.
 *
 * mTLS: `source_principal` is the downstream peer's SPIFFE ID (`unknown` without one) and
 * `connection_security_policy` is `mutual_tls` or `none` at the destination (`unknown` at the
 * source, as in Istio: the client side cannot tell). `weft_tls_handshakes_total{side, result}`
 * counts handshakes from the `weft:tls:handshake` channel (side downstream | upstream, result
 * ok | failed), so connection reuse is visible: in steady state it does not grow.
 */
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { RequestContext } from '../http/context.ts';
import { type TlsHandshakeEvent, tlsHandshake } from '../identity.ts';
import { requestEnd } from './channels.ts';
import { REQUEST_LABELS, type RequestLabel, reporterOf, type Workload } from './labels.ts';

export const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

type Labels = Record<RequestLabel, string>;

interface Children {
  readonly requests: { inc(): void };
  readonly duration: { observe(v: number): void };
}

/** The metrics of a proxy process. `close()` unsubscribes from the request channel. */
export class ProxyMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<RequestLabel>;
  readonly #duration: Histogram<RequestLabel>;
  readonly #handshakes: Counter<'side' | 'result'>;
  readonly #children = new Map<string, Children>();
  readonly #workload: Workload;
  readonly #onEnd = (message: unknown): void => this.#record(message as RequestContext);
  readonly #onHandshake = (message: unknown): void => {
    const e = message as TlsHandshakeEvent;
    this.#handshakes.inc({ side: e.side, result: e.ok ? 'ok' : 'failed' });
  };

  constructor(workload: Workload) {
    this.#workload = workload;
    collectDefaultMetrics({ register: this.registry });
    this.#requests = new Counter({
      name: 'weft_requests_total',
      help: 'Requests handled by the proxy, by source, destination and outcome.',
      labelNames: REQUEST_LABELS,
      registers: [this.registry],
    });
    this.#duration = new Histogram({
      name: 'weft_request_duration_seconds',
      help: 'Time from the first request byte to the last response byte, in seconds.',
      labelNames: REQUEST_LABELS,
      buckets: DURATION_BUCKETS_S,
      registers: [this.registry],
    });
    this.#handshakes = new Counter({
      name: 'weft_tls_handshakes_total',
      help: 'mTLS handshakes by side (downstream: a listener accepted; upstream: to an endpoint) and result.',
      labelNames: ['side', 'result'],
      registers: [this.registry],
    });
    requestEnd.subscribe(this.#onEnd);
    tlsHandshake.subscribe(this.#onHandshake);
  }

  #record(ctx: RequestContext): void {
    const key =
      `${ctx.listener.name}\0${ctx.routeName}\0${ctx.clusterName}\0${ctx.status}\0${ctx.flags}` +
      `\0${ctx.sourcePrincipal}\0${ctx.securityPolicy}`;
    let children = this.#children.get(key);
    if (children === undefined) {
      const labels = this.#labels(ctx);
      children = { requests: this.#requests.labels(labels), duration: this.#duration.labels(labels) };
      this.#children.set(key, children);
    }
    children.requests.inc();
    children.duration.observe(ctx.durationMs / 1000);
  }

  #labels(ctx: RequestContext): Labels {
    const reporter = reporterOf(ctx.listener.direction);
    const self = this.#workload;
    const dest = ctx.clusterName || 'unknown';
    const inbound = reporter === 'destination';
    return {
      reporter,
      source_workload: inbound ? 'unknown' : self.workload,
      source_namespace: inbound ? 'unknown' : self.namespace,
      source_principal: ctx.sourcePrincipal || 'unknown',
      destination_service: inbound ? self.service : dest,
      destination_service_name: inbound ? self.service : dest,
      destination_service_namespace: inbound ? self.namespace : 'unknown',
      destination_workload: inbound ? self.workload : 'unknown',
      destination_namespace: inbound ? self.namespace : 'unknown',
      destination_principal: 'unknown',
      request_protocol: 'http',
      response_code: String(ctx.status),
      grpc_response_status: '',
      response_flags: ctx.flags === '' ? '-' : ctx.flags,
      connection_security_policy: reporter === 'source' ? 'unknown' : ctx.securityPolicy,
      route_name: reporter === 'source' ? '' : ctx.routeName,
    };
  }

  /** Prometheus text exposition of every metric. */
  async expose(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    requestEnd.unsubscribe(this.#onEnd);
    tlsHandshake.unsubscribe(this.#onHandshake);
  }
}
