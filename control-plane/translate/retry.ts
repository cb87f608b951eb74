/**
 * Retry policies for proxy Routes (`RetryPolicy`, proto/weft/v1/config.proto) from the two places
 * users write them.
 *
 * HTTPRoute `rules[].retry` (Gateway API GEP-1731):
 * - `attempts` → numRetries (unset: 2, Envoy Gateway's default; 0: no retry policy at all);
 * - `codes` → retryOnStatus (unset: none; GEP-1731's required 500, 502, 503 and 504 are simply
 *   codes the proxy retries on like any other);
 * - `backoff` → backoffBaseMs, with backoffMaxMs 10 × base (Envoy's default ratio);
 * - retryOnConnectFailure and retryOnReset always: GEP-1731 says implementations should retry on
 *   connection errors whenever a retry stanza is set.
 *
 * BackendTrafficPolicy `retry` (Envoy Gateway's Retry): numRetries; perRetry.timeout →
 * perTryTimeoutMs; perRetry.backOff baseInterval / maxInterval → backoffBaseMs / backoffMaxMs (one
 * of them unset: base 25 ms, max 10 × base, as Envoy); retryOn.triggers, Envoy's retry_on:
 * - `connect-failure` → retryOnConnectFailure; `reset` and `refused-stream` → retryOnReset;
 * - `5xx` → every status 500..599 plus connect failures and resets (Envoy's 5xx includes both);
 *   `gateway-error` → 502, 503, 504 plus connect failures and resets; `retriable-4xx` → 409;
 * - `retriable-status-codes` → retryOn.httpStatusCodes (default [503]);
 * - the gRPC triggers → retryOnGrpcStatus: `cancelled` 1, `deadline-exceeded` 4, `internal` 13,
 *   `resource-exhausted` 8, `unavailable` 14 (Envoy's x-envoy-retry-grpc-on names). The proxy
 *   retries them only for gRPC requests answered Trailers-Only (see sidecar/proxy/http/retry.ts);
 *   a gRPC call is a POST, and these retries are not limited to the idempotent methods.
 * triggers unset are Envoy Gateway's default: connect-failure, refused-stream and
 * retriable-status-codes.
 *
 * Invariants: only set fields are emitted (proto3 JSON); statuses are unique and ascending;
 * durations are clamped to the proto's uint32 milliseconds. A zero duration is left out, which the
 * proxy reads as its default (proto3 cannot carry an explicit 0 on the wire).
 */
import type { RetryPolicy } from '../../sidecar/proxy/config/types.ts';
import { parseDurationMs } from '../resources/duration.ts';
import type { HTTPRouteRetryView, PolicyRetryView } from './specs.ts';

/** GEP-1731 leaves the default number of attempts to implementations: Envoy Gateway's 2. */
export const DEFAULT_RETRY_ATTEMPTS = 2;
/** Envoy's default base interval when only a maximum is given (ms). */
const DEFAULT_BACKOFF_BASE_MS = 25;
/** Envoy's default maximum interval: 10 × the base. */
const BACKOFF_MAX_FACTOR = 10;
const UINT32_MAX = 0xffff_ffff;

const ALL_5XX: readonly number[] = Array.from({ length: 100 }, (_, i) => 500 + i);
const GATEWAY_ERRORS: readonly number[] = [502, 503, 504];
const RETRIABLE_4XX: readonly number[] = [409];
/** Envoy Gateway's retryOn when none is given. */
const DEFAULT_TRIGGERS: readonly string[] = ['connect-failure', 'refused-stream', 'retriable-status-codes'];
const DEFAULT_STATUS_CODES: readonly number[] = [503];
/** Envoy's gRPC retry_on triggers and the gRPC status each one retries. */
const GRPC_TRIGGERS: Readonly<Record<string, number>> = {
  cancelled: 1,
  'deadline-exceeded': 4,
  'resource-exhausted': 8,
  internal: 13,
  unavailable: 14,
};

