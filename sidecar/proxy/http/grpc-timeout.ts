/**
 * The gRPC deadline header, `grpc-timeout` (gRPC over HTTP/2, "Requests":
 * `Timeout → "grpc-timeout" TimeoutValue TimeoutUnit`, the value a positive integer of at most 8
 * ASCII digits, the unit one of `H` hours, `M` minutes, `S` seconds, `m` milliseconds, `u`
 * microseconds, `n` nanoseconds).
 *
 * The forwarder treats a valid `grpc-timeout` as a second request deadline beside the route's
 * request timeout and rewrites it on every attempt to the time actually left, so an upstream sees
 * its deadline shrink across retries (as Envoy does).
 *
 * Invariants: parsing accepts exactly the spec's grammar (anything else is `undefined`: the header
 * is then forwarded untouched and not enforced); formatting never promises more time than is
 * left (values are rounded down) and always fits the 8-digit limit, in the finest unit that fits.
 */

const GRAMMAR = /^(\d{1,8})([HMSmun])$/;

/** Milliseconds per unit. */
const UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/** Largest TimeoutValue (8 digits). */
const MAX_VALUE = 99_999_999;

/**
 * The timeout of a `grpc-timeout` header value in milliseconds (may be fractional for `u`/`n`),
 * or `undefined` when the header is absent, repeated or does not follow the grammar.
 */
export function parseGrpcTimeoutMs(value: string | readonly string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = GRAMMAR.exec(value);
  if (m === null) return undefined;
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

/**
 * A `grpc-timeout` value for `remainingMs` (rounded down, never negative): milliseconds while they
 * fit in 8 digits, else seconds, minutes, hours (capped at 99999999H).
 */
export function formatGrpcTimeout(remainingMs: number): string {
  const ms = Math.max(0, Math.floor(remainingMs));
  if (ms <= MAX_VALUE) return `${ms}m`;
  const s = Math.floor(ms / 1000);
  if (s <= MAX_VALUE) return `${s}S`;
  const min = Math.floor(s / 60);
  if (min <= MAX_VALUE) return `${min}M`;
  return `${Math.min(MAX_VALUE, Math.floor(min / 60))}H`;
}
