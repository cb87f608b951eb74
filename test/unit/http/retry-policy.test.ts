/**
 * The retry policy as configured and as decided, without I/O: compilation (defaults, every field's
 * validation with the route and field named), the triggers a policy retries, the verdict after a
 * retriable outcome, full-jitter back-off bounds, and the `grpc-timeout` grammar.
 */
import { describe, expect, it } from 'vitest';
import type { RetryPolicy, Route, RouteTimeouts } from '../../../sidecar/proxy/config/types.ts';
import { formatGrpcTimeout, parseGrpcTimeoutMs } from '../../../sidecar/proxy/http/grpc-timeout.ts';
import {
  backoffMs,
  errorTrigger,
  type RetryState,
  responseTrigger,
  retryVerdict,
  statusTrigger,
} from '../../../sidecar/proxy/http/retry.ts';
import { MAX_BUFFERED_BODY_BYTES } from '../../../sidecar/proxy/router/actions.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';
import { RouteConfigError } from '../../../sidecar/proxy/router/config-error.ts';
import type { CompiledRetryPolicy } from '../../../sidecar/proxy/router/types.ts';
import { TICK_MS } from '../../../sidecar/proxy/timers.ts';
import { seeded } from '../upstream/helpers.ts';

function compileRetry(
  retry: RetryPolicy | undefined,
  timeouts?: RouteTimeouts,
): CompiledRetryPolicy | undefined {
  const route: Route = {
    name: 'r',
    route: { clusters: [{ name: 'c' }] },
    ...(retry && { retry }),
    ...(timeouts && { timeouts }),
  };
  const table = compileRouteTable({
    name: 'rc',
    virtualHosts: [{ name: 'vh', domains: ['*'], routes: [route] }],
  });
  const match = table.match({ host: 'svc', path: '/', query: '', method: 'GET', headers: {} });
  if (match === undefined) throw new Error('no match');
  return match.retry;
}

function compileError(retry: RetryPolicy, timeouts?: RouteTimeouts): RouteConfigError {
  try {
    compileRetry(retry, timeouts);
  } catch (err) {
    if (err instanceof RouteConfigError) return err;
    throw err;
  }
  throw new Error('expected a RouteConfigError');
}

describe('compiling Route.retry', () => {
  it('is undefined when the route has no retry policy (only the keep-alive race retry applies)', () => {
    expect(compileRetry(undefined)).toBeUndefined();
  });

  it('applies the defaults: 25 ms base, 250 ms cap, idempotent methods, 64 KiB body buffer', () => {
    const p = compileRetry({ numRetries: 2 });
    expect(p).toEqual({
      numRetries: 2,
      retryOnStatus: new Set(),
      retryOnConnectFailure: false,
      retryOnReset: false,
      perTryTimeoutMs: 0,
      backoffBaseMs: 25,
      backoffMaxMs: 250,
      retryMethods: new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']),
      maxBufferedBodyBytes: 65_536,
      retryOnGrpcStatus: new Set(),
    });
    expect(Object.isFrozen(p)).toBe(true);
  });

  it('keeps what is configured; an unset cap is 10 × the base (Envoy)', () => {
    const p = compileRetry(
      {
        numRetries: 3,
        retryOnStatus: [500, 503, 503],
        retryOnConnectFailure: true,
        retryOnReset: true,
        perTryTimeoutMs: 400,
        backoffBaseMs: 100,
        retryMethods: ['POST', 'GET'],
        maxBufferedBodyBytes: 1024,
      },
      { requestMs: 2000 },
    );
    expect(p?.retryOnStatus).toEqual(new Set([500, 503]));
    expect(p?.retryMethods).toEqual(new Set(['POST', 'GET']));
    expect(p?.backoffMaxMs).toBe(1000);
    expect(p).toMatchObject({ retryOnConnectFailure: true, retryOnReset: true, perTryTimeoutMs: 400 });
    expect(p?.maxBufferedBodyBytes).toBe(1024);
  });

  it('keeps the gRPC statuses to retry on, without duplicates', () => {
    expect(compileRetry({ numRetries: 1, retryOnGrpcStatus: [14, 8, 14] })?.retryOnGrpcStatus).toEqual(
      new Set([14, 8]),
    );
  });

  it.each<[string, RetryPolicy, RouteTimeouts | undefined, string, RegExp]>([
    ['a fractional numRetries', { numRetries: 1.5 }, undefined, 'retry.numRetries', /non-negative integer/],
    ['a negative numRetries', { numRetries: -1 }, undefined, 'retry.numRetries', /non-negative integer/],
    [
      'a status below 400',
      { retryOnStatus: [503, 302] },
      undefined,
      'retry.retryOnStatus[1]',
      /\[400, 599\]/,
    ],
    ['a status above 599', { retryOnStatus: [600] }, undefined, 'retry.retryOnStatus[0]', /\[400, 599\]/],
    [
      'a gRPC status above 16',
      { retryOnGrpcStatus: [14, 17] },
      undefined,
      'retry.retryOnGrpcStatus[1]',
      /gRPC status code, an integer in \[0, 16\]/,
    ],
    [
      'a negative gRPC status',
      { retryOnGrpcStatus: [-1] },
      undefined,
      'retry.retryOnGrpcStatus[0]',
      /gRPC status code/,
    ],
    [
      'a negative per-try timeout',
      { perTryTimeoutMs: -5 },
      undefined,
      'retry.perTryTimeoutMs',
      /non-negative/,
    ],
    [
      'a per-try timeout above the request timeout',
      { perTryTimeoutMs: 3000 },
      { requestMs: 2000 },
      'retry.perTryTimeoutMs',
      /must not exceed timeouts.requestMs 2000/,
    ],
    ['a fractional base', { backoffBaseMs: 2.5 }, undefined, 'retry.backoffBaseMs', /non-negative integer/],
    [
      'a cap below the base',
      { backoffBaseMs: 100, backoffMaxMs: 50 },
      undefined,
      'retry.backoffMaxMs',
      /must not be below backoffBaseMs 100/,
    ],
    [
      'a method that is not a token',
      { retryMethods: ['GET', 'PO ST'] },
      undefined,
      'retry.retryMethods[1]',
      /not a valid method/,
    ],
    ['an empty method', { retryMethods: [''] }, undefined, 'retry.retryMethods[0]', /not a valid method/],
    [
      'a body buffer over the limit',
      { maxBufferedBodyBytes: MAX_BUFFERED_BODY_BYTES + 1 },
      undefined,
      'retry.maxBufferedBodyBytes',
      /exceeds the limit/,
    ],
    [
      'a negative body buffer',
      { maxBufferedBodyBytes: -1 },
      undefined,
      'retry.maxBufferedBodyBytes',
      /non-negative/,
    ],
  ])('rejects %s, naming the route and field', (_name, retry, timeouts, field, reason) => {
    const err = compileError(retry, timeouts);
    expect(err.field).toBe(field);
    expect(err.route).toBe('r');
    expect(err.message).toMatch(reason);
  });

  it('accepts a per-try timeout equal to the request timeout, or any without a request timeout', () => {
    expect(compileRetry({ perTryTimeoutMs: 2000 }, { requestMs: 2000 })?.perTryTimeoutMs).toBe(2000);
    expect(compileRetry({ perTryTimeoutMs: 60_000 })?.perTryTimeoutMs).toBe(60_000);
  });
});

