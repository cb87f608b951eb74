/**
 * Request metrics for one proxy process (prom-client, one Registry per process):
 * `weft_requests_total` (counter), `weft_request_duration_seconds` (histogram, OTel's
 * advised buckets, seconds), `weft_request_bytes` and `weft_response_bytes` (histograms, bytes,
 * powers of ten 1 B … 100 MB), labelled with the service-graph set of `labels.ts`, plus the
 * standard process and Node.js metrics. Fed from the `weft:request:end` channel; metric
 * children are resolved once per label combination and cached. docs/metrics.md is the reference.
 *
 * Bytes: the response size is the body written downstream (by the forwarder, or a local reply);
 * the request size is the declared `Content-Length`, 0 without a body, or the buffered body's size; a chunked body streamed without buffering has no known size and is not
 * observed in `weft_request_bytes`.
 *
 * Peer labels: at the source, `destination_workload` is the picked endpoint's
 * `weft.dev/workload` label (the peer sidecar registers it; else its `app` label) and
 * `destination_principal` the SPIFFE ID the endpoint must present; at the destination,
 * `source_namespace` comes from the peer's SPIFFE ID (`spiffe://<td>/ns/<ns>/sa/<sa>`) and
 * `destination_principal` is the proxy's own certificate URI SAN. So one edge of the service graph
 * (`source_workload` → `destination_workload`) is complete on `reporter="source"` series.
 *
 * mTLS: `source_principal` is the downstream peer's SPIFFE ID (`unknown` without one) and
 * `connection_security_policy` is `mutual_tls` or `none` at the destination (`unknown` at the
 * source, as in Istio: the client side cannot tell). `weft_tls_handshakes_total{side, result}`
 * counts handshakes from the `weft:tls:handshake` channel (side downstream | upstream, result
 * ok | failed), so connection reuse is visible: in steady state it does not grow.
 *
 * gRPC (http/grpc-status.ts): a request whose content-type is `application/grpc*` has
 * `request_protocol="grpc"` and `grpc_response_status` set to its response's gRPC status, read
 * from the trailers or from a Trailers-Only head alike, or the status of the proxy's own gRPC
 * error reply (`""` when none was seen, and for every other request).
 *
 * Retries (from the `weft:retry` channel): `weft_retries_total{cluster, reason}` counts retries
 * made, reason `5xx` / `4xx` (the status class retried on), `grpc_<status>` (a Trailers-Only gRPC
 * status retried on, e.g. `grpc_unavailable`), `connect_failure`, `reset` or `per_try_timeout`; `weft_retries_skipped_total{cluster, reason}` counts retriable attempts not
 * retried, reason `budget_exhausted`, `overflow`, `body_not_replayable` or `no_time_left`.
 *
 * Mirrors (from the `weft:mirror` channel): `weft_mirrored_requests_total{cluster, result}` counts
 * request copies due to a route's mirrors, result `ok`, `error`, `no_endpoint`, `overflow`,
 * `body_too_large` or `body_incomplete` (see `MirrorResult`).
 *
 * API keys (from the `weft:apikey` channel, filters/edge/apikey.ts):
 * `weft_api_key_requests_total{key_set, client_id, key_id, result}` counts keys presented at the
 * edge, result `ok`, `expired` or `unknown` (client and key id '' for an unknown key). The ids
 * come from the config, so the label set is bounded; the key itself is never a label.
 * TCP connections (`weft:tcp` channel): `weft_tcp_connections_{opened,closed}_total`,
 * `weft_tcp_{received,sent}_bytes_total` (tcp-metrics.ts), on the same registry.
 *
 * Cluster resilience (upstream/): `weft_circuit_breaker_state{cluster, endpoint}` (gauge: 0 closed,
 * 1 half-open, 2 open; from `weft:breaker`, removed with the endpoint), `weft_overflow_total{cluster,
 * limit}` (limit max_requests | max_pending_requests | max_retries; from `weft:overflow`) and
 * `weft_outlier_ejections_total{cluster, reason}` (reason consecutive_server_errors |
 * consecutive_gateway_errors | success_rate; from `weft:outlier`).
 */

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { RequestContext } from '../http/context.ts';
import { type TlsHandshakeEvent, tlsHandshake } from '../identity.ts';
import {
  type ApiKeyUseEvent,
  apiKeyChannel,
  type BreakerStateEvent,
  breakerChannel,
  type MirrorEvent,
  mirrorChannel,
  type OutlierEvent,
  type OverflowEvent,
  outlierChannel,
  overflowChannel,
  type RetryEvent,
  requestEnd,
  retryChannel,
} from './channels.ts';
import { REQUEST_LABELS, type RequestLabel, reporterOf, type Workload } from './labels.ts';
import { TcpMetrics } from './tcp-metrics.ts';

