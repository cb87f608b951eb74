/**
 * Retry decisions for the forwarder (http/forward.ts), kept free of I/O so they can be tested on
 * their own: which attempt outcomes a route's policy retries, whether another attempt may be made,
 * and how long to back off first.
 *
 * Spec and precedent: Gateway API GEP-1731 (HTTPRoute retry: status codes in 400–599, attempts,
 * backoff), Envoy's retry policy (`retriable_status_codes`, `connect-failure`, `reset`, per-try
 * timeout, exponential back-off with full jitter between a base and a maximum interval), RFC 9110
 * §9.2.2 (only idempotent methods are retried unless the route says otherwise).
 *
 * gRPC (grpc-status.ts): a gRPC request whose response is Trailers-Only (its `grpc-status` in the
 * response head, so nothing went downstream yet) is retried when that status is in the policy's
 * `retryOnGrpcStatus` (Envoy's `retry_on: unavailable, ...`), whatever the method (a gRPC call is a
 * POST; listing a code is the statement that such a call may be repeated, as in gRPC's own retry
 * policy, gRFC A6). A connect failure of a gRPC request is retried whatever the method too (when
 * the policy retries connect failures): nothing reached the upstream. A status in trailers after a
 * streamed response cannot be retried: the head and maybe messages already went downstream.
 *
 * Invariants: a verdict is `'retry'` only when an attempt is left, the method may be retried, the
 * body can be replayed and the back-off ends with time to spare before the request's deadline; the
 * cluster's retry budget (`admitRetry`) is asked only after all of these hold, so a refused retry
 * never takes a budget slot. Back-off never exceeds `backoffMaxMs`.
 */
import type { ErrorKind } from '../errors.ts';
import type { CompiledRetryPolicy, HeaderMap } from '../router/types.ts';
import type { GrpcRetryReason, RetryReason, RetrySkipReason } from '../telemetry/channels.ts';
import { TICK_MS } from '../timers.ts';
import { grpcStatusName, grpcStatusOf } from './grpc-status.ts';

/** The retry trigger for an upstream status under `policy`, or `undefined` when it is not retried. */
export function statusTrigger(policy: CompiledRetryPolicy, status: number): RetryReason | undefined {
  if (!policy.retryOnStatus.has(status)) return undefined;
  return status >= 500 ? '5xx' : '4xx';
}

/**
 * The retry trigger for a response head under `policy`, or `undefined`: its status (`statusTrigger`),
 * or, for a gRPC request (`grpc`) answered Trailers-Only, its `grpc-status` when the policy lists it
 * (reason `grpc_<status name>`, e.g. `grpc_unavailable`).
 */
export function responseTrigger(
  policy: CompiledRetryPolicy,
  status: number,
  headers: HeaderMap,
  grpc: boolean,
): RetryReason | undefined {
  if (policy.retryOnStatus.size > 0) {
    const trigger = statusTrigger(policy, status);
    if (trigger !== undefined) return trigger;
  }
  if (!grpc || policy.retryOnGrpcStatus.size === 0) return undefined;
  const code = grpcStatusOf(headers);
  if (code === undefined || !policy.retryOnGrpcStatus.has(code)) return undefined;
  return `grpc_${(grpcStatusName(code) as string).toLowerCase()}` as GrpcRetryReason;
}

/** Whether a retry reason is a gRPC status (such retries ignore `retryMethods`). */
export function isGrpcTrigger(reason: RetryReason): boolean {
  return reason.startsWith('grpc_');
}

/**
 * The retry trigger for an attempt that failed with `kind` before any response byte, or `undefined`.
 * A per-try timeout (504 UPSTREAM_TIMEOUT) is always retriable under a policy; the route's own request
 * timeout, a protocol error and a client that went away never are.
 */
export function errorTrigger(policy: CompiledRetryPolicy, kind: ErrorKind): RetryReason | undefined {
  switch (kind) {
    case 'UPSTREAM_CONNECT_FAILURE':
      return policy.retryOnConnectFailure ? 'connect_failure' : undefined;
    case 'UPSTREAM_RESET':
      return policy.retryOnReset ? 'reset' : undefined;
    case 'UPSTREAM_TIMEOUT':
      return 'per_try_timeout';
    default:
      return undefined;
  }
}

/**
 * Back-off before retry number `retry` (1 for the first retry), in ms: full jitter over
 * [0, min(backoffMaxMs, backoffBaseMs × (2^retry − 1))) (Envoy's formula), `random` in [0, 1).
 */
export function backoffMs(policy: CompiledRetryPolicy, retry: number, random: number): number {
  const exponent = Math.min(Math.max(retry, 1), 30);
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * (2 ** exponent - 1));
  return Math.floor(random * ceiling);
}

/** What the state of a request allows after a retriable outcome (the budget is asked afterwards). */
export interface RetryState {
  /** Attempts made so far under the policy (1 after the first). */
  readonly attempt: number;
  readonly method: string;
  /** Whether the request can be sent again byte for byte (no body, or one buffered in full). */
  readonly replayable: boolean;
  /** Time left before the request's deadline (ms); `Infinity` without one. */
  readonly remainingMs: number;
  /** The back-off the retry would wait first (ms). */
  readonly delayMs: number;
  /** What the retry is for; a gRPC status trigger is not subject to `retryMethods`. */
  readonly trigger?: RetryReason;
  /** The request is gRPC: a connect failure is then retried whatever the method. */
  readonly grpc?: boolean;
}

/**
 * `'retry'` when another attempt may be made (subject to the cluster's budget), a skip reason when a
 * retry was due but cannot happen (counted), `undefined` when the policy itself says no more (no
 * attempt left or the method is not retried; not counted). The back-off must end at least one timer
 * tick (the shared timer's precision) before the deadline.
 */
export function retryVerdict(
  policy: CompiledRetryPolicy,
  state: RetryState,
): 'retry' | Exclude<RetrySkipReason, 'budget_exhausted' | 'overflow'> | undefined {
  if (state.attempt > policy.numRetries) return undefined;
  const trigger = state.trigger;
  const anyMethod =
    trigger !== undefined &&
    (isGrpcTrigger(trigger) || (state.grpc === true && trigger === 'connect_failure'));
  if (!anyMethod && !policy.retryMethods.has(state.method)) return undefined;
  if (!state.replayable) return 'body_not_replayable';
  if (state.remainingMs <= state.delayMs + TICK_MS) return 'no_time_left';
  return 'retry';
}