const policy = compileRetry({
  numRetries: 2,
  retryOnStatus: [429, 503],
  retryOnConnectFailure: true,
  backoffBaseMs: 25,
  backoffMaxMs: 250,
}) as CompiledRetryPolicy;

describe('retry triggers', () => {
  it('names the status class of a listed status, nothing for others', () => {
    expect(statusTrigger(policy, 503)).toBe('5xx');
    expect(statusTrigger(policy, 429)).toBe('4xx');
    expect(statusTrigger(policy, 500)).toBeUndefined();
    expect(statusTrigger(policy, 200)).toBeUndefined();
  });

  it('names a Trailers-Only gRPC status the policy lists, only for gRPC requests', () => {
    const grpc = compileRetry({
      numRetries: 1,
      retryOnStatus: [503],
      retryOnGrpcStatus: [14, 8],
    }) as CompiledRetryPolicy;
    const head = (status: string) => ({ 'content-type': 'application/grpc', 'grpc-status': status });
    expect(responseTrigger(grpc, 200, head('14'), true)).toBe('grpc_unavailable');
    expect(responseTrigger(grpc, 200, head('8'), true)).toBe('grpc_resource_exhausted');
    expect(responseTrigger(grpc, 200, head('13'), true)).toBeUndefined();
    expect(responseTrigger(grpc, 200, head('14'), false)).toBeUndefined();
    expect(responseTrigger(grpc, 200, { 'content-type': 'application/grpc' }, true)).toBeUndefined();
    expect(responseTrigger(grpc, 503, {}, true)).toBe('5xx');
    expect(responseTrigger(policy, 200, head('14'), true)).toBeUndefined();
  });

  it.each([
    ['UPSTREAM_CONNECT_FAILURE', 'connect_failure'],
    ['UPSTREAM_RESET', undefined], // retryOnReset is off in this policy
    ['UPSTREAM_TIMEOUT', 'per_try_timeout'],
    ['REQUEST_TIMEOUT', undefined],
    ['UPSTREAM_PROTOCOL_ERROR', undefined],
    ['DOWNSTREAM_DISCONNECT', undefined],
  ] as const)('maps %s to %s', (kind, trigger) => {
    expect(errorTrigger(policy, kind)).toBe(trigger);
  });
});

