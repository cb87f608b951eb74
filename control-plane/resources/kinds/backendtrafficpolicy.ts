/**
 * `BackendTrafficPolicy` (weft.dev/v1alpha1): how clients of the target Services reach them.
 * Field names follow Envoy Gateway's BackendTrafficPolicy; durations are GEP-2257 strings.
 *
 * ```yaml
 * spec:
 *   targetRefs: [{kind: Service, name: reviews}]          # 1..16 Services ("" / core group)
 *   loadBalancer: {type: ConsistentHash, consistentHash: {type: Header, header: {name: x-user}}}
 *                                                         # RoundRobin | LeastRequest | Random | ConsistentHash
 *   retry:
 *     numRetries: 2                                       # default 2 (0..100)
 *     perRetry: {timeout: 500ms, backOff: {baseInterval: 25ms, maxInterval: 250ms}}
 *     retryOn: {triggers: [connect-failure, reset, retriable-status-codes], httpStatusCodes: [503]}
 *                                                         # gRPC: cancelled, deadline-exceeded, internal,
 *                                                         #   resource-exhausted, unavailable
 *     budget: {percent: 20, minRetriesPerSecond: 3}       # defaults 20 % and 3 (Envoy's)
 *   timeout: {tcp: {connectTimeout: 2s, idleTimeout: 1h}, http: {requestTimeout: 10s, connectionIdleTimeout: 1h}}
 *                                                         # tcp.idleTimeout: TCP services (appProtocol tcp), default 1h
 *   circuitBreaker: {maxConnections: 1024, maxPendingRequests: 1024, maxParallelRequests: 1024, maxParallelRetries: 1024,
 *                    errorRate: {thresholdPercent: 50, volumeThreshold: 20, resetTimeout: 10s, window: 10s}}
 *   outlierDetection: {consecutive5xxErrors: 5, consecutiveGatewayErrors: 0, interval: 3s, baseEjectionTime: 30s, maxEjectionPercent: 10}
 *   healthCheck:
 *     active: {type: HTTP, http: {path: /healthz}, interval: 3s, timeout: 1s, healthyThreshold: 1, unhealthyThreshold: 3}
 *   faultInjection:                                       # per route, Envoy Gateway's names
 *     delay: {fixedDelay: 2s, percentage: 10}             # percentage 0..100, default 100
 *     abort: {httpStatus: 503, percentage: 5}             # httpStatus 200..599
 * ```
 * `circuitBreaker.errorRate` is Weft's addition (Envoy Gateway has no error-rate breaker): an
 * opossum/Hystrix-style breaker per endpoint that opens when, within `window`, at least
 * `volumeThreshold` requests were made and `thresholdPercent` % of them failed, and lets one probe
 * through after `resetTimeout`.
 * Defaults (filled in only inside a section that is present) are Envoy Gateway's. Cross-field
 * rules: consistentHash is set exactly when type is ConsistentHash; backOff.maxInterval >=
 * baseInterval; httpStatusCodes need the retriable-status-codes trigger when triggers are listed;
 * an active health check's timeout does not exceed its interval; faultInjection sets delay, abort
 * or both.
 */
import { parseDurationMs } from '../duration.ts';
import { headerName } from '../names.ts';
import { duration, enumOf, int, list, num, obj, optional, type Schema, str, withDefault } from '../schema.ts';
import type { BackendTrafficPolicySpec, RetryTrigger } from '../types.ts';
import type { KindHandler } from './kind.ts';
import { targetRefs } from './policy-common.ts';

