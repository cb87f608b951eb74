/**
 * Config validation of the resilience fields (issue 5), table-driven, each rejection naming
 * resource, field and reason: BackendTrafficPolicy `retry`, `timeout`, `circuitBreaker` (with
 * `errorRate`), `outlierDetection`, `healthCheck` and `faultInjection`; HTTPRoute `retry`
 * (GEP-1731) and `RequestMirror`. Defaults apply only inside sections that are present.
 */
import { describe, expect, it } from 'vitest';
import { doc, errorsOf, specOf } from './helpers.ts';

const btp = (spec: Record<string, unknown>) =>
  doc('BackendTrafficPolicy', { targetRefs: [{ kind: 'Service', name: 'reviews' }], ...spec }, 'p');
const B = 'BackendTrafficPolicy default/p: spec';
const rule = (r: Record<string, unknown>) =>
  doc(
    'HTTPRoute',
    {
      parentRefs: [{ group: '', kind: 'Service', name: 'reviews', port: 9080 }],
      rules: [{ backendRefs: [{ name: 'reviews-v1', port: 9080 }], ...r }],
    },
    'reviews',
  );
const P = 'HTTPRoute default/reviews: spec.rules[0]';
const mirror = (m: Record<string, unknown>) =>
  rule({ filters: [{ type: 'RequestMirror', requestMirror: m }] });

describe('BackendTrafficPolicy resilience fields', () => {
  it('accepts every field and fills the defaults of errorRate and faultInjection', () => {
    const spec = specOf(
      btp({
        retry: {
          numRetries: 3,
          perRetry: { timeout: '250ms', backOff: { baseInterval: '10ms', maxInterval: '1s' } },
          retryOn: { triggers: ['5xx', 'retriable-status-codes'], httpStatusCodes: [429] },
          budget: { percent: 12.5, minRetriesPerSecond: 5 },
        },
        timeout: {
          tcp: { connectTimeout: '2s', idleTimeout: '1h' },
          http: { requestTimeout: '10s', connectionIdleTimeout: '1m' },
        },
        circuitBreaker: { errorRate: { thresholdPercent: 50 } },
        faultInjection: { delay: { fixedDelay: '2s' }, abort: { httpStatus: 503, percentage: 0.5 } },
      }),
    ) as Record<string, unknown>;
    expect(spec.circuitBreaker).toEqual({
      maxConnections: 1024,
      maxPendingRequests: 1024,
      maxParallelRequests: 1024,
      maxParallelRetries: 1024,
      errorRate: { thresholdPercent: 50, volumeThreshold: 20, resetTimeout: '10s', window: '10s' },
    });
    expect(spec.faultInjection).toEqual({
      delay: { fixedDelay: '2s', percentage: 100 },
      abort: { httpStatus: 503, percentage: 0.5 },
    });
    expect(spec.timeout).toEqual({
      tcp: { connectTimeout: '2s', idleTimeout: '1h' },
      http: { requestTimeout: '10s', connectionIdleTimeout: '1m' },
    });
  });

  it.each([
    [
      'an error rate of 0 %',
      { circuitBreaker: { errorRate: { thresholdPercent: 0 } } },
      [`${B}.circuitBreaker.errorRate.thresholdPercent: must be an integer 1..100 (got 0)`],
    ],
    [
      'an error rate without its threshold',
      { circuitBreaker: { errorRate: { volumeThreshold: 5 } } },
      [`${B}.circuitBreaker.errorRate.thresholdPercent: is required`],
    ],
    [
      'a zero volume threshold',
      { circuitBreaker: { errorRate: { thresholdPercent: 50, volumeThreshold: 0 } } },
      [`${B}.circuitBreaker.errorRate.volumeThreshold: must be an integer 1..1000000 (got 0)`],
    ],
    [
      'a zero reset timeout',
      { circuitBreaker: { errorRate: { thresholdPercent: 50, resetTimeout: '0s' } } },
      [
        `${B}.circuitBreaker.errorRate.resetTimeout: must be a duration of at least 1ms such as 10s, 1m30s or 500ms (GEP-2257) (got "0s")`,
      ],
    ],
    [
      'a window as a number',
      { circuitBreaker: { errorRate: { thresholdPercent: 50, window: 10 } } },
      [
        `${B}.circuitBreaker.errorRate.window: must be a duration of at least 1ms such as 10s, 1m30s or 500ms (GEP-2257) (got number 10)`,
      ],
    ],
    [
      'opossum spelling of the threshold',
      { circuitBreaker: { errorRate: { errorThresholdPercentage: 50 } } },
      [
        `${B}.circuitBreaker.errorRate.errorThresholdPercentage: unknown field (known: thresholdPercent, volumeThreshold, resetTimeout, window)`,
        `${B}.circuitBreaker.errorRate.thresholdPercent: is required`,
      ],
    ],
    [
      'an empty faultInjection',
      { faultInjection: {} },
      [`${B}.faultInjection: must set delay, abort or both`],
    ],
    [
      'a delay without fixedDelay',
      { faultInjection: { delay: { percentage: 10 } } },
      [`${B}.faultInjection.delay.fixedDelay: is required`],
    ],
    [
      'a zero fixedDelay',
      { faultInjection: { delay: { fixedDelay: '0s' } } },
      [
        `${B}.faultInjection.delay.fixedDelay: must be a duration of at least 1ms such as 10s, 1m30s or 500ms (GEP-2257) (got "0s")`,
      ],
    ],
    [
      'a delay percentage over 100',
      { faultInjection: { delay: { fixedDelay: '1s', percentage: 120 } } },
      [`${B}.faultInjection.delay.percentage: must be a number 0..100 (got 120)`],
    ],
    [
      'an abort status below 200',
      { faultInjection: { abort: { httpStatus: 100 } } },
      [`${B}.faultInjection.abort.httpStatus: must be an integer 200..599 (got 100)`],
    ],
    [
      'an abort without httpStatus',
      { faultInjection: { abort: { percentage: 5 } } },
      [`${B}.faultInjection.abort.httpStatus: is required`],
    ],
    [
      'a gRPC abort (not supported)',
      { faultInjection: { abort: { grpcStatus: 14 } } },
      [
        `${B}.faultInjection.abort.grpcStatus: unknown field (known: httpStatus, percentage)`,
        `${B}.faultInjection.abort.httpStatus: is required`,
      ],
    ],
    [
      'a negative abort percentage',
      { faultInjection: { abort: { httpStatus: 503, percentage: -1 } } },
      [`${B}.faultInjection.abort.percentage: must be a number 0..100 (got -1)`],
    ],
    [
      'a request timeout that is not a duration',
      { timeout: { http: { requestTimeout: 'soon' } } },
      [
        `${B}.timeout.http.requestTimeout: must be a duration such as 10s, 1m30s or 500ms (GEP-2257) (got "soon")`,
      ],
    ],
    [
      'an unknown timeout section',
      { timeout: { grpc: {} } },
      [`${B}.timeout.grpc: unknown field (known: tcp, http)`],
    ],
    [
      'a budget percent as a string',
      { retry: { budget: { percent: '20' } } },
      [`${B}.retry.budget.percent: must be a number 0..100 (got string "20")`],
    ],
    [
      'a negative outlier interval',
      { outlierDetection: { interval: '-1s' } },
      [
        `${B}.outlierDetection.interval: must be a duration of at least 1ms such as 10s, 1m30s or 500ms (GEP-2257) (got "-1s")`,
      ],
    ],
    [
      'zero health check thresholds',
      { healthCheck: { active: { type: 'HTTP', http: { path: '/h' }, healthyThreshold: 0 } } },
      [`${B}.healthCheck.active.healthyThreshold: must be an integer 1..1000 (got 0)`],
    ],
  ])('rejects %s', (_name, spec, expected) => {
    expect(errorsOf(btp(spec))).toEqual(expected);
  });
});

