/**
 * The upstream exchange: sends one routed request to its cluster, one attempt at a time, and
 * streams the chosen response back downstream, both directions with backpressure (a streamed
 * request body is read by undici only as fast as the upstream takes it; the response is paused
 * while the downstream socket is full).
 *
 * An exchange is admitted once by its cluster (`admitRequest`, 503 OVERFLOW when refused, nothing
 * dispatched) and released once. Each attempt picks an endpoint (a retry prefers another one),
 * carries `x-weft-attempt: <n>` (1-based; a client's value is overwritten, except that an inbound
 * listener keeps the calling sidecar's) and, when the request
 * has a valid `grpc-timeout`, that header rewritten to the time left. Every attempt's outcome is
 * recorded on the cluster (`record`): the response status at the response head, or the error kind;
 * for a gRPC request, the gRPC status as `grpcToHttpStatus` maps it (grpc-status.ts), from a
 * Trailers-Only head at once, or from the trailers of a streamed response when they arrive.
 * Retriable outcomes include a Trailers-Only gRPC status the policy lists (retry.ts).
 *
 * Retries follow the route's policy (GEP-1731, Envoy; decisions in retry.ts): a retriable status
 * (its response drained or aborted, never forwarded), connect failure, reset or per-try timeout is
 * retried, before any response byte went downstream, when an attempt is left, the method may be
 * retried, the body is replayable (none, or buffered whole within the route's limit by
 * body-buffer.ts and sent as one Buffer on every attempt), the back-off ends before the deadline and
 * the cluster admits the retry (`admitRetry`, its max active retries and retry budget; the slot is
 * held through the back-off and released when the retry attempt's response head arrives or it
 * fails; a refusal is counted as `budget_exhausted` or `overflow`, as `lastRetryDenial` says).
 * Otherwise the last outcome is the answer: its status forwarded as is, or its error kind. Back-off
 * waits on the shared coarse timer. One attempt and its undici callbacks: attempt.ts.
 *
 * Invariants:
 * - exactly one terminal outcome per exchange: a streamed response, or one local error reply;
 * - no retry once a response head went downstream;
 * - deadlines: the route's request timeout and a `grpc-timeout` bound the whole exchange
 *   (504 REQUEST_TIMEOUT, whatever is in flight or backing off); the per-try timeout (the policy's
 *   `perTryTimeoutMs`, else the route's `backendRequestMs`) bounds each attempt (504
 *   UPSTREAM_TIMEOUT when not retried);
 * - the client going away aborts the upstream request, or the back-off, at once (RFC 9110 §7.6);
 * - a request that fails on a reused connection before any response byte (the keep-alive race)
 *   is retried once on a fresh connection when it is idempotent (RFC 9110 §9.2.2) and has no
 *   body to replay (RFC 9112 §9.3.1 allows the automatic retry); the retry gets a one-off
 *   connection of its own, because the pool would hand out its next idle connection, which is
 *   likely as stale as the one that just failed. It is the same attempt (same `x-weft-attempt`,
 *   not recorded, not counted against the retry policy);
 * - upstream failures map to the closed error set: connect (including a failed mTLS handshake or a
 *   peer with the wrong SPIFFE ID, whose reason becomes the reply's detail) → 503
 *   UPSTREAM_CONNECT_FAILURE, reset → 502 UPSTREAM_RESET, malformed → 502 UPSTREAM_PROTOCOL_ERROR,
 *   per-attempt timeout → 504 UPSTREAM_TIMEOUT, route timeout → 504 REQUEST_TIMEOUT.
 */
