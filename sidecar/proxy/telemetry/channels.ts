/**
 * Telemetry hand-off through `diagnostics_channel` (as undici does): the hot path publishes a
 * finished request's context once; metrics and access logs subscribe. With no subscriber the
 * publish is a single `hasSubscribers` check.
 *
 * Channels: `weft:request:end` — message: the `RequestContext` of a finished request;
 * `weft:retry` — message: a `RetryEvent`, once per retry made or skipped (http/forward.ts);
 * `weft:mirror` — message: a `MirrorEvent`, once per request copy due to a mirror (http/mirror.ts).
 */
import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import type { RequestContext } from '../http/context.ts';
import type { GrpcStatusName } from '../http/grpc-status.ts';

export const requestEnd = diagnostics.channel('weft:request:end');
export const retryChannel = diagnostics.channel('weft:retry');

/** A retry on a Trailers-Only gRPC status: `grpc_` and the status name in lower case. */
export type GrpcRetryReason = `grpc_${Lowercase<GrpcStatusName>}`;
/**
 * Why a retry was made: the status class retried on, the gRPC status retried on, or the failure
 * of the previous attempt.
 */
export type RetryReason = '4xx' | '5xx' | GrpcRetryReason | 'connect_failure' | 'reset' | 'per_try_timeout';
/** Why a retriable attempt was not retried although the policy allowed another attempt. */
export type RetrySkipReason = 'budget_exhausted' | 'overflow' | 'body_not_replayable' | 'no_time_left';

/** One retry decision on `cluster`: `retried` with its reason, or skipped with the reason. */
export type RetryEvent =
  | { readonly cluster: string; readonly retried: true; readonly reason: RetryReason }
  | { readonly cluster: string; readonly retried: false; readonly reason: RetrySkipReason };

const published = new WeakSet<RequestContext>();

/** Records the duration and publishes `ctx` on `weft:request:end`, once per request. */
export function completeRequest(ctx: RequestContext): void {
  if (published.has(ctx)) return;
  published.add(ctx);
  ctx.durationMs = performance.now() - ctx.startMs;
  if (ctx.status === 0) ctx.status = ctx.flags === 'DOWNSTREAM_DISCONNECT' ? 499 : 0;
  if (requestEnd.hasSubscribers) requestEnd.publish(ctx);
}

/** True once `completeRequest` ran for `ctx`: it was answered, or ended without an answer. */
export function requestCompleted(ctx: RequestContext): boolean {
  return published.has(ctx);
}

/** Publishes a retry made on `cluster` (only when someone listens: no allocation otherwise). */
export function publishRetry(cluster: string, reason: RetryReason): void {
  if (retryChannel.hasSubscribers) {
    retryChannel.publish({ cluster, retried: true, reason } satisfies RetryEvent);
  }
}

/** Publishes a retry skipped on `cluster`. */
export function publishRetrySkipped(cluster: string, reason: RetrySkipReason): void {
  if (retryChannel.hasSubscribers) {
    retryChannel.publish({ cluster, retried: false, reason } satisfies RetryEvent);
  }
}

export const mirrorChannel = diagnostics.channel('weft:mirror');

/**
 * What became of one request copy due to a mirror: `ok` (the mirror answered, any status),
 * `error` (no answer: connect failure, reset, timeout), `no_endpoint`, `overflow` (the mirror
 * cluster is at its limits), `body_too_large` (over 64 KiB: not mirrored), `body_incomplete`
 * (the request body did not arrive whole: not mirrored).
 */
export type MirrorResult = 'ok' | 'error' | 'no_endpoint' | 'overflow' | 'body_too_large' | 'body_incomplete';

/** One request copy's outcome on mirror `cluster`. */
export interface MirrorEvent {
  readonly cluster: string;
  readonly result: MirrorResult;
}

/** Publishes a mirrored request's outcome (only when someone listens). */
export function publishMirror(cluster: string, result: MirrorResult): void {
  if (mirrorChannel.hasSubscribers) mirrorChannel.publish({ cluster, result } satisfies MirrorEvent);
}

// Cluster resilience (upstream/breakers.ts, upstream/outlier.ts): breaker states, pool-limit
// overflows and outlier ejections. Messages are made only when someone listens.

/** `weft:breaker` — message: a `BreakerStateEvent` whenever an endpoint's error-rate breaker changes. */
export const breakerChannel = diagnostics.channel('weft:breaker');
/** `weft:overflow` — message: an `OverflowEvent` each time a pool limit refuses a request or a retry. */
export const overflowChannel = diagnostics.channel('weft:overflow');
/** `weft:outlier` — message: an `OutlierEvent` each time an endpoint is ejected or returns. */
export const outlierChannel = diagnostics.channel('weft:outlier');

/** An error-rate breaker's state; `REMOVED` when its endpoint or cluster left the config. */
export type BreakerState = 'CLOSED' | 'HALF_OPEN' | 'OPEN';

/** One endpoint's breaker state on `cluster` (gauge `weft_circuit_breaker_state`: 0, 1, 2). */
export interface BreakerStateEvent {
  readonly cluster: string;
  readonly endpoint: string;
  readonly state: BreakerState | 'REMOVED';
}

/** The Envoy circuit-breaking threshold that refused: `weft_overflow_total{cluster, limit}`. */
export type OverflowLimit = 'max_requests' | 'max_pending_requests' | 'max_retries';

export interface OverflowEvent {
  readonly cluster: string;
  readonly limit: OverflowLimit;
}

/** Why outlier detection ejected an endpoint: `weft_outlier_ejections_total{cluster, reason}`. */
export type EjectionReason = 'consecutive_server_errors' | 'consecutive_gateway_errors' | 'success_rate';

/** An endpoint ejected (`ejected` true, until `ejectedUntilMs`, epoch ms) or back in rotation. */
export interface OutlierEvent {
  readonly cluster: string;
  readonly endpoint: string;
  readonly ejected: boolean;
  readonly reason: EjectionReason;
  readonly ejectedUntilMs: number;
  /** The endpoint's ejection count (the multiplier of the base ejection time). */
  readonly ejections: number;
}

/** `weft:health-check` — message: a `HealthCheckEvent` after every active health check (health-check.ts). */
export const healthCheckChannel = diagnostics.channel('weft:health-check');

/** One active health check's result on `endpoint`, and the endpoint's state after it. */
export interface HealthCheckEvent {
  readonly cluster: string;
  readonly endpoint: string;
  readonly ok: boolean;
  readonly healthy: boolean;
}

/** `weft:apikey` — message: an `ApiKeyUseEvent` each time an API key is presented (filters/edge). */
export const apiKeyChannel = diagnostics.channel('weft:apikey');

/** One API key presented: its set, client and key id ('' when unknown) and the outcome. Never the key. */
export interface ApiKeyUseEvent {
  readonly keySet: string;
  readonly clientId: string;
  readonly keyId: string;
  readonly result: 'ok' | 'expired' | 'unknown';
}

/** Publishes an API key use (only when someone listens). */
export function publishApiKeyUse(
  keySet: string,
  clientId: string,
  keyId: string,
  result: ApiKeyUseEvent['result'],
): void {
  if (apiKeyChannel.hasSubscribers) {
    apiKeyChannel.publish({ keySet, clientId, keyId, result } satisfies ApiKeyUseEvent);
  }
}