const TRIGGERS = [
  '5xx',
  'gateway-error',
  'reset',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const satisfies readonly RetryTrigger[];

const positive = duration({ min: '1ms' });
const count = int(0, 4294967295);

const loadBalancer = obj(
  {
    type: enumOf('RoundRobin', 'LeastRequest', 'Random', 'ConsistentHash'),
    consistentHash: optional(obj({ type: enumOf('Header'), header: obj({ name: headerName }) })),
  },
  {
    refine: (lb, path, issues) => {
      if (lb.type === 'ConsistentHash' && lb.consistentHash === undefined)
        issues.add(`${path}.consistentHash`, 'is required when type is ConsistentHash');
      if (lb.type !== 'ConsistentHash' && lb.consistentHash !== undefined)
        issues.add(`${path}.consistentHash`, `must not be set when type is ${lb.type}`);
    },
  },
);

const backOff = obj(
  { baseInterval: optional(positive), maxInterval: optional(positive) },
  {
    refine: (b, path, issues) => {
      if (
        b.baseInterval !== undefined &&
        b.maxInterval !== undefined &&
        parseDurationMs(b.maxInterval) < parseDurationMs(b.baseInterval)
      ) {
        issues.add(
          `${path}.maxInterval`,
          `must be at least baseInterval (${b.baseInterval}) (got ${b.maxInterval})`,
        );
      }
    },
  },
);

const retry = obj({
  numRetries: withDefault(int(0, 100), 2),
  perRetry: optional(obj({ timeout: optional(positive), backOff: optional(backOff) })),
  retryOn: optional(
    obj(
      {
        httpStatusCodes: optional(
          list(int(100, 599), { maxItems: 32, uniqueBy: [{ key: String, what: 'status code' }] }),
        ),
        triggers: optional(list(enumOf(...TRIGGERS), { uniqueBy: [{ key: String, what: 'trigger' }] })),
      },
      {
        refine: (r, path, issues) => {
          if (
            r.httpStatusCodes !== undefined &&
            r.triggers !== undefined &&
            !r.triggers.includes('retriable-status-codes')
          ) {
            issues.add(
              `${path}.triggers`,
              'must include retriable-status-codes when httpStatusCodes are set',
            );
          }
        },
      },
    ),
  ),
  budget: optional(
    obj({ percent: withDefault(num(0, 100), 20), minRetriesPerSecond: withDefault(int(0, 100000), 3) }),
  ),
});

const activeHealthCheck = obj(
  {
    type: enumOf('HTTP'),
    http: obj({
      path: str({ describe: 'an absolute path such as /healthz', pattern: /^\/[^\s?#]*$/, maxLength: 1024 }),
    }),
    interval: withDefault(positive, '3s'),
    timeout: withDefault(positive, '1s'),
    healthyThreshold: withDefault(int(1, 1000), 1),
    unhealthyThreshold: withDefault(int(1, 1000), 3),
  },
  {
    refine: (h, path, issues) => {
      if (parseDurationMs(h.timeout) > parseDurationMs(h.interval)) {
        issues.add(`${path}.timeout`, `must not exceed interval (${h.interval}) (got ${h.timeout})`);
      }
    },
  },
);

const errorRate = obj({
  thresholdPercent: int(1, 100),
  volumeThreshold: withDefault(int(1, 1_000_000), 20),
  resetTimeout: withDefault(positive, '10s'),
  window: withDefault(positive, '10s'),
});

const percentage = withDefault(num(0, 100), 100);

const faultInjection = obj(
  {
    delay: optional(obj({ fixedDelay: positive, percentage })),
    abort: optional(obj({ httpStatus: int(200, 599), percentage })),
  },
  {
    refine: (f, path, issues) => {
      if (f.delay === undefined && f.abort === undefined) issues.add(path, 'must set delay, abort or both');
    },
  },
);

export const backendTrafficPolicySpecSchema: Schema<BackendTrafficPolicySpec> = obj({
  targetRefs: targetRefs(['Service']),
  loadBalancer: optional(loadBalancer),
  retry: optional(retry),
  timeout: optional(
    obj({
      tcp: optional(obj({ connectTimeout: optional(positive), idleTimeout: optional(positive) })),
      http: optional(
        obj({ requestTimeout: optional(duration()), connectionIdleTimeout: optional(duration()) }),
      ),
    }),
  ),
  circuitBreaker: optional(
    obj({
      maxConnections: withDefault(count, 1024),
      maxPendingRequests: withDefault(count, 1024),
      maxParallelRequests: withDefault(count, 1024),
      maxParallelRetries: withDefault(count, 1024),
      errorRate: optional(errorRate),
    }),
  ),
  outlierDetection: optional(
    obj({
      consecutive5xxErrors: withDefault(count, 5),
      consecutiveGatewayErrors: withDefault(count, 0),
      interval: withDefault(positive, '3s'),
      baseEjectionTime: withDefault(positive, '30s'),
      maxEjectionPercent: withDefault(int(0, 100), 10),
    }),
  ),
  healthCheck: optional(obj({ active: optional(activeHealthCheck) })),
  faultInjection: optional(faultInjection),
});

export const backendTrafficPolicy: KindHandler = {
  check: (spec, _ctx, issues) => backendTrafficPolicySpecSchema.check(spec, 'spec', issues),
};