import type { Http2ServerResponse } from 'node:http2';
import type { Readable } from 'node:stream';
import { Client, type Dispatcher } from 'undici';
import type { ErrorKind } from '../errors.ts';
import type { CompiledHeaderModifier, CompiledRetryPolicy, HeaderMap } from '../router/types.ts';
import {
  completeRequest,
  publishRetry,
  publishRetrySkipped,
  type RetryReason,
} from '../telemetry/channels.ts';
import { armTimer, cancelTimer, type TimerEntry } from '../timers.ts';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../upstream/pool.ts';
import type { AttemptOutcome, PickContext, UpstreamCluster, UpstreamEndpoint } from '../upstream/types.ts';
import { Attempt, type AttemptOwner, DRAIN_LIMIT_BYTES } from './attempt.ts';
import { BodyBuffer, type BodySink } from './body-buffer.ts';
import type { DownstreamResponse, RequestContext } from './context.ts';
import { grpcStatusOf, outcomeStatus } from './grpc-status.ts';
import { formatGrpcTimeout, parseGrpcTimeoutMs } from './grpc-timeout.ts';
import { stripResponseHopByHop } from './headers.ts';
import { sendError } from './local-reply.ts';
import { backoffMs, errorTrigger, responseTrigger, retryVerdict } from './retry.ts';

/** The request header that tells an upstream which attempt it sees (1-based). */
export const ATTEMPT_HEADER = 'x-weft-attempt';
const GRPC_TIMEOUT_HEADER = 'grpc-timeout';

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

function ignore(): undefined {
  return undefined;
}

/** Shared, frozen `{kind: 'response', status}` outcomes: no allocation per attempt. */
const RESPONSE_OUTCOMES: AttemptOutcome[] = [];

function responseOutcome(status: number): AttemptOutcome {
  let outcome = RESPONSE_OUTCOMES[status];
  if (outcome === undefined) {
    outcome = Object.freeze({ kind: 'response', status });
    RESPONSE_OUTCOMES[status] = outcome;
  }
  return outcome;
}

function hasFields(map: HeaderMap): boolean {
  for (const _ in map) return true;
  return false;
}

/**
 * Sends a whole response as one HTTP/2 HEADERS frame with END_STREAM (RFC 9113 §8.1), through the
 * compatibility response's stream: node:http2's `writeHead` + `end` would add an empty DATA frame.
 */
function respondHeadOnly(res: DownstreamResponse, status: number, headers: HeaderMap): void {
  const stream = (res as unknown as Http2ServerResponse).stream;
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond({ ...headers, ':status': status }, { endStream: true });
}

