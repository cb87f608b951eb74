/**
 * Validation and defaults of the cluster resilience settings (resolve.ts with breakers.ts, budget.ts,
 * outlier.ts, health-check.ts): every field takes its default at 0 or when absent, keeps a valid
 * value, and a bad value is rejected at update time with the cluster and the field named — leaving the
 * previous config in force.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Cluster } from '../../../sidecar/proxy/config/types.ts';
import { DEFAULT_CIRCUIT_BREAKERS } from '../../../sidecar/proxy/upstream/breakers.ts';
import { DEFAULT_RETRY_BUDGET } from '../../../sidecar/proxy/upstream/budget.ts';
import { ClusterManager } from '../../../sidecar/proxy/upstream/cluster-manager.ts';
import { DEFAULT_HEALTH_CHECK } from '../../../sidecar/proxy/upstream/health-check.ts';
import { DEFAULT_OUTLIER_DETECTION } from '../../../sidecar/proxy/upstream/outlier.ts';
import { resolveConfig } from '../../../sidecar/proxy/upstream/resolve.ts';

const resolve = (c: Omit<Cluster, 'name'>) => resolveConfig([{ name: 'web', ...c }], [])[0]!;
const TOO_LONG_MS = 2 ** 31;

describe('resilience defaults', () => {
  it('applies Envoy Gateway circuit-breaker and Linkerd budget defaults, and leaves detection and checks off', () => {
    const rc = resolve({});
    expect(rc.circuitBreakers).toEqual(DEFAULT_CIRCUIT_BREAKERS);
    expect(rc.circuitBreakers).toMatchObject({
      maxConnections: 1024,
      maxPendingRequests: 1024,
      maxRequests: 1024,
      maxRetries: 1024,
      errorThresholdPercent: 0,
      volumeThreshold: 20,
      resetTimeoutMs: 10_000,
      windowMs: 10_000,
    });
    expect(rc.retryBudget).toEqual({ percent: 20, minRetriesPerSecond: 10, windowMs: 10_000 });
    expect(rc.retryBudget).toEqual(DEFAULT_RETRY_BUDGET);
    expect(rc.outlierDetection).toBeUndefined();
    expect(rc.healthCheck).toBeUndefined();
    expect(rc.panicThresholdPercent).toBe(50);
    expect(rc.configured).toEqual({ circuitBreakers: false, retryBudget: false });
  });

  it('treats 0 as unset (proto3) and keeps given values', () => {
    const rc = resolve({
      circuitBreakers: { maxConnections: 0, maxRequests: 7, errorThresholdPercent: 25, windowMs: 2000 },
      outlierDetection: { consecutiveGatewayErrors: 2, intervalMs: 0, panicThresholdPercent: 30 },
      healthCheck: { path: '/healthz?deep=1', timeoutMs: 250 },
      retryBudget: { percent: 0, minRetriesPerSecond: 3 },
    });
    expect(rc.circuitBreakers).toEqual({
      ...DEFAULT_CIRCUIT_BREAKERS,
      maxRequests: 7,
      errorThresholdPercent: 25,
      windowMs: 2000,
    });
    expect(rc.outlierDetection).toEqual({ ...DEFAULT_OUTLIER_DETECTION, consecutiveGatewayErrors: 2 });
    expect(rc.panicThresholdPercent).toBe(30);
    expect(rc.healthCheck).toEqual({ ...DEFAULT_HEALTH_CHECK, path: '/healthz?deep=1', timeoutMs: 250 });
    expect(rc.retryBudget).toEqual({ percent: 20, minRetriesPerSecond: 3, windowMs: 10_000 });
    expect(rc.configured).toEqual({ circuitBreakers: true, retryBudget: true });
  });

  it('makes pools anew (a new fingerprint) only when maxConnections changes', () => {
    const base = resolve({}).poolFingerprint;
    expect(resolve({ circuitBreakers: { maxRequests: 5, errorThresholdPercent: 10 } }).poolFingerprint).toBe(
      base,
    );
    expect(resolve({ circuitBreakers: { maxConnections: 5 } }).poolFingerprint).not.toBe(base);
  });
});

type Case = [string, Omit<Cluster, 'name'>, RegExp];

const uint32 = (section: string, field: string, over = 2 ** 32): Case[] => [
  [
    `${section}.${field} negative`,
    { [section]: { [field]: -1 } },
    new RegExp(`${section}\\.${field} must be`),
  ],
  [
    `${section}.${field} fractional`,
    { [section]: { [field]: 1.5 } },
    new RegExp(`${section}\\.${field} must be`),
  ],
  [
    `${section}.${field} a string`,
    { [section]: { [field]: '10' } },
    new RegExp(`${section}\\.${field} must be`),
  ],
  [
    `${section}.${field} too large`,
    { [section]: { [field]: over } },
    new RegExp(`${section}\\.${field} must be`),
  ],
];

const bad: Case[] = [
  ...uint32('circuitBreakers', 'maxConnections'),
  ...uint32('circuitBreakers', 'maxPendingRequests'),
  ...uint32('circuitBreakers', 'maxRequests'),
  ...uint32('circuitBreakers', 'maxRetries'),
  ...uint32('circuitBreakers', 'errorThresholdPercent', 101),
  ...uint32('circuitBreakers', 'volumeThreshold'),
  ...uint32('circuitBreakers', 'resetTimeoutMs', TOO_LONG_MS),
  ...uint32('circuitBreakers', 'windowMs', TOO_LONG_MS),
  [
    'circuitBreakers.windowMs below 10 buckets',
    { circuitBreakers: { windowMs: 9 } },
    /circuitBreakers\.windowMs must be .*10-/,
  ],
  ...uint32('outlierDetection', 'consecutiveServerErrors'),
  ...uint32('outlierDetection', 'consecutiveGatewayErrors'),
  ...uint32('outlierDetection', 'intervalMs', TOO_LONG_MS),
  ...uint32('outlierDetection', 'baseEjectionTimeMs', TOO_LONG_MS),
  ...uint32('outlierDetection', 'maxEjectionPercent', 101),
  ...uint32('outlierDetection', 'successRateMinimumHosts'),
  ...uint32('outlierDetection', 'successRateRequestVolume'),
  ...uint32('outlierDetection', 'successRateStdevFactor', 100_001),
  ...uint32('outlierDetection', 'panicThresholdPercent', 101),
  ...uint32('retryBudget', 'percent', 1001),
  ...uint32('retryBudget', 'minRetriesPerSecond'),
  ...uint32('retryBudget', 'windowMs', TOO_LONG_MS),
  [
    'retryBudget.windowMs below 10 buckets',
    { retryBudget: { windowMs: 5 } },
    /retryBudget\.windowMs must be/,
  ],
  ...uint32('healthCheck', 'intervalMs', TOO_LONG_MS).map(([n, c, r]): Case => [n, withPath(c), r]),
  ...uint32('healthCheck', 'timeoutMs', TOO_LONG_MS).map(([n, c, r]): Case => [n, withPath(c), r]),
  ...uint32('healthCheck', 'healthyThreshold').map(([n, c, r]): Case => [n, withPath(c), r]),
  ...uint32('healthCheck', 'unhealthyThreshold').map(([n, c, r]): Case => [n, withPath(c), r]),
  [
    'healthCheck without path',
    { healthCheck: {} as NonNullable<Cluster['healthCheck']> },
    /healthCheck\.path must be/,
  ],
  ['healthCheck.path empty', { healthCheck: { path: '' } }, /healthCheck\.path must be/],
  ['healthCheck.path relative', { healthCheck: { path: 'healthz' } }, /healthCheck\.path must be/],
  [
    'healthCheck.path absolute-form',
    { healthCheck: { path: 'http://x/healthz' } },
    /healthCheck\.path must be/,
  ],
  ['healthCheck.path with a space', { healthCheck: { path: '/a b' } }, /healthCheck\.path must be/],
  ['healthCheck.path with a fragment', { healthCheck: { path: '/a#b' } }, /healthCheck\.path must be/],
  [
    'healthCheck.path too long',
    { healthCheck: { path: `/${'a'.repeat(2048)}` } },
    /healthCheck\.path must be/,
  ],
  [
    'circuitBreakers not an object',
    { circuitBreakers: 5 as unknown as NonNullable<Cluster['circuitBreakers']> },
    /circuitBreakers must be an object/,
  ],
  [
    'outlierDetection null',
    { outlierDetection: null as unknown as NonNullable<Cluster['outlierDetection']> },
    /outlierDetection must be an object/,
  ],
  [
    'retryBudget an array',
    { retryBudget: [] as unknown as NonNullable<Cluster['retryBudget']> },
    /retryBudget must be an object/,
  ],
  [
    'healthCheck a string',
    { healthCheck: '/healthz' as unknown as NonNullable<Cluster['healthCheck']> },
    /healthCheck must be an object/,
  ],
];

function withPath(c: Omit<Cluster, 'name'>): Omit<Cluster, 'name'> {
  return { healthCheck: { path: '/healthz', ...c.healthCheck } };
}

describe('resilience validation', () => {
  const managers: ClusterManager[] = [];
  afterEach(async () => {
    await Promise.all(managers.splice(0).map((m) => m.close()));
  });

  it.each(bad)('rejects %s, naming the cluster and the field', (_name, cluster, message) => {
    expect(() => resolve(cluster)).toThrow(/^cluster "web": /);
    expect(() => resolve(cluster)).toThrow(message);
  });

  it('accepts the edges of every range', () => {
    expect(() =>
      resolve({
        circuitBreakers: {
          maxConnections: 2 ** 32 - 1,
          errorThresholdPercent: 100,
          resetTimeoutMs: 2 ** 31 - 1,
          windowMs: 10,
        },
        outlierDetection: {
          maxEjectionPercent: 100,
          panicThresholdPercent: 1,
          successRateStdevFactor: 100_000,
        },
        healthCheck: { path: '/', intervalMs: 1, timeoutMs: 2 ** 31 - 1 },
        retryBudget: { percent: 1000, windowMs: 10 },
      }),
    ).not.toThrow();
  });

  it('refuses a bad update as a whole and keeps the previous config in force', () => {
    const m = new ClusterManager();
    managers.push(m);
    m.update(
      [{ name: 'web', circuitBreakers: { maxRequests: 1 } }],
      [{ clusterName: 'web', endpoints: [{ address: '127.0.0.1', port: 10_001 }] }],
    );
    const before = m.snapshot();
    expect(() =>
      m.update(
        [{ name: 'web', circuitBreakers: { maxRequests: 2 }, outlierDetection: { maxEjectionPercent: 200 } }],
        [],
      ),
    ).toThrow('cluster "web": outlierDetection.maxEjectionPercent must be');
    expect(m.snapshot()).toEqual(before);
    const web = m.get('web');
    expect(web?.admitRequest()).toBeUndefined();
    expect(web?.admitRequest()).toBe('OVERFLOW'); // still maxRequests 1
  });
});