/** `weft_circuit_breaker_state` values. */
const BREAKER_GAUGE = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 } as const;

export const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

type Labels = Record<RequestLabel, string>;

interface Children {
  readonly requests: { inc(): void };
  readonly duration: { observe(v: number): void };
  readonly requestBytes: { observe(v: number): void };
  readonly responseBytes: { observe(v: number): void };
}

/** `weft_request_bytes` / `weft_response_bytes` buckets: 1 B … 100 MB, powers of ten. */
export const SIZE_BUCKETS_BYTES = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/** The endpoint label a sidecar registers its workload name under (sidecar/run.ts). */
export const WORKLOAD_LABEL = 'weft.dev/workload';

/**
 * The Service of an outbound cluster: `outbound|<port>|<name>.<namespace>` (the control plane's
 * naming) gives name and namespace; any other cluster name is the service name itself.
 */
function serviceOf(cluster: string): { service: string; name: string; namespace: string | undefined } {
  const m = /^outbound\|\d+\|([^.|]+)\.([^.|]+)$/.exec(cluster);
  if (m === null) return { service: cluster, name: cluster, namespace: undefined };
  return { service: m[1]!, name: m[1]!, namespace: m[2] };
}

/** `ns` of a SPIFFE ID `spiffe://<trust domain>/ns/<ns>/sa/<sa>`, else undefined. */
function spiffeNamespace(id: string): string | undefined {
  return /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/.exec(id)?.[1];
}

/** Request body size for `weft_request_bytes`, or -1 when unknown (see the module header). */
export function requestSize(ctx: RequestContext): number {
  const declared = ctx.req.headers['content-length'];
  if (declared !== undefined) return Number(declared) || 0;
  if (ctx.req.headers['transfer-encoding'] === undefined) return 0;
  return ctx.requestBytes;
}

/** Response body size for `weft_response_bytes`. */
export function responseSize(ctx: RequestContext): number {
  return ctx.responseBytes;
}

/** The URI SAN of this side's certificate on a TLS connection, else 'unknown'. */
function localPrincipal(ctx: RequestContext): string {
  const socket = ctx.socket as { getCertificate?: () => { subjectaltname?: string } | object | null };
  const cert = socket.getCertificate?.();
  const san = cert && 'subjectaltname' in cert ? cert.subjectaltname : undefined;
  return /URI:(spiffe:\/\/[^,\s]+)/.exec(san ?? '')?.[1] ?? 'unknown';
}

