/**
 * The upstream exchange: sends one routed request to an endpoint's undici `Pool` and streams
 * the response back downstream, both directions with backpressure (the request body is read
 * by undici only as fast as the upstream takes it; the response is paused while the
 * downstream socket is full).
 *
 * Invariants:
 * - exactly one terminal outcome per exchange: a streamed response, or one local error reply;
 * - the client going away aborts the upstream request at once (RFC 9110 §7.6 intermediary);
 * - a request that fails on a reused connection before any response byte (the keep-alive race)
 *   is retried once on a fresh connection when it is idempotent (RFC 9110 §9.2.2) and has no
 *   body to replay (RFC 9112 §9.3.1 allows the automatic retry); the retry gets a one-off
 *   connection of its own, because the pool would hand out its next idle connection, which is
 *   likely as stale as the one that just failed;
 * - upstream failures map to the closed error set: connect (including a failed mTLS handshake or a
 *   peer with the wrong SPIFFE ID, whose reason becomes the reply's detail) → 503
 *   UPSTREAM_CONNECT_FAILURE, reset → 502 UPSTREAM_RESET, malformed → 502 UPSTREAM_PROTOCOL_ERROR,
 *   per-attempt timeout → 504 UPSTREAM_TIMEOUT, route timeout → 504 REQUEST_TIMEOUT.
 */
import { Client, type Dispatcher } from 'undici';
import type { ErrorKind } from '../errors.ts';
import type { CompiledHeaderModifier, HeaderMap } from '../router/types.ts';
import { completeRequest } from '../telemetry/channels.ts';
import { armTimer, cancelTimer, type TimerEntry } from '../timers.ts';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../upstream/pool.ts';
import type { UpstreamEndpoint } from '../upstream/types.ts';
import type { RequestContext } from './context.ts';
import { stripResponseHopByHop } from './headers.ts';
import { sendError } from './local-reply.ts';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'WEFT_UPSTREAM_TLS', // upstream/tls.ts: handshake failed, wrong peer identity, no certificate yet
]);
/** Errors that mean "the connection died under us" — the keep-alive race signature. */
const RACE_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED']);

/** Maps an undici / socket error to an error kind. */
export function classifyUpstreamError(err: Error & { code?: string }): ErrorKind {
  const code = err.code ?? '';
  if (CONNECT_CODES.has(code)) return 'UPSTREAM_CONNECT_FAILURE';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'UPSTREAM_TIMEOUT';
  // undici 7 leaves `code` undefined on its HTTPParserError (it looks the llhttp error number
  // up in a name → number table), so the error name is what identifies a malformed response.
  if (
    code.startsWith('HPE_') ||
    err.name === 'HTTPParserError' ||
    code === 'UND_ERR_INFO' ||
    code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'
  )
    return 'UPSTREAM_PROTOCOL_ERROR';
  return 'UPSTREAM_RESET';
}

/** Per-exchange options resolved by the pipeline. */
export interface ForwardOptions {
  readonly endpoint: UpstreamEndpoint;
  readonly path: string;
  readonly hasBody: boolean;
  /** Per-attempt timeout (ms); 0 disables. */
  readonly backendRequestMs: number;
  readonly responseModifiers: readonly (CompiledHeaderModifier | undefined)[];
  /** The route's whole-request deadline, disarmed when the exchange ends. */
  readonly requestDeadline: TimerEntry | undefined;
}

class AttemptDeadline implements TimerEntry {
  deadlineMs = 0;
  readonly #exchange: UpstreamExchange;
  constructor(exchange: UpstreamExchange) {
    this.#exchange = exchange;
  }
  onTimeout(): void {
    this.#exchange.fail('UPSTREAM_TIMEOUT');
  }
}