/** Maps an undici / socket error to an error kind. */
export function classifyUpstreamError(err: Error & { code?: string }): ErrorKind {
  const code = err.code ?? '';
  if (CONNECT_CODES.has(code)) return 'UPSTREAM_CONNECT_FAILURE';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'UPSTREAM_TIMEOUT';
  // undici 7 leaves `code` undefined on its HTTPParserError (it looks the llhttp error number
  // up in a name → number table), so the error name is what identifies a malformed response.
  if (
    code === 'WEFT_H2_PROTOCOL' ||
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
  readonly cluster: UpstreamCluster;
  /** The cluster's hash header value, for CONSISTENT_HASH. */
  readonly hashKey: string | undefined;
  readonly path: string;
  readonly hasBody: boolean;
  /** The route's whole-request timeout (ms); 0 disables. */
  readonly requestMs: number;
  /** Per-attempt timeout (ms) when the retry policy sets none; 0 disables. */
  readonly backendRequestMs: number;
  readonly retry: CompiledRetryPolicy | undefined;
  readonly responseModifiers: readonly (CompiledHeaderModifier | undefined)[];
}

/** The whole exchange's deadline: the route's request timeout or the gRPC deadline. */
class RequestTimer implements TimerEntry {
  deadlineMs = 0;
  readonly #exchange: UpstreamExchange;
  constructor(exchange: UpstreamExchange) {
    this.#exchange = exchange;
  }
  onTimeout(): void {
    this.#exchange.fail('REQUEST_TIMEOUT');
  }
}

/** The current attempt's per-try timeout. */
class AttemptTimer implements TimerEntry {
  deadlineMs = 0;
  readonly #exchange: UpstreamExchange;
  constructor(exchange: UpstreamExchange) {
    this.#exchange = exchange;
  }
  onTimeout(): void {
    this.#exchange.attemptTimedOut();
  }
}

/** The back-off before the next attempt. */
class BackoffTimer implements TimerEntry {
  deadlineMs = 0;
  readonly #exchange: UpstreamExchange;
  constructor(exchange: UpstreamExchange) {
    this.#exchange = exchange;
  }
  onTimeout(): void {
    this.#exchange.backoffEnded();
  }
}

/** One request's journey upstream. Create with `new`, then `start()`. */
export class UpstreamExchange implements AttemptOwner, BodySink {
  readonly #ctx: RequestContext;
  readonly #opts: ForwardOptions;
  readonly #pick: PickContext;
  /** The attempt in flight (undefined while buffering the body or backing off). */
  #current: Attempt | undefined;
  /** A response retried on its status, still being read to its end. */
  #draining: Attempt | undefined;
  /** The endpoint of the last attempt; the next pick avoids it if it can. */
  #previous: UpstreamEndpoint | undefined;
  /** Attempt number under the retry policy (1-based); a keep-alive race retry keeps it. */
  #attempt = 1;
  #body: Buffer | Readable | null = null;
  #replayable = true;
  #buffer: BodyBuffer | undefined;
  #responseStarted = false;
  /** A streamed gRPC response's attempt, recorded on its endpoint once its trailers (status) arrive. */
  #grpcOutcome: Attempt | undefined;
  /** The response went downstream as one HTTP/2 HEADERS frame with END_STREAM (Trailers-Only). */
  #headOnly = false;
  #done = false;
  #admitted = false;
  /** The exchange holds an `admitRetry` slot for a retry waiting in back-off. */
  #retrySlot = false;
  #raceRetried = false;
  /** The race retry's one-off connection (never pooled), closed when no longer used. */
  #fresh: Client | undefined;
  /** Absolute deadline (ms since epoch) of the whole exchange; 0 when none. */
  #deadlineAtMs = 0;
  /** The request carries a valid `grpc-timeout`, rewritten on every attempt. */
  #grpcDeadline = false;
  /** The last attempt's failure, the answer if a retry finds no endpoint. */
  #lastKind: ErrorKind | undefined;
  #requestTimer: RequestTimer | undefined;
  #attemptTimer: AttemptTimer | undefined;
  #backoffTimer: BackoffTimer | undefined;
  readonly #onDownstreamClose = (): void => {
    // Not `res.writableFinished`: node:http2's compat response says finished on a stream the client reset.
    if (!this.#headOnly) this.fail('DOWNSTREAM_DISCONNECT');
  };
  readonly #onDrain = (): void => {
    this.#current?.controller?.resume();
  };

  constructor(ctx: RequestContext, opts: ForwardOptions) {
    this.#ctx = ctx;
    this.#opts = opts;
    this.#pick = { hashKey: opts.hashKey, random: Math.random };
  }

  /**
   * Admits the request, arms its deadline, buffers the body when it may be replayed, then sends the
   * first attempt (an endpoint is picked only when an attempt is about to be dispatched).
   */
  start(): void {
    const ctx = this.#ctx;
    const opts = this.#opts;
    ctx.exchange = this;
    ctx.res.on('close', this.#onDownstreamClose);
    if (opts.cluster.admitRequest() === 'OVERFLOW') {
      this.#finish('OVERFLOW', opts.cluster.name);
      return;
    }
    this.#admitted = true;
    this.#armDeadline();
    if (opts.hasBody) {
      const limit = this.#bufferLimit();
      if (limit > 0) {
        this.#buffer = new BodyBuffer(ctx.req, limit, this);
        this.#buffer.start();
        return; // onBodyBuffered / onBodyOverflow go on
      }
      this.#body = ctx.req;
      this.#replayable = false;
    }
    this.#attemptNext();
  }

  /**
   * How much of the body to buffer for replay: the policy's limit when the request could be retried
   * and its body may fit (a declared length within the limit, or no declared length), else 0.
   */
  #bufferLimit(): number {
    const policy = this.#opts.retry;
    const { req } = this.#ctx;
    const grpcRetries =
      this.#ctx.grpc &&
      policy !== undefined &&
      (policy.retryOnGrpcStatus.size > 0 || policy.retryOnConnectFailure);
    if (
      policy === undefined ||
      policy.numRetries === 0 ||
      !(grpcRetries || policy.retryMethods.has(req.method ?? ''))
    ) {
      return 0;
    }
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > policy.maxBufferedBodyBytes) return 0;
    return policy.maxBufferedBodyBytes;
  }

  /** @internal BodySink: the body is in memory; every attempt sends it. */
  onBodyBuffered(body: Buffer): void {
    if (this.#done) return;
    this.#ctx.requestBytes = body.length;
    this.#body = body;
    this.#attemptNext();
  }

  /** @internal BodySink: the body outgrew the limit; it is streamed once and never retried. */
  onBodyOverflow(body: Readable): void {
    if (this.#done) return;
    this.#body = body;
    this.#replayable = false;
    this.#attemptNext();
  }

  #armDeadline(): void {
    const { requestMs } = this.#opts;
    const grpcMs = parseGrpcTimeoutMs(this.#ctx.upstreamHeaders[GRPC_TIMEOUT_HEADER]);
    if (requestMs === 0 && grpcMs === undefined) return;
    const now = Date.now();
    let deadline = requestMs > 0 ? now + requestMs : 0;
    if (grpcMs !== undefined) {
      this.#grpcDeadline = true;
      if (deadline === 0 || now + grpcMs < deadline) deadline = now + grpcMs;
    }
    this.#deadlineAtMs = deadline;
    this.#requestTimer = new RequestTimer(this);
    armTimer(this.#requestTimer, deadline - now);
  }

  /**
   * Picks the endpoint of the next attempt (avoiding the previous one when it can) and sends it; the
   * retry slot taken for it, if any, goes with the attempt. No endpoint: the last attempt's error, or
   * the cluster's reason (503 NO_HEALTHY_UPSTREAM or CIRCUIT_OPEN).
   */
  #attemptNext(): void {
    const cluster = this.#opts.cluster;
    const endpoint = cluster.pick(this.#pick, this.#previous);
    if (endpoint === undefined) {
      this.#finish(this.#lastKind ?? cluster.lastPickFailure ?? 'NO_HEALTHY_UPSTREAM', cluster.name);
      return;
    }
    const attempt = new Attempt(this, endpoint);
    attempt.holdsRetrySlot = this.#retrySlot;
    this.#retrySlot = false;
    this.#dispatch(attempt);
  }

  /** Sends `attempt` (now the current one) with this attempt's headers and per-try timeout. */
  #dispatch(attempt: Attempt): void {
    const ctx = this.#ctx;
    const { endpoint } = attempt;
    this.#current = attempt;
    this.#previous = endpoint;
    ctx.attempts++;
    ctx.upstreamHost = endpoint.key;
    ctx.upstreamEndpoint = endpoint;
    const headers = ctx.upstreamHeaders;
    // On an inbound listener the calling sidecar's number is what the app should see (its own
    // retries happened one hop before); elsewhere a client's value is replaced.
    if (ctx.listener.direction !== 'INBOUND' || this.#attempt > 1 || headers[ATTEMPT_HEADER] === undefined) {
      headers[ATTEMPT_HEADER] = String(this.#attempt);
    }
    if (this.#grpcDeadline) headers[GRPC_TIMEOUT_HEADER] = formatGrpcTimeout(this.#deadlineAtMs - Date.now());
    // An HTTP/2 upstream is asked for trailers when they can be passed on (RFC 9110 §10.1.4); an
    // HTTP/1.1 one never gets `TE` (hop-by-hop there).
    if (endpoint.http2 === true && ctx.acceptsTrailers) headers.te = 'trailers';
    else if (headers.te !== undefined) delete headers.te;
    const perTryMs = this.#opts.retry?.perTryTimeoutMs || this.#opts.backendRequestMs;
    if (perTryMs > 0) {
      this.#attemptTimer ??= new AttemptTimer(this);
      armTimer(this.#attemptTimer, perTryMs);
    }
    try {
      (this.#fresh ?? endpoint.pool).dispatch(
        {
          origin: endpoint.origin,
          path: this.#opts.path,
          method: ctx.req.method ?? 'GET',
          headers,
          body: this.#body,
          headersTimeout: 0,
          bodyTimeout: 0,
          reset: this.#fresh !== undefined,
          trailersFrom: ctx.req,
        } as Dispatcher.DispatchOptions,
        attempt,
      );
    } catch (err) {
      attempt.onResponseError(undefined, err as Error);
    }
  }

  /**
   * Ends the exchange with `kind`: a local reply when no response byte was sent, otherwise the
   * downstream stream is cut. Aborts the attempt in flight or the back-off. Safe to call more than once.
   */
  fail(kind: ErrorKind): void {
    if (this.#done) return;
    const attempt = this.#current;
    if (attempt !== undefined && !this.#responseStarted && kind !== 'DOWNSTREAM_DISCONNECT') {
      this.#opts.cluster.record(attempt.endpoint, { kind: 'error', error: kind });
    }
    this.#finish(kind);
  }

  /** @internal The per-try timeout fired: retry if allowed, else 504 UPSTREAM_TIMEOUT. */
  attemptTimedOut(): void {
    const attempt = this.#current;
    if (this.#done || attempt === undefined) return;
    if (this.#responseStarted) {
      this.fail('UPSTREAM_TIMEOUT');
      return;
    }
    this.#attemptFailed(attempt, 'UPSTREAM_TIMEOUT', undefined);
  }

  /** @internal The response head of the current attempt. */
  attemptHead(attempt: Attempt, statusCode: number, headers: HeaderMap, endStream: boolean): void {
    if (statusCode < 200) return; // 1xx interim responses are not forwarded (100 is ours)
    const opts = this.#opts;
    // A streamed gRPC response's status comes in its trailers: it is recorded then (Envoy does so).
    if (this.#ctx.grpc && statusCode === 200 && grpcStatusOf(headers) === undefined)
      this.#grpcOutcome = attempt;
    else opts.cluster.record(attempt.endpoint, responseOutcome(outcomeStatus(statusCode, headers)));
    this.#releaseRetrySlot(attempt);
    const policy = opts.retry;
    if (policy !== undefined) {
      const trigger = responseTrigger(policy, statusCode, headers, this.#ctx.grpc);
      if (trigger !== undefined && this.#mayRetry(policy, trigger)) {
        const drain = this.#drainable(statusCode, headers);
        attempt.draining = drain;
        if (drain) this.#draining = attempt;
        this.#release(attempt, drain ? undefined : 'UPSTREAM_RESET');
        this.#lastKind = undefined;
        return;
      }
    }
    this.#responseStarted = true;
    const ctx = this.#ctx;
    const out = stripResponseHopByHop(headers);
    for (const modifier of opts.responseModifiers) modifier?.apply(out);
    const taps = ctx.responseTaps;
    if (taps !== undefined) for (const tap of taps) tap.head(statusCode, out);
    ctx.status = statusCode;
    if (ctx.grpc) ctx.grpcStatus = grpcStatusOf(headers) ?? -1;
    const { res } = ctx;
    if (endStream && ctx.protocol === 'http/2') {
      // Keep a head-only response (gRPC Trailers-Only) one HEADERS frame with END_STREAM.
      this.#headOnly = true;
      respondHeadOnly(res, statusCode, out);
      return;
    }
    res.on('drain', this.#onDrain);
    try {
      res.writeHead(statusCode, out);
    } catch (err) {
      // e.g. a field value node:http2 refuses: the exchange fails, the process does not
      this.#responseStarted = false;
      this.fail('UPSTREAM_PROTOCOL_ERROR');
      void err;
    }
  }

  /**
   * Whether a response about to be retried is worth reading to its end (keeping its connection): no
   * body, a declared length within `DRAIN_LIMIT_BYTES`, or no declared length (the drain stops at it).
   */
  #drainable(statusCode: number, headers: HeaderMap): boolean {
    if (this.#ctx.req.method === 'HEAD' || statusCode === 204 || statusCode === 304) return true;
    const length = headers['content-length'];
    return typeof length !== 'string' || Number(length) <= DRAIN_LIMIT_BYTES;
  }

  /** @internal A response body chunk of the current attempt. */
  attemptData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const taps = this.#ctx.responseTaps;
    if (taps !== undefined) for (const tap of taps) tap.data?.(chunk);
    this.#ctx.responseBytes += chunk.length;
    if (!this.#ctx.res.write(chunk)) controller.pause();
  }

  /** @internal The current attempt's response ended, with its trailer fields (possibly none). */
  attemptEnd(trailers: HeaderMap): void {
    if (this.#done) return;
    const ctx = this.#ctx;
    const taps = ctx.responseTaps;
    if (taps !== undefined) for (const tap of taps) tap.end?.();
    if (ctx.grpc) ctx.grpcStatus = grpcStatusOf(trailers) ?? ctx.grpcStatus;
    this.#recordGrpcOutcome(responseOutcome(outcomeStatus(200, trailers)));
    if (!this.#headOnly) {
      if (ctx.acceptsTrailers && hasFields(trailers)) ctx.res.addTrailers(stripResponseHopByHop(trailers));
      ctx.res.end();
    }
    this.#finish(undefined);
  }

  /** @internal The current attempt failed (connect, reset, malformed response, ...). */
  attemptError(attempt: Attempt, err: Error & { code?: string }): void {
    if (this.#done) return;
    const kind = classifyUpstreamError(err);
    if (this.#responseStarted) {
      this.#recordGrpcOutcome({ kind: 'error', error: kind });
      this.#finish(kind);
      return;
    }
    const code = err.code ?? '';
    if (
      !this.#raceRetried &&
      attempt.endpoint.http2 !== true &&
      this.#body === null &&
      RACE_CODES.has(code) &&
      IDEMPOTENT.has(this.#ctx.req.method ?? '')
    ) {
      this.#raceRetry(attempt);
      return;
    }
    this.#attemptFailed(attempt, kind, code === 'WEFT_UPSTREAM_TLS' ? err.message : undefined);
  }

  /** Records the outcome of a streamed gRPC response whose status was awaited (see attemptHead). */
  #recordGrpcOutcome(outcome: AttemptOutcome): void {
    const attempt = this.#grpcOutcome;
    if (attempt === undefined) return;
    this.#grpcOutcome = undefined;
    this.#opts.cluster.record(attempt.endpoint, outcome);
  }

  /** The keep-alive race: the same attempt again, on a one-off fresh connection to the same endpoint. */
  #raceRetry(attempt: Attempt): void {
    this.#raceRetried = true;
    const holdsSlot = attempt.holdsRetrySlot;
    attempt.holdsRetrySlot = false;
    this.#release(attempt, undefined);
    const { endpoint } = attempt;
    this.#fresh = new Client(endpoint.origin, {
      pipelining: 1,
      connectTimeout: DEFAULT_CONNECT_TIMEOUT_MS,
      headersTimeout: 0,
      bodyTimeout: 0,
      ...(endpoint.connector !== undefined && { connect: endpoint.connector }),
    });
    const again = new Attempt(this, endpoint);
    again.holdsRetrySlot = holdsSlot;
    this.#dispatch(again);
  }

  /** The current attempt failed with `kind` before any response byte: record, then retry or answer. */
  #attemptFailed(attempt: Attempt, kind: ErrorKind, detail: string | undefined): void {
    this.#opts.cluster.record(attempt.endpoint, { kind: 'error', error: kind });
    this.#release(attempt, kind);
    this.#lastKind = kind;
    const policy = this.#opts.retry;
    const trigger = policy === undefined ? undefined : errorTrigger(policy, kind);
    if (policy !== undefined && trigger !== undefined && this.#mayRetry(policy, trigger)) return;
    this.#finish(kind, detail);
  }

  /**
   * Decides a retry after a retriable outcome (`trigger`); when it is on, takes an `admitRetry` slot,
   * counts the retry and arms the back-off. Skips are counted with their reason.
   */
  #mayRetry(policy: CompiledRetryPolicy, trigger: RetryReason): boolean {
    const cluster = this.#opts.cluster;
    const delayMs = backoffMs(policy, this.#attempt, Math.random());
    const verdict = retryVerdict(policy, {
      attempt: this.#attempt,
      method: this.#ctx.req.method ?? 'GET',
      replayable: this.#replayable,
      remainingMs: this.#deadlineAtMs === 0 ? Number.POSITIVE_INFINITY : this.#deadlineAtMs - Date.now(),
      delayMs,
      trigger,
      grpc: this.#ctx.grpc,
    });
    if (verdict === undefined) return false;
    if (verdict !== 'retry') {
      publishRetrySkipped(cluster.name, verdict);
      return false;
    }
    if (!cluster.admitRetry()) {
      // The cluster says why (absent: its maxRetries limit, as the contract has it).
      publishRetrySkipped(
        cluster.name,
        cluster.lastRetryDenial === 'BUDGET_EXHAUSTED' ? 'budget_exhausted' : 'overflow',
      );
      return false;
    }
    this.#retrySlot = true;
    publishRetry(cluster.name, trigger);
    this.#attempt++;
    this.#backoffTimer ??= new BackoffTimer(this);
    armTimer(this.#backoffTimer, Math.max(1, delayMs));
    return true;
  }

  /** @internal The back-off ended: pick an endpoint (another one if possible) and send the retry. */
  backoffEnded(): void {
    if (this.#done) return;
    this.#stopDraining();
    if (this.#fresh !== undefined) {
      this.#fresh.close().catch(ignore);
      this.#fresh = undefined;
    }
    this.#attemptNext();
  }

  #releaseRetrySlot(attempt: Attempt): void {
    if (!attempt.holdsRetrySlot) return;
    attempt.holdsRetrySlot = false;
    this.#opts.cluster.releaseRetry();
  }

  /** Lets go of `attempt`: no longer active on its endpoint; aborted with `abortKind` when given. */
  #release(attempt: Attempt, abortKind: ErrorKind | undefined): void {
    if (attempt.released) return;
    attempt.released = true;
    attempt.endpoint.activeRequests--;
    this.#releaseRetrySlot(attempt);
    if (this.#current === attempt) {
      this.#current = undefined;
      if (this.#attemptTimer !== undefined) cancelTimer(this.#attemptTimer);
    }
    if (abortKind !== undefined) attempt.abort(abortKind);
  }

  #stopDraining(): void {
    const draining = this.#draining;
    if (draining === undefined) return;
    this.#draining = undefined;
    draining.abort('UPSTREAM_RESET');
  }

  #finish(kind: ErrorKind | undefined, detail?: string): void {
    if (this.#done) return;
    this.#done = true;
    const ctx = this.#ctx;
    const cluster = this.#opts.cluster;
    this.#buffer?.cancel();
    if (this.#requestTimer !== undefined) cancelTimer(this.#requestTimer);
    if (this.#backoffTimer !== undefined) cancelTimer(this.#backoffTimer);
    const attempt = this.#current;
    if (attempt !== undefined) this.#release(attempt, kind);
    this.#stopDraining();
    if (this.#fresh !== undefined) this.#fresh.close().catch(ignore);
    if (this.#retrySlot) {
      this.#retrySlot = false;
      cluster.releaseRetry();
    }
    if (this.#admitted) {
      this.#admitted = false;
      cluster.releaseRequest();
    }
    ctx.res.off('close', this.#onDownstreamClose);
    ctx.res.off('drain', this.#onDrain);
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
