/**
 * Span export over OTLP/HTTP with JSON encoding (https://opentelemetry.io/docs/specs/otlp/#otlphttp,
 * `POST <endpoint>` — usually `http://collector:4318/v1/traces` — body an
 * `ExportTraceServiceRequest`): one span per proxied request of a *sampled* trace (see trace.ts),
 * fed from the `weft:request:end` channel. The span is this hop: its trace id and span id are the
 * ones forwarded upstream, its parent the caller's span; kind SERVER on an inbound listener, CLIENT
 * on an outbound one, SERVER on a gateway; name `<METHOD> <route>` (or the listener name without a
 * route); attributes after OTel's HTTP semantic conventions (`http.request.method`,
 * `http.response.status_code`, `url.path`, `server.address`, `network.peer.address`) plus
 * `weft.route`, `weft.cluster`, `weft.upstream_host`, `weft.response_flags`; status ERROR for 5xx
 * or a response flag. Resource: `service.name`, `service.namespace`, `k8s.workload.name`-style
 * `weft.workload`.
 *
 * Never on the request path: spans are queued and sent in batches (every `flushIntervalMs`, or at
 * `maxBatch` spans) by an unref'd timer; a full queue (`maxQueue`) drops new spans, and a failed
 * export drops its batch — both counted in `dropped` and logged at debug level.
 */
import type { Logger } from 'pino';
import { request } from 'undici';
import type { RequestContext } from '../http/context.ts';
import { requestEnd } from './channels.ts';

/** OTLP span kinds (opentelemetry/proto/trace/v1/trace.proto `Span.SpanKind`). */
const SPAN_KIND = { SERVER: 2, CLIENT: 3 } as const;
/** `Status.StatusCode`: UNSET 0, OK 1, ERROR 2. */
const STATUS_ERROR = 2;

export interface OtlpExporterOptions {
  /** Full URL of the OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`. */
  readonly endpoint: string;
  readonly service: string;
  readonly namespace: string;
  readonly workload: string;
  readonly flushIntervalMs?: number;
  readonly maxBatch?: number;
  readonly maxQueue?: number;
  readonly logger?: Logger;
}

interface KeyValue {
  readonly key: string;
  readonly value: { stringValue: string } | { intValue: string };
}

/** One OTLP JSON span (ids in hex, times in Unix nanoseconds as decimal strings). */
export interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: number;
  readonly startTimeUnixNano: string;
  readonly endTimeUnixNano: string;
  readonly attributes: readonly KeyValue[];
  readonly status: { readonly code: number; readonly message?: string };
}

const str = (key: string, value: string): KeyValue => ({ key, value: { stringValue: value } });
const int = (key: string, value: number): KeyValue => ({ key, value: { intValue: String(value) } });

/** Milliseconds since the epoch (fractional) → Unix nanoseconds as a decimal string. */
function nanos(epochMs: number): string {
  return (BigInt(Math.round(epochMs * 1000)) * 1000n).toString();
}

/** The span of a finished request (undefined when its trace is not sampled). */
export function spanOf(ctx: RequestContext): OtlpSpan | undefined {
  if (!ctx.traceSampled || ctx.traceId === '' || ctx.spanId === '') return undefined;
  const direction = ctx.listener.direction;
  const start = performance.timeOrigin + ctx.startMs;
  const method = ctx.req.method ?? 'GET';
  const attributes: KeyValue[] = [
    str('http.request.method', method),
    int('http.response.status_code', ctx.status),
  ];
  const route = ctx.routeRequest;
  if (route !== undefined) {
    attributes.push(str('url.path', route.path), str('server.address', route.host));
  }
  if (ctx.clientAddress) attributes.push(str('network.peer.address', ctx.clientAddress));
  if (ctx.routeName) attributes.push(str('weft.route', ctx.routeName));
  if (ctx.clusterName) attributes.push(str('weft.cluster', ctx.clusterName));
  if (ctx.upstreamHost) attributes.push(str('weft.upstream_host', ctx.upstreamHost));
  if (ctx.flags) attributes.push(str('weft.response_flags', ctx.flags));
  const failed = ctx.status >= 500 || ctx.flags !== '';
  return {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    ...(ctx.parentSpanId !== '' && { parentSpanId: ctx.parentSpanId }),
    name: `${method} ${ctx.routeName || ctx.listener.name}`,
    kind: direction === 'OUTBOUND' ? SPAN_KIND.CLIENT : SPAN_KIND.SERVER,
    startTimeUnixNano: nanos(start),
    endTimeUnixNano: nanos(start + ctx.durationMs),
    attributes,
    status: failed ? { code: STATUS_ERROR, message: ctx.flags || `HTTP ${ctx.status}` } : { code: 0 },
  };
}

export class OtlpSpanExporter {
  readonly #options: Required<Omit<OtlpExporterOptions, 'logger'>> & { logger: Logger | undefined };
  #queue: OtlpSpan[] = [];
  #inflight: Promise<void> | undefined;
  readonly #timer: NodeJS.Timeout;
  /** Spans dropped (queue full or export failed). */
  dropped = 0;
  /** Spans the endpoint accepted. */
  exported = 0;
  readonly #onEnd = (message: unknown): void => {
    const span = spanOf(message as RequestContext);
    if (span === undefined) return;
    if (this.#queue.length >= this.#options.maxQueue) {
      this.dropped++;
      return;
    }
    this.#queue.push(span);
    if (this.#queue.length >= this.#options.maxBatch) void this.flush();
  };

  constructor(options: OtlpExporterOptions) {
    let url: URL;
    try {
      url = new URL(options.endpoint);
    } catch {
      throw new Error(`--otlp-endpoint: "${options.endpoint}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`--otlp-endpoint: "${options.endpoint}" must be an http(s) URL`);
    }
    this.#options = {
      flushIntervalMs: 1000,
      maxBatch: 512,
      maxQueue: 4096,
      ...options,
      logger: options.logger?.child({ component: 'otlp' }),
    };
    this.#timer = setInterval(() => void this.flush(), this.#options.flushIntervalMs);
    this.#timer.unref();
    requestEnd.subscribe(this.#onEnd);
  }

  /** Sends what is queued (one request at a time); resolves once that export has finished. */
  async flush(): Promise<void> {
    while (this.#inflight !== undefined) await this.#inflight;
    if (this.#queue.length === 0) return;
    const batch = this.#queue;
    this.#queue = [];
    this.#inflight = this.#send(batch).finally(() => {
      this.#inflight = undefined;
    });
    await this.#inflight;
  }

  async #send(spans: readonly OtlpSpan[]): Promise<void> {
    const o = this.#options;
    const body = {
      resourceSpans: [
        {
          resource: {
            attributes: [
              str('service.name', o.service),
              str('service.namespace', o.namespace),
              str('weft.workload', o.workload),
            ],
          },
          scopeSpans: [{ scope: { name: 'weft-proxy' }, spans }],
        },
      ],
    };
    try {
      const res = await request(o.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        headersTimeout: 5000,
        bodyTimeout: 5000,
      });
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) this.exported += spans.length;
      else throw new Error(`HTTP ${res.statusCode}`);
    } catch (err) {
      this.dropped += spans.length;
      o.logger?.debug({ err: (err as Error).message, spans: spans.length }, 'span export failed');
    }
  }

  /** Unsubscribes, stops the timer and sends what is left. */
  async close(): Promise<void> {
    requestEnd.unsubscribe(this.#onEnd);
    clearInterval(this.#timer);
    await this.flush();
  }
}
