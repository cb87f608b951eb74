/**
 * Circuit breaking (upstream/breakers.ts through the cluster manager): Envoy pool limits (max
 * requests, max pending requests, max connections, max retries → OVERFLOW) and the per-endpoint
 * error-rate breaker on opossum (CLOSED → OPEN → HALF_OPEN with one probe → CLOSED/OPEN), its gauge
 * and CIRCUIT_OPEN when every healthy endpoint's breaker is open. Fake timers throughout, except the
 * one test that counts real connections.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { BreakerStateEvent, OverflowEvent } from '../../../sidecar/proxy/telemetry/channels.ts';
import { ProxyMetrics } from '../../../sidecar/proxy/telemetry/metrics.ts';
import { ClusterManager } from '../../../sidecar/proxy/upstream/cluster-manager.ts';
import { get, startUpstream, stopUpstream, type Upstream, until } from './helpers.ts';
import {
  CLIENT_GONE,
  CONNECT_FAILURE,
  type Harness,
  harness,
  key,
  OK,
  recordChannel,
  S500,
  S503,
  settle,
} from './resilience-helpers.ts';

const open: Harness[] = [];
function make(...args: Parameters<typeof harness>): Harness {
  const h = harness(...args);
  open.push(h);
  return h;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((h) => h.manager.close()));
  vi.useRealTimers();
});

describe('pool limits (Envoy circuit breaking)', () => {
  it('overflows at maxRequests active requests, and admits again after a release', () => {
    const overflows = recordChannel<OverflowEvent>('weft:overflow');
    const { cluster } = make({ circuitBreakers: { maxRequests: 2 } }, 2);
    expect(cluster.admitRequest()).toBeUndefined();
    expect(cluster.admitRequest()).toBeUndefined();
    expect(cluster.admitRequest()).toBe('OVERFLOW');
    cluster.releaseRequest();
    expect(cluster.admitRequest()).toBeUndefined();
    expect(cluster.admitRequest()).toBe('OVERFLOW');
    overflows.stop();
    expect(overflows.messages).toEqual([
      { cluster: 'web', limit: 'max_requests' },
      { cluster: 'web', limit: 'max_requests' },
    ]);
  });

  it('overflows at maxPendingRequests: active requests beyond the connection capacity', () => {
    const overflows = recordChannel<OverflowEvent>('weft:overflow');
    // 2 endpoints, maxConnections 4 → 2 connections each, capacity 4; then 1 may wait.
    const { cluster } = make({ circuitBreakers: { maxConnections: 4, maxPendingRequests: 1 } }, 2);
    for (let i = 0; i < 5; i++) expect(cluster.admitRequest()).toBeUndefined();
    expect(cluster.admitRequest()).toBe('OVERFLOW');
    expect(cluster.snapshot().circuitBreakers).toEqual({
      activeRequests: 5,
      pendingRequests: 1,
      activeRetries: 0,
      connectionCapacity: 4,
    });
    cluster.releaseRequest();
    expect(cluster.admitRequest()).toBeUndefined();
    overflows.stop();
    expect(overflows.messages).toEqual([{ cluster: 'web', limit: 'max_pending_requests' }]);
  });

  it('splits maxConnections over the endpoint pools, at least one each, capped per endpoint', () => {
    const split = make({ circuitBreakers: { maxConnections: 10 } }, 3);
    expect([0, 1, 2].map((i) => split.cluster.endpoints[i]?.connectionLimit)).toEqual([3, 3, 3]);
    const floor = make({ circuitBreakers: { maxConnections: 2 } }, 3);
    expect(floor.cluster.endpoints.map((e) => e.connectionLimit)).toEqual([1, 1, 1]);
    expect(floor.cluster.snapshot().circuitBreakers?.connectionCapacity).toBe(3);
    const capped = make(
      { circuitBreakers: { maxConnections: 100 }, connectionPool: { maxConnectionsPerEndpoint: 5 } },
      2,
    );
    expect(capped.cluster.endpoints.map((e) => e.connectionLimit)).toEqual([5, 5]);
    // Defaults: Envoy's 1024 across the cluster.
    const defaults = make({}, 4);
    expect(defaults.cluster.endpoints.map((e) => e.connectionLimit)).toEqual([256, 256, 256, 256]);
  });

  it('limits a real endpoint pool to its connection share (requests beyond it wait, then run)', async () => {
    const held: ServerResponse[] = [];
    const up: Upstream = await startUpstream('a', (_req, res) => held.push(res));
    const manager = new ClusterManager({ random: () => 0 });
    try {
      // maxConnections 3 over 2 endpoints → 1 connection per endpoint pool.
      manager.update(
        [{ name: 'web', circuitBreakers: { maxConnections: 3 } }],
        [
          {
            clusterName: 'web',
            endpoints: [
              { address: '127.0.0.1', port: up.port },
              { address: '127.0.0.1', port: 9 },
            ],
          },
        ],
      );
      const endpoint = manager.get('web')?.pick({ hashKey: undefined, random: Math.random });
      expect(endpoint?.key).toBe(`127.0.0.1:${up.port}`);
      const inflight = [get(endpoint!.pool), get(endpoint!.pool), get(endpoint!.pool)];
      await until(() => held.length === 1, 5000, 'first request');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(held.length).toBe(1); // the others wait for the one connection
      for (let i = 0; i < 3; i++) {
        await until(() => held.length > i, 5000, `request ${i + 1}`);
        held[i]?.end(`r${i}`);
      }
      expect((await Promise.all(inflight)).map((r) => r.body)).toEqual(['r0', 'r1', 'r2']);
      expect(up.connections).toBe(1);
    } finally {
      await manager.close();
      await stopUpstream(up);
    }
  });

  it('overflows at maxRetries active retries (backoff included) and says why', () => {
    const overflows = recordChannel<OverflowEvent>('weft:overflow');
    const { cluster } = make({ circuitBreakers: { maxRetries: 2 } }, 1);
    cluster.admitRequest();
    expect(cluster.admitRetry()).toBe(true);
    expect(cluster.admitRetry()).toBe(true);
    expect(cluster.admitRetry()).toBe(false);
    expect(cluster.lastRetryDenial).toBe('OVERFLOW');
    expect(cluster.snapshot().circuitBreakers?.activeRetries).toBe(2);
    cluster.releaseRetry();
    expect(cluster.admitRetry()).toBe(true);
    overflows.stop();
    expect(overflows.messages).toEqual([{ cluster: 'web', limit: 'max_retries' }]);
  });

  it('never lets counters go below zero on stray releases', () => {
    const { cluster } = make({ circuitBreakers: { maxRequests: 1, maxRetries: 1 } }, 1);
    cluster.releaseRequest();
    cluster.releaseRetry();
    expect(cluster.admitRequest()).toBeUndefined();
    expect(cluster.admitRequest()).toBe('OVERFLOW');
    expect(cluster.admitRetry()).toBe(true);
    expect(cluster.admitRetry()).toBe(false);
  });

  it('applies Envoy Gateway defaults without any circuitBreakers config (1024 requests; retries bounded by the budget)', () => {
    const { cluster } = make({}, 1);
    for (let i = 0; i < 1024; i++) expect(cluster.admitRequest()).toBeUndefined();
    expect(cluster.admitRequest()).toBe('OVERFLOW');
    let retries = 0;
    while (retries < 2000 && cluster.admitRetry()) retries++;
    // 1024 concurrent retries would be allowed; the default budget (20 % + 10/s over 10 s) says no first.
    expect(retries).toBeGreaterThan(3);
    expect(retries).toBeLessThan(1024);
    expect(cluster.lastRetryDenial).toBe('BUDGET_EXHAUSTED');
    expect(cluster.snapshot().circuitBreakers).toBeUndefined(); // not configured: not dumped
  });
});

describe('error-rate breaker (opossum, per endpoint)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });

  const breaker = { errorThresholdPercent: 50, volumeThreshold: 4, resetTimeoutMs: 5000, windowMs: 10_000 };

  it('opens once the volume threshold is met and the error rate is above the threshold', async () => {
    const events = recordChannel<BreakerStateEvent>('weft:breaker');
    const h = make({ circuitBreakers: breaker }, 2);
    h.record(0, S503, 3);
    await settle();
    expect(h.cluster.snapshot().endpoints[0]?.breaker).toBe('CLOSED'); // 3 < volume 4
    h.record(0, CONNECT_FAILURE);
    await settle();
    expect(h.cluster.snapshot().endpoints[0]?.breaker).toBe('OPEN');
    expect(h.picked()).toEqual(new Set([key(1)]));
    events.stop();
    expect(events.messages).toEqual([
      { cluster: 'web', endpoint: key(0), state: 'CLOSED' },
      { cluster: 'web', endpoint: key(1), state: 'CLOSED' },
      { cluster: 'web', endpoint: key(0), state: 'OPEN' },
    ]);
  });

  it('stays closed at exactly the threshold percentage, and counts responses below 500 as successes', async () => {
    const h = make({ circuitBreakers: breaker }, 1);
    h.record(0, OK);
    h.record(0, { kind: 'response', status: 404 });
    h.record(0, S500, 2);
    await settle();
    expect(h.cluster.snapshot().endpoints[0]?.breaker).toBe('CLOSED'); // 50 % is not above 50 %
    h.record(0, S500);
    await settle();
    expect(h.cluster.snapshot().endpoints[0]?.breaker).toBe('OPEN'); // 60 %
  });

  it('forgets failures that left the rolling window', async () => {
    const h = make({ circuitBreakers: breaker }, 1);
    h.record(0, S503, 3);
    await settle();
    await vi.advanceTimersByTimeAsync(11_000);
    h.record(0, S503);
    await settle();
    expect(h.cluster.snapshot().endpoints[0]?.breaker).toBe('CLOSED'); // 1 in the window < volume 4
  });

  it('goes half-open after resetTimeoutMs and lets exactly one probe through; success closes it', async () => {
    const events = recordChannel<BreakerStateEvent>('weft:breaker');
    const h = make({ circuitBreakers: breaker }, 2);
    h.record(0, S503, 4);
    await settle();
    await vi.advanceTimersByTimeAsync(4999);
    expect(h.cluster.snapshot().endpoints[0]?.breaker).toBe('OPEN');
    await vi.advanceTimersByTimeAsync(1);
    expect(h.cluster.snapshot().endpoints[0]?.breaker).toBe('HALF_OPEN');
    const picks = h.picks(8);
    expect(picks.filter((k) => k === key(0))).toHaveLength(1); // the probe
    expect(picks.filter((k) => k === key(1))).toHaveLength(7);
    h.record(0, OK);
    await settle();
    expect(h.cluster.snapshot().endpoints[0]?.breaker).toBe('CLOSED');
    expect(h.picked()).toEqual(new Set([key(0), key(1)]));
    events.stop();
    expect(events.messages.filter((e) => e.endpoint === key(0)).map((e) => e.state)).toEqual([
      'CLOSED',
      'OPEN',
      'HALF_OPEN',
      'CLOSED',
    ]);
  });

  it('reopens when the probe fails, and half-opens again after another resetTimeoutMs', async () => {
    const h = make({ circuitBreakers: breaker }, 2);
    h.record(0, S503, 4);
    await settle();
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.picks(2)).toContain(key(0));
    h.record(0, S503);
    await settle();
    expect(h.cluster.snapshot().endpoints[0]?.breaker).toBe('OPEN');
    expect(h.picked()).toEqual(new Set([key(1)]));
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.cluster.snapshot().endpoints[0]?.breaker).toBe('HALF_OPEN');
  });

  it('hands the probe out again when its attempt ends without a verdict or is never recorded', async () => {
    const h = make({ circuitBreakers: breaker }, 2);
    h.record(0, S503, 4);
    await settle();
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.picks(4).filter((k) => k === key(0))).toHaveLength(1);
    h.record(0, CLIENT_GONE); // the client left: no verdict
    expect(h.picks(4).filter((k) => k === key(0))).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(5000); // that probe was never recorded
    expect(h.cluster.snapshot().endpoints[0]?.breaker).toBe('HALF_OPEN');
    expect(h.picks(4).filter((k) => k === key(0))).toHaveLength(1);
  });

  it('drops outcomes that arrive while the breaker is open', async () => {
    const h = make({ circuitBreakers: breaker }, 1);
    h.record(0, S503, 4);
    await settle();
    h.record(0, OK, 50); // attempts sent before it opened
    await settle();
    expect(h.cluster.snapshot().endpoints[0]?.breaker).toBe('OPEN');
  });

  it('answers CIRCUIT_OPEN when every healthy endpoint is open, NO_HEALTHY_UPSTREAM when none is healthy', async () => {
    const h = make({ circuitBreakers: breaker }, 2);
    h.record(0, S503, 4);
    h.record(1, S503, 4);
    await settle();
    expect(h.cluster.pick({ hashKey: undefined, random: Math.random })).toBeUndefined();
    expect(h.cluster.lastPickFailure).toBe('CIRCUIT_OPEN');
    h.manager.update(
      [{ name: 'web', circuitBreakers: breaker }],
      [{ clusterName: 'web', endpoints: [{ address: '127.0.0.1', port: 10_001, health: 'DRAINING' }] }],
    );
    expect(h.cluster.pick({ hashKey: undefined, random: Math.random })).toBeUndefined();
    expect(h.cluster.lastPickFailure).toBe('NO_HEALTHY_UPSTREAM');
  });

  it('is off without errorThresholdPercent: failures never stop picks, nothing is dumped', async () => {
    const events = recordChannel<BreakerStateEvent>('weft:breaker');
    const h = make({ circuitBreakers: { volumeThreshold: 1 } }, 1);
    h.record(0, S503, 100);
    await settle();
    expect(h.picked(3)).toEqual(new Set([key(0)]));
    expect(h.cluster.snapshot().endpoints[0]).not.toHaveProperty('breaker');
    events.stop();
    expect(events.messages).toEqual([]);
  });

  it('keeps breakers of endpoints that stay, removes (and unpublishes) those that go', async () => {
    const events = recordChannel<BreakerStateEvent>('weft:breaker');
    const h = make({ circuitBreakers: breaker }, 2);
    h.record(0, S503, 4);
    await settle();
    h.manager.update(
      [{ name: 'web', circuitBreakers: breaker }],
      [{ clusterName: 'web', endpoints: [{ address: '127.0.0.1', port: 10_001 }] }],
    );
    expect(h.cluster.snapshot().endpoints.map((e) => e.breaker)).toEqual(['OPEN']);
    await h.manager.close();
    events.stop();
    expect(events.messages.slice(-2)).toEqual([
      { cluster: 'web', endpoint: key(1), state: 'REMOVED' },
      { cluster: 'web', endpoint: key(0), state: 'REMOVED' },
    ]);
  });

  it('exports the state as weft_circuit_breaker_state and overflows as weft_overflow_total', async () => {
    const metrics = new ProxyMetrics({ service: 's', workload: 'w', namespace: 'n' });
    try {
      const h = make({ circuitBreakers: { ...breaker, maxRequests: 1 } }, 2);
      h.record(0, S503, 4);
      await settle();
      h.cluster.admitRequest();
      h.cluster.admitRequest();
      const body = (await metrics.expose()).body;
      expect(body).toContain(`weft_circuit_breaker_state{cluster="web",endpoint="${key(0)}"} 2`);
      expect(body).toContain(`weft_circuit_breaker_state{cluster="web",endpoint="${key(1)}"} 0`);
      expect(body).toContain('weft_overflow_total{cluster="web",limit="max_requests"} 1');
      await vi.advanceTimersByTimeAsync(5000);
      expect((await metrics.expose()).body).toContain(
        `weft_circuit_breaker_state{cluster="web",endpoint="${key(0)}"} 1`,
      );
      await h.manager.close();
      expect((await metrics.expose()).body).not.toContain('weft_circuit_breaker_state{');
    } finally {
      metrics.close();
    }
  });
});
