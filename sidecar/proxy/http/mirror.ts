/**
 * Request mirroring (Gateway API `RequestMirror`, Envoy's request_mirror_policies): for the
 * chosen share of requests, a copy goes to an endpoint of the mirror cluster, fire and forget.
 *
 * The copy has the method, path and headers the primary request is sent with, `host` suffixed
 * `-shadow` as Envoy does (`api:8080` → `api-shadow:8080`), and the body. Bodies are copied only up
 * to `MAX_MIRROR_BODY_BYTES` (64 KiB): a larger one (declared or streamed) is not mirrored, and
 * neither is a body that does not arrive whole; both are counted. A copy with a body is sent once
 * the whole body has passed through to the primary exchange.
 *
 * Invariants: mirroring never affects the caller. The body is copied by listening to the chunks
 * the primary exchange reads, never by reading the stream itself, so its pace and backpressure are
 * untouched; the mirror's response is read and discarded; its errors and timeouts are counted and
 * otherwise ignored; it runs on the mirror cluster's own pool and counts against that cluster's
 * limits (`admitRequest`), so a hanging mirror holds only its own connections, for at most its
 * timeout. Every copy due is counted once on `weft:mirror` (telemetry/channels.ts), which feeds
 * `weft_mirrored_requests_total{cluster, result}`.
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { ErrorKind } from '../errors.ts';
import type { CompiledMirror, HeaderMap } from '../router/types.ts';
import { type MirrorResult, publishMirror } from '../telemetry/channels.ts';
import { armTimer, cancelTimer, type TimerEntry } from '../timers.ts';
import type { UpstreamCluster, UpstreamEndpoint } from '../upstream/types.ts';
import { hits } from './fault.ts';
import { classifyUpstreamError } from './forward.ts';

/** Largest request body a mirror copies (bytes); larger requests are not mirrored. */
export const MAX_MIRROR_BODY_BYTES = 64 * 1024;
/** How long a mirror request may take when the route sets no request timeout (ms). */
export const DEFAULT_MIRROR_TIMEOUT_MS = 10_000;

/** The request as the primary exchange sends it. */
export interface MirrorSource {
  readonly method: string;
  /** Path and query as sent upstream (after any rewrite). */
  readonly path: string;
  /** Upstream headers (copied before anything is sent). */
  readonly headers: HeaderMap;
  /** The request body stream, when the request has a body; read only by the primary exchange. */
  readonly body: Readable | undefined;
}

/** Where mirror clusters are looked up (the pipeline's cluster set). */
export interface MirrorClusters {
  get(name: string): UpstreamCluster | undefined;
}

/** `host` with `-shadow` appended before any port: Envoy's shadow host (IPv6 literals kept whole). */
export function shadowHost(host: string): string {
  const close = host.lastIndexOf(']');
  const colon = host.lastIndexOf(':');
  if (colon === -1 || colon < close) return `${host}-shadow`;
  return `${host.slice(0, colon)}-shadow${host.slice(colon)}`;
}

/** One copy of a request on its way to a mirror endpoint; its response is discarded. */
class MirrorRequest implements Dispatcher.DispatchHandler, TimerEntry {
  deadlineMs = 0;
  readonly #cluster: UpstreamCluster;
  readonly #endpoint: UpstreamEndpoint;
  #controller: Dispatcher.DispatchController | undefined;
  #status = 0;
  #timedOut = false;
  #done = false;

  constructor(cluster: UpstreamCluster, endpoint: UpstreamEndpoint) {
    this.#cluster = cluster;
    this.#endpoint = endpoint;
  }

  send(method: string, path: string, headers: HeaderMap, body: Buffer | null, timeoutMs: number): void {
    const endpoint = this.#endpoint;
    endpoint.activeRequests++;
    armTimer(this, timeoutMs);
    try {
      endpoint.pool.dispatch(
        { origin: endpoint.origin, path, method, headers, body, headersTimeout: 0, bodyTimeout: 0 },
        this,
      );
    } catch (err) {
      this.onResponseError(undefined, err as Error);
    }
  }

  onTimeout(): void {
    this.#timedOut = true;
    if (this.#controller === undefined) this.#finish('error', 'UPSTREAM_TIMEOUT');
    else this.#controller.abort(new Error('mirror timeout'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#timedOut) controller.abort(new Error('mirror timeout'));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    if (statusCode >= 200) this.#status = statusCode;
  }

  onResponseData(): void {}

  onResponseEnd(): void {
    this.#finish('ok', undefined);
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    this.#finish(
      'error',
      this.#timedOut ? 'UPSTREAM_TIMEOUT' : classifyUpstreamError(err as Error & { code?: string }),
    );
  }