/** The metrics of a proxy process. `close()` unsubscribes from the request channel. */
export class ProxyMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<RequestLabel>;
  readonly #duration: Histogram<RequestLabel>;
  readonly #requestBytes: Histogram<RequestLabel>;
  readonly #responseBytes: Histogram<RequestLabel>;
  readonly #handshakes: Counter<'side' | 'result'>;
  readonly #retries: Counter<'cluster' | 'reason'>;
  readonly #retriesSkipped: Counter<'cluster' | 'reason'>;
  readonly #mirrored: Counter<'cluster' | 'result'>;
  readonly #apiKeys: Counter<'key_set' | 'client_id' | 'key_id' | 'result'>;
  readonly #onApiKey = (message: unknown): void => {
    const e = message as ApiKeyUseEvent;
    this.#apiKeys.inc({ key_set: e.keySet, client_id: e.clientId, key_id: e.keyId, result: e.result });
  };
  readonly #breakerState: Gauge<'cluster' | 'endpoint'>;
  readonly #overflows: Counter<'cluster' | 'limit'>;
  readonly #ejections: Counter<'cluster' | 'reason'>;
  readonly #children = new Map<string, Children>();
  /** Unsubscribes the role's own metrics (`extraMetrics`). */
  readonly #closeExtra: (() => void)[];
  readonly #workload: Workload;
  /** `weft_tcp_*` (tcp-metrics.ts). */
  readonly #tcp: TcpMetrics;
  readonly #onEnd = (message: unknown): void => this.#record(message as RequestContext);
  readonly #onHandshake = (message: unknown): void => {
    const e = message as TlsHandshakeEvent;
    this.#handshakes.inc({ side: e.side, result: e.ok ? 'ok' : 'failed' });
  };
  readonly #onRetry = (message: unknown): void => {
    const e = message as RetryEvent;
    (e.retried ? this.#retries : this.#retriesSkipped).inc({ cluster: e.cluster, reason: e.reason });
  };
  readonly #onMirror = (message: unknown): void => {
    const e = message as MirrorEvent;
    this.#mirrored.inc({ cluster: e.cluster, result: e.result });
  };

  readonly #onBreaker = (message: unknown): void => {
    const e = message as BreakerStateEvent;
    const labels = { cluster: e.cluster, endpoint: e.endpoint };
    if (e.state === 'REMOVED') this.#breakerState.remove(labels);
    else this.#breakerState.set(labels, BREAKER_GAUGE[e.state]);
  };
  readonly #onOverflow = (message: unknown): void => {
    const e = message as OverflowEvent;
    this.#overflows.inc({ cluster: e.cluster, limit: e.limit });
  };
  readonly #onOutlier = (message: unknown): void => {
    const e = message as OutlierEvent;
    if (e.ejected) this.#ejections.inc({ cluster: e.cluster, reason: e.reason });
  };

  /**
   * @param extraMetrics a proxy role's own metrics (the gateway's edge limits): each registers on
   *   the registry and returns its unsubscribe function.
   */
  constructor(workload: Workload, extraMetrics: readonly ((registry: Registry) => () => void)[] = []) {
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
    this.#requestBytes = new Histogram({
      name: 'weft_request_bytes',
      help: 'Request body size, in bytes (requests whose size is known; see docs/metrics.md).',
      labelNames: REQUEST_LABELS,
      buckets: SIZE_BUCKETS_BYTES,
      registers: [this.registry],
    });
    this.#responseBytes = new Histogram({
      name: 'weft_response_bytes',
      help: 'Response body size sent downstream, in bytes.',
      labelNames: REQUEST_LABELS,
      buckets: SIZE_BUCKETS_BYTES,
      registers: [this.registry],
    });
    this.#handshakes = new Counter({
      name: 'weft_tls_handshakes_total',
      help: 'mTLS handshakes by side (downstream: a listener accepted; upstream: to an endpoint) and result.',
      labelNames: ['side', 'result'],
      registers: [this.registry],
    });
    this.#retries = new Counter({
      name: 'weft_retries_total',
      help: 'Retries made, by cluster and reason (status class retried on, or the failure retried).',
      labelNames: ['cluster', 'reason'],
      registers: [this.registry],
    });
    this.#retriesSkipped = new Counter({
      name: 'weft_retries_skipped_total',
      help: 'Retriable attempts not retried, by cluster and reason (budget, overflow, body, time).',
      labelNames: ['cluster', 'reason'],
      registers: [this.registry],
    });
    this.#mirrored = new Counter({
      name: 'weft_mirrored_requests_total',
      help: 'Request copies sent (or skipped) for route mirrors, by mirror cluster and result.',
      labelNames: ['cluster', 'result'],
      registers: [this.registry],
    });
    this.#apiKeys = new Counter({
      name: 'weft_api_key_requests_total',
      help: 'API keys presented at the edge, by key set, client id, key id and result (ok, expired, unknown).',
      labelNames: ['key_set', 'client_id', 'key_id', 'result'],
      registers: [this.registry],
    });
    this.#breakerState = new Gauge({
      name: 'weft_circuit_breaker_state',
      help: 'Error-rate circuit breaker state per upstream endpoint: 0 closed, 1 half-open, 2 open.',
      labelNames: ['cluster', 'endpoint'],
      registers: [this.registry],
    });
    this.#overflows = new Counter({
      name: 'weft_overflow_total',
      help: 'Requests and retries refused by a cluster pool limit (503 OVERFLOW), by cluster and limit.',
      labelNames: ['cluster', 'limit'],
      registers: [this.registry],
    });
    this.#ejections = new Counter({
      name: 'weft_outlier_ejections_total',
      help: 'Upstream endpoints ejected by outlier detection, by cluster and reason.',
      labelNames: ['cluster', 'reason'],
      registers: [this.registry],
    });
    this.#closeExtra = extraMetrics.map((register) => register(this.registry));
    this.#tcp = new TcpMetrics(this.registry, workload);
    breakerChannel.subscribe(this.#onBreaker);
    overflowChannel.subscribe(this.#onOverflow);
    outlierChannel.subscribe(this.#onOutlier);
    requestEnd.subscribe(this.#onEnd);
    tlsHandshake.subscribe(this.#onHandshake);
    retryChannel.subscribe(this.#onRetry);
    mirrorChannel.subscribe(this.#onMirror);
    apiKeyChannel.subscribe(this.#onApiKey);
  }

  /**
   * Exports `weft_proxy_config_version{version} 1` (an info-style gauge, read at scrape time) for
   * the config version `source` returns; nothing while it returns ''.
   */
  configVersion(source: () => string): void {
    new Gauge({
      name: 'weft_proxy_config_version',
      help: 'The config version this proxy serves (value 1; the version is the label).',
      labelNames: ['version'],
      registers: [this.registry],
      collect() {
        this.reset();
        const version = source();
        if (version !== '') this.set({ version }, 1);
      },
    });
  }

  #record(ctx: RequestContext): void {
    const peer = ctx.upstreamEndpoint;
    const peerKey =
      peer === undefined ? '' : `${peer.labels[WORKLOAD_LABEL] ?? peer.labels.app}\0${peer.identity}`;
    const key =
      `${ctx.listener.name}\0${ctx.routeName}\0${ctx.clusterName}\0${ctx.status}\0${ctx.flags}` +
      `\0${ctx.sourcePrincipal}\0${ctx.securityPolicy}\0${peerKey}\0${ctx.protocol}\0${ctx.grpc}\0${ctx.grpcStatus}`;
    let children = this.#children.get(key);
    if (children === undefined) {
      const labels = this.#labels(ctx);
      children = {
        requests: this.#requests.labels(labels),
        duration: this.#duration.labels(labels),
        requestBytes: this.#requestBytes.labels(labels),
        responseBytes: this.#responseBytes.labels(labels),
      };
      this.#children.set(key, children);
    }
    children.requests.inc();
    children.duration.observe(ctx.durationMs / 1000);
    const requestBytes = requestSize(ctx);
    if (requestBytes >= 0) children.requestBytes.observe(requestBytes);
    children.responseBytes.observe(responseSize(ctx));
  }

  #labels(ctx: RequestContext): Labels {
    const reporter = reporterOf(ctx.listener.direction);
    const self = this.#workload;
    const dest = serviceOf(ctx.clusterName || 'unknown');
    const inbound = reporter === 'destination';
    const peer = ctx.upstreamEndpoint;
    const peerWorkload = peer?.labels[WORKLOAD_LABEL] ?? peer?.labels.app;
    const peerPrincipal = peer?.identity || undefined;
    return {
      reporter,
      source_workload: inbound ? 'unknown' : self.workload,
      source_namespace: inbound ? (spiffeNamespace(ctx.sourcePrincipal) ?? 'unknown') : self.namespace,
      source_principal: ctx.sourcePrincipal || 'unknown',
      destination_service: inbound ? self.service : dest.service,
      destination_service_name: inbound ? self.service : dest.name,
      destination_service_namespace: inbound ? self.namespace : (dest.namespace ?? 'unknown'),
      destination_workload: inbound ? self.workload : (peerWorkload ?? 'unknown'),
      destination_namespace: inbound
        ? self.namespace
        : ((peerPrincipal && spiffeNamespace(peerPrincipal)) ?? dest.namespace ?? 'unknown'),
      destination_principal: inbound ? localPrincipal(ctx) : (peerPrincipal ?? 'unknown'),
      request_protocol: ctx.grpc ? 'grpc' : ctx.protocol,
      response_code: String(ctx.status),
      grpc_response_status: ctx.grpcStatus >= 0 ? String(ctx.grpcStatus) : '',
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
    for (const close of this.#closeExtra) close();
    this.#tcp.close();
    breakerChannel.unsubscribe(this.#onBreaker);
    overflowChannel.unsubscribe(this.#onOverflow);
    outlierChannel.unsubscribe(this.#onOutlier);
    requestEnd.unsubscribe(this.#onEnd);
    tlsHandshake.unsubscribe(this.#onHandshake);
    retryChannel.unsubscribe(this.#onRetry);
    mirrorChannel.unsubscribe(this.#onMirror);
    apiKeyChannel.unsubscribe(this.#onApiKey);
  }
}