describe('retry verdict', () => {
  const base: RetryState = { attempt: 1, method: 'GET', replayable: true, remainingMs: 10_000, delayMs: 20 };

  it.each<[string, Partial<RetryState>, ReturnType<typeof retryVerdict>]>([
    ['an attempt left', {}, 'retry'],
    ['no deadline at all', { remainingMs: Number.POSITIVE_INFINITY }, 'retry'],
    ['the last attempt used (not counted)', { attempt: 3 }, undefined],
    ['a method the policy does not retry (not counted)', { method: 'POST' }, undefined],
    [
      'a POST retried on a gRPC status (any method)',
      { method: 'POST', trigger: 'grpc_unavailable' },
      'retry',
    ],
    ['a POST retried on a status class (not counted)', { method: 'POST', trigger: '5xx' }, undefined],
    [
      'a gRPC POST retried on a connect failure',
      { method: 'POST', trigger: 'connect_failure', grpc: true },
      'retry',
    ],
    ['a gRPC POST not retried on a reset', { method: 'POST', trigger: 'reset', grpc: true }, undefined],
    [
      'a plain POST not retried on a connect failure',
      { method: 'POST', trigger: 'connect_failure' },
      undefined,
    ],
    [
      'a gRPC status retry with no attempt left',
      { method: 'POST', trigger: 'grpc_unavailable', attempt: 3 },
      undefined,
    ],
    ['a body not buffered', { replayable: false }, 'body_not_replayable'],
    ['a back-off ending after the deadline', { remainingMs: 100, delayMs: 90 }, 'no_time_left'],
    [
      'a back-off ending within a tick of the deadline',
      { remainingMs: 20 + TICK_MS, delayMs: 20 },
      'no_time_left',
    ],
    [
      'a back-off ending just over a tick before the deadline',
      { remainingMs: 21 + TICK_MS, delayMs: 20 },
      'retry',
    ],
  ])('%s → %s', (_name, change, verdict) => {
    expect(retryVerdict(policy, { ...base, ...change })).toBe(verdict);
  });
});

describe('back-off', () => {
  it('stays within [0, min(max, base × (2^n − 1))) for every retry, over 10 000 draws', () => {
    const random = seeded(7);
    for (let n = 1; n <= 12; n++) {
      const ceiling = Math.min(250, 25 * (2 ** n - 1));
      let lo = Number.POSITIVE_INFINITY;
      let hi = 0;
      for (let i = 0; i < 10_000; i++) {
        const d = backoffMs(policy, n, random());
        expect(Number.isInteger(d)).toBe(true);
        lo = Math.min(lo, d);
        hi = Math.max(hi, d);
      }
      expect(lo).toBeGreaterThanOrEqual(0);
      expect(hi).toBeLessThan(ceiling);
      // Full jitter covers the range: the draws reach both ends.
      expect(lo).toBeLessThan(ceiling * 0.01 + 1);
      expect(hi).toBeGreaterThan(ceiling * 0.99 - 1);
    }
  });

  it('grows exponentially to the cap: ceilings 25, 75, 175, then 250', () => {
    const almostOne = 0.999_999;
    expect([1, 2, 3, 4, 5, 40].map((n) => backoffMs(policy, n, almostOne))).toEqual([
      24, 74, 174, 249, 249, 249,
    ]);
  });
});

describe('grpc-timeout', () => {
  it.each([
    ['1H', 3_600_000],
    ['2M', 120_000],
    ['5S', 5000],
    ['250m', 250],
    ['1500u', 1.5],
    ['3000000n', 3],
    ['99999999m', 99_999_999],
    ['0m', 0],
  ])('parses %s as %d ms', (value, ms) => {
    expect(parseGrpcTimeoutMs(value)).toBe(ms);
  });

  it.each([['123456789m'], ['5s'], ['S'], ['-1S'], ['1.5S'], [' 5S'], ['5 S'], ['']])(
    'rejects %j',
    (value) => {
      expect(parseGrpcTimeoutMs(value)).toBeUndefined();
    },
  );

  it('ignores an absent or repeated header', () => {
    expect(parseGrpcTimeoutMs(undefined)).toBeUndefined();
    expect(parseGrpcTimeoutMs(['1S', '2S'])).toBeUndefined();
  });

  it.each([
    [4999.9, '4999m'],
    [0, '0m'],
    [-20, '0m'],
    [99_999_999, '99999999m'],
    [100_000_000, '100000S'],
    [99_999_999_999, '99999999S'],
    [100_000_000_000, '1666666M'],
    [1e15, '99999999H'],
  ])('formats %d ms as %s (rounded down, at most 8 digits)', (ms, value) => {
    expect(formatGrpcTimeout(ms)).toBe(value);
    expect(value).toMatch(/^\d{1,8}[HMSmun]$/);
  });
});