  #finish(result: 'ok' | 'error', error: ErrorKind | undefined): void {
    if (this.#done) return;
    this.#done = true;
    cancelTimer(this);
    this.#endpoint.activeRequests--;
    this.#cluster.releaseRequest();
    this.#cluster.record(
      this.#endpoint,
      error === undefined ? { kind: 'response', status: this.#status } : { kind: 'error', error },
    );
    publishMirror(this.#cluster.name, result);
  }
}

/** Copies a request body chunk by chunk as its consumer reads it, up to a limit. */
class BodyCopy {
  readonly #body: Readable;
  readonly #limit: number;
  readonly #done: (copy: Buffer | MirrorResult) => void;
  readonly #chunks: Buffer[] = [];
  #size = 0;
  #finished = false;
  readonly #onNewListener = (event: string | symbol): void => {
    if (event !== 'data' && event !== 'readable') return;
    this.#body.off('newListener', this.#onNewListener);
    this.#listen();
  };
  readonly #onData = (chunk: Buffer | string): void => {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.#size += buf.length;
    if (this.#size > this.#limit) this.#finish('body_too_large');
    else this.#chunks.push(buf);
  };
  readonly #onEnd = (): void => {
    // Node's server dumps an unread body by removing every 'data' listener: then it is incomplete.
    if (this.#body.listeners('data').includes(this.#onData)) this.#finish(Buffer.concat(this.#chunks));
    else this.#finish('body_incomplete');
  };
  readonly #onClose = (): void => this.#finish('body_incomplete');

  /** `done(copy)` once the body ended whole, else `done(why not)`; called exactly once. */
  constructor(body: Readable, limit: number, done: (copy: Buffer | MirrorResult) => void) {
    this.#body = body;
    this.#limit = limit;
    this.#done = done;
  }

  start(): void {
    const body = this.#body;
    if (body.readableDidRead) {
      this.#finish('body_incomplete'); // a consumer read some of it already
      return;
    }
    body.once('close', this.#onClose);
    // Listening for 'data' before anyone reads would start the flow with no consumer attached:
    // wait for the consumer's own 'data' or 'readable' listener, then listen beside it.
    if (body.readableFlowing === null) body.on('newListener', this.#onNewListener);
    else this.#listen();
  }

  #listen(): void {
    this.#body.on('data', this.#onData);
    this.#body.once('end', this.#onEnd);
  }

  #finish(outcome: Buffer | MirrorResult): void {
    if (this.#finished) return;
    this.#finished = true;
    const body = this.#body;
    body.off('newListener', this.#onNewListener);
    body.off('data', this.#onData);
    body.off('end', this.#onEnd);
    body.off('close', this.#onClose);
    this.#chunks.length = 0;
    this.#done(outcome);
  }
}

/** Sends one copy to an endpoint of `name`, or counts why it could not. */
function sendCopy(
  clusters: MirrorClusters,
  name: string,
  source: MirrorSource,
  headers: HeaderMap,
  body: Buffer | null,
  random: () => number,
  timeoutMs: number,
): void {
  const cluster = clusters.get(name);
  let hashKey: string | undefined;
  if (cluster?.hashHeader !== undefined) {
    const v = headers[cluster.hashHeader];
    hashKey = Array.isArray(v) ? v[0] : v;
  }
  const endpoint = cluster?.pick({ hashKey, random });
  if (cluster === undefined || endpoint === undefined) {
    publishMirror(name, 'no_endpoint');
    return;
  }
  if (cluster.admitRequest() === 'OVERFLOW') {
    publishMirror(name, 'overflow');
    return;
  }
  new MirrorRequest(cluster, endpoint).send(source.method, source.path, headers, body, timeoutMs);
}

/**
 * Mirrors `source` to each of `mirrors` that `random` picks (its `percent` of requests).
 * `timeoutMs` bounds each copy (0: `DEFAULT_MIRROR_TIMEOUT_MS`). Never throws into the caller's
 * path: failures are counted on `weft:mirror`.
 */
export function mirrorRequest(
  source: MirrorSource,
  mirrors: readonly CompiledMirror[],
  clusters: MirrorClusters,
  random: () => number,
  timeoutMs: number,
): void {
  const chosen = mirrors.filter((m) => hits(m.percent, random));
  if (chosen.length === 0) return;
  const headers: HeaderMap = { ...source.headers };
  const host = headers.host;
  if (typeof host === 'string' && host !== '') headers.host = shadowHost(host);
  const limitMs = timeoutMs > 0 ? timeoutMs : DEFAULT_MIRROR_TIMEOUT_MS;
  const send = (body: Buffer | null): void => {
    for (const m of chosen) sendCopy(clusters, m.cluster, source, headers, body, random, limitMs);
  };
  if (source.body === undefined) {
    send(null);
    return;
  }
  const length = source.headers['content-length'];
  const declared = typeof length === 'string' ? Number(length) : Number.NaN;
  const skip = (result: MirrorResult): void => {
    for (const m of chosen) publishMirror(m.cluster, result);
  };
  if (declared > MAX_MIRROR_BODY_BYTES) {
    skip('body_too_large');
    return;
  }
  new BodyCopy(source.body, MAX_MIRROR_BODY_BYTES, (copy) => {
    if (typeof copy === 'string') skip(copy);
    else send(copy);
  }).start();
}