describe('HTTPRoute retry (GEP-1731) and RequestMirror', () => {
  it('accepts codes, attempts and backoff, and attempts 0 (retries off)', () => {
    expect(
      errorsOf(rule({ retry: { codes: [500, 502, 503, 504, 429], attempts: 3, backoff: '100ms' } })),
    ).toEqual([]);
    expect(errorsOf(rule({ retry: { attempts: 0 } }))).toEqual([]);
    expect(errorsOf(rule({ retry: {} }))).toEqual([]);
  });

  it.each([
    ['negative attempts', { attempts: -1 }, [`${P}.retry.attempts: must be an integer 0..100 (got -1)`]],
    [
      'more than 100 attempts',
      { attempts: 101 },
      [`${P}.retry.attempts: must be an integer 0..100 (got 101)`],
    ],
    ['a code below 400', { codes: [399] }, [`${P}.retry.codes[0]: must be >= 400 (got 399)`]],
    [
      'a backoff that is not a duration',
      { backoff: 'soon' },
      [`${P}.retry.backoff: must be a duration such as 10s, 1m30s or 500ms (GEP-2257) (got "soon")`],
    ],
  ])('rejects %s', (_name, retry, expected) => {
    expect(errorsOf(rule({ retry }))).toEqual(expected);
  });

  it('accepts a mirror with percent, with fraction, or neither', () => {
    const backendRef = { name: 'reviews-shadow', port: 9080 };
    expect(errorsOf(mirror({ backendRef, percent: 25 }))).toEqual([]);
    expect(errorsOf(mirror({ backendRef, fraction: { numerator: 1, denominator: 8 } }))).toEqual([]);
    expect(errorsOf(mirror({ backendRef }))).toEqual([]);
  });

  it.each([
    [
      'a mirror Service without a port',
      { backendRef: { name: 'shadow' } },
      [`${P}.filters[0].requestMirror.backendRef.port: is required for a Service backend`],
    ],
    [
      'a mirror percent over 100',
      { backendRef: { name: 'shadow', port: 80 }, percent: 101 },
      [`${P}.filters[0].requestMirror.percent: must be <= 100 (got 101)`],
    ],
  ])('rejects %s', (_name, m, expected) => {
    expect(errorsOf(mirror(m))).toEqual(expected);
  });
});