/** One request's journey upstream. Create with `new`, then `start()`. */
export class UpstreamExchange implements Dispatcher.DispatchHandler {
  readonly #ctx: RequestContext;
  readonly #opts: ForwardOptions;
  #controller: Dispatcher.DispatchController | undefined;
  #responseStarted = false;
  #done = false;
  /** Set when we abort on purpose; decides the reported kind. */
  #failKind: ErrorKind | undefined;
  #retried = false;
  /** The retry's one-off connection (never pooled), closed when the exchange ends. */
  #fresh: Client | undefined;
  #deadline: AttemptDeadline | undefined;
  readonly #onDownstreamClose = (): void => {
    if (!this.#ctx.res.writableFinished) this.fail('DOWNSTREAM_DISCONNECT');
  };
  readonly #onDrain = (): void => {
    this.#controller?.resume();
  };

  constructor(ctx: RequestContext, opts: ForwardOptions) {
    this.#ctx = ctx;
    this.#opts = opts;
  }

  start(): void {
    this.#ctx.res.on('close', this.#onDownstreamClose);
    if (this.#opts.backendRequestMs > 0) {
      this.#deadline = new AttemptDeadline(this);
      armTimer(this.#deadline, this.#opts.backendRequestMs);
    }
    this.#opts.endpoint.activeRequests++;
    this.#dispatch();
  }

  /** Sends one attempt; the endpoint's active count covers all attempts of the exchange. */
  #dispatch(): void {
    const { endpoint, path, hasBody } = this.#opts;
    const ctx = this.#ctx;
    ctx.attempts++;
    try {
      (this.#fresh ?? endpoint.pool).dispatch(
        {
          origin: endpoint.origin,
          path,
          method: ctx.req.method ?? 'GET',
          headers: ctx.upstreamHeaders,
          body: hasBody ? ctx.req : null,
          headersTimeout: 0,
          bodyTimeout: 0,
          reset: this.#fresh !== undefined,
        },
        this,
      );
    } catch (err) {
      this.onResponseError(undefined, err as Error);
    }
  }

  /**
   * Ends the exchange with `kind`: a local reply when no response byte was sent, otherwise the
   * downstream stream is cut. Aborts the upstream request. Safe to call more than once.
   */
  fail(kind: ErrorKind): void {
    if (this.#done) return;
    this.#failKind = kind;
    if (this.#controller !== undefined) {
      this.#controller.abort(new Error(kind));
      return; // onResponseError finishes the job
    }
    this.#finish(kind);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#failKind !== undefined) controller.abort(new Error(this.#failKind));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) return; // 1xx interim responses are not forwarded (100 is ours)
    this.#controller = controller;
    this.#responseStarted = true;
    const ctx = this.#ctx;
    const out = stripResponseHopByHop(headers as HeaderMap);
    for (const modifier of this.#opts.responseModifiers) modifier?.apply(out);
    ctx.status = statusCode;
    const { res } = ctx;
    res.on('drain', this.#onDrain);
    res.writeHead(statusCode, out);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#ctx.res.write(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    if (this.#done) return;
    this.#ctx.res.end();
    this.#finish(undefined);
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.#done) return;
    const ctx = this.#ctx;
    const kind = this.#failKind ?? classifyUpstreamError(err as Error & { code?: string });
    if (
      this.#failKind === undefined &&
      !this.#responseStarted &&
      !this.#retried &&
      !this.#opts.hasBody &&
      RACE_CODES.has((err as Error & { code?: string }).code ?? '') &&
      IDEMPOTENT.has(ctx.req.method ?? '')
    ) {
      this.#retried = true;
      this.#controller = undefined;
      const { origin, connector } = this.#opts.endpoint;
      this.#fresh = new Client(origin, {
        pipelining: 1,
        connectTimeout: DEFAULT_CONNECT_TIMEOUT_MS,
        headersTimeout: 0,
        bodyTimeout: 0,
        ...(connector !== undefined && { connect: connector }),
      });
      this.#dispatch();
      return;
    }
    const code = (err as Error & { code?: string }).code;
    this.#finish(
      kind,
      code === 'WEFT_UPSTREAM_TLS' && this.#failKind === undefined ? err.message : undefined,
    );
  }

  #finish(kind: ErrorKind | undefined, detail?: string): void {
    if (this.#done) return;
    this.#done = true;
    this.#opts.endpoint.activeRequests--;
    if (this.#fresh !== undefined) this.#fresh.close().catch(() => undefined);
    if (this.#deadline !== undefined) cancelTimer(this.#deadline);
    const ctx = this.#ctx;
    ctx.res.off('close', this.#onDownstreamClose);
    ctx.res.off('drain', this.#onDrain);
    if (this.#opts.requestDeadline !== undefined) cancelTimer(this.#opts.requestDeadline);
    if (kind === undefined) {
      completeRequest(ctx);
    } else if (kind === 'DOWNSTREAM_DISCONNECT') {
      ctx.flags = kind;
      ctx.res.destroy();
      completeRequest(ctx);
    } else {
      sendError(ctx, kind, detail);
    }
  }
}