/** A GEP-2257 duration as uint32 milliseconds (validated resources only). */
export function durationMs(duration: string): number {
  return Math.min(parseDurationMs(duration), UINT32_MAX);
}

/** Backoff fields for a base and/or maximum (ms); missing halves follow Envoy's defaults. */
function backoff(baseMs: number | undefined, maxMs: number | undefined): Partial<RetryPolicy> {
  if (baseMs === undefined && maxMs === undefined) return {};
  const base = baseMs ?? Math.min(DEFAULT_BACKOFF_BASE_MS, maxMs ?? DEFAULT_BACKOFF_BASE_MS);
  const max = maxMs ?? Math.min(base * BACKOFF_MAX_FACTOR, UINT32_MAX);
  return { ...(base > 0 && { backoffBaseMs: base }), ...(max > 0 && { backoffMaxMs: max }) };
}

/** `codes` unique and ascending, or nothing when empty. */
function statuses(codes: Iterable<number>): Partial<RetryPolicy> {
  const sorted = [...new Set(codes)].sort((a, b) => a - b);
  return sorted.length > 0 ? { retryOnStatus: sorted } : {};
}

/**
 * HTTPRoute `retry` (GEP-1731) → RetryPolicy; `undefined` when `attempts` is 0 (the rule turns
 * retries off, and a policy's retry must not apply either: the caller treats the stanza as set).
 */
export function httpRouteRetry(retry: HTTPRouteRetryView): RetryPolicy | undefined {
  const attempts = retry.attempts ?? DEFAULT_RETRY_ATTEMPTS;
  if (attempts <= 0) return undefined;
  return {
    numRetries: attempts,
    ...statuses(retry.codes ?? []),
    retryOnConnectFailure: true,
    retryOnReset: true,
    ...(retry.backoff !== undefined && backoff(durationMs(retry.backoff), undefined)),
  };
}

/** BackendTrafficPolicy `retry` → RetryPolicy; `undefined` when numRetries is 0. */
export function policyRetry(retry: PolicyRetryView): RetryPolicy | undefined {
  const numRetries = retry.numRetries ?? DEFAULT_RETRY_ATTEMPTS;
  if (numRetries <= 0) return undefined;
  const triggers = new Set(retry.retryOn?.triggers ?? DEFAULT_TRIGGERS);
  const codes = new Set<number>();
  if (triggers.has('retriable-status-codes')) {
    for (const c of retry.retryOn?.httpStatusCodes ?? DEFAULT_STATUS_CODES) codes.add(c);
  }
  if (triggers.has('5xx')) for (const c of ALL_5XX) codes.add(c);
  if (triggers.has('gateway-error')) for (const c of GATEWAY_ERRORS) codes.add(c);
  if (triggers.has('retriable-4xx')) for (const c of RETRIABLE_4XX) codes.add(c);
  const grpcCodes = [...triggers]
    .map((t) => GRPC_TRIGGERS[t])
    .filter((c): c is number => c !== undefined)
    .sort((a, b) => a - b);
  const anyError = triggers.has('5xx') || triggers.has('gateway-error');
  const perTry = retry.perRetry?.timeout;
  const backOff = retry.perRetry?.backOff;
  return {
    numRetries,
    ...statuses(codes),
    ...(grpcCodes.length > 0 && { retryOnGrpcStatus: grpcCodes }),
    ...((anyError || triggers.has('connect-failure')) && { retryOnConnectFailure: true }),
    ...((anyError || triggers.has('reset') || triggers.has('refused-stream')) && { retryOnReset: true }),
    ...(perTry !== undefined && durationMs(perTry) > 0 && { perTryTimeoutMs: durationMs(perTry) }),
    ...backoff(
      backOff?.baseInterval === undefined ? undefined : durationMs(backOff.baseInterval),
      backOff?.maxInterval === undefined ? undefined : durationMs(backOff.maxInterval),
    ),
  };
}
