/**
 * Outlier detection (upstream/outlier.ts through the cluster manager), Envoy semantics: consecutive
 * 5xx and consecutive gateway errors eject an endpoint for base ejection time × ejection count (the
 * count decays one per interval while healthy, the time is capped at 300 s), max ejection percent
 * (with at least one ejection allowed), success-rate ejection, the panic threshold, the ejection
 * counter and what `/config_dump` shows. Fake timers and fake endpoints.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { OutlierDetection } from '../../../sidecar/proxy/config/types.ts';
import type { OutlierEvent } from '../../../sidecar/proxy/telemetry/channels.ts';
import { ProxyMetrics } from '../../../sidecar/proxy/telemetry/metrics.ts';
import { classifyOutcome } from '../../../sidecar/proxy/upstream/outlier.ts';
import {
  CLIENT_GONE,
  CONNECT_FAILURE,
  type Harness,
  harness,
  key,
  OK,
  RESET,
  recordChannel,
  S500,
  S502,
  S503,
} from './resilience-helpers.ts';

const T0 = Date.UTC(2026, 0, 1);
const open: Harness[] = [];
function make(outlierDetection: OutlierDetection, n: number): Harness {
  const h = harness({ outlierDetection }, n);
  open.push(h);
  return h;
}
const ejected = (h: Harness): (string | null | undefined)[] =>
  h.cluster.snapshot().endpoints.map((e) => e.ejectedUntil);
const at = (ms: number): string => new Date(T0 + ms).toISOString();

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((h) => h.manager.close()));
  vi.useRealTimers();
});

describe('classifyOutcome', () => {
  it('sorts outcomes into success, server error, gateway error and ignored', () => {
    expect(classifyOutcome(OK)).toBe('success');
    expect(classifyOutcome({ kind: 'response', status: 499 })).toBe('success');
    expect(classifyOutcome(S500)).toBe('server_error');
    expect(classifyOutcome({ kind: 'response', status: 501 })).toBe('server_error');
    for (const o of [S502, S503, { kind: 'response', status: 504 } as const]) {
      expect(classifyOutcome(o)).toBe('gateway_error');
    }
    for (const error of [
      'UPSTREAM_CONNECT_FAILURE',
      'UPSTREAM_RESET',
      'UPSTREAM_PROTOCOL_ERROR',
      'UPSTREAM_TIMEOUT',
      'REQUEST_TIMEOUT',
    ] as const) {
      expect(classifyOutcome({ kind: 'error', error })).toBe('gateway_error');
    }
    expect(classifyOutcome(CLIENT_GONE)).toBe('ignored');
    expect(classifyOutcome({ kind: 'error', error: 'OVERFLOW' })).toBe('ignored');
  });
});

describe('consecutive errors', () => {
  it('ejects after consecutiveServerErrors 5xx in a row; a success in between starts over', () => {
    const events = recordChannel<OutlierEvent>('weft:outlier');
    const h = make({ consecutiveServerErrors: 3, baseEjectionTimeMs: 30_000 }, 3);
    h.record(0, S500, 2);
    h.record(0, OK);
    h.record(0, S500, 2);
    h.record(0, CLIENT_GONE); // says nothing about the endpoint: neither resets nor counts
    expect(ejected(h)).toEqual([null, null, null]);
    h.record(0, S503);
    expect(ejected(h)).toEqual([at(30_000), null, null]);
    expect(h.picked()).toEqual(new Set([key(1), key(2)]));
    expect(h.cluster.snapshot().endpoints[0]).toMatchObject({ ejections: 1, ejectedUntil: at(30_000) });
    vi.advanceTimersByTime(29_999);
    expect(h.picked()).not.toContain(key(0));
    vi.advanceTimersByTime(1);
    expect(ejected(h)).toEqual([null, null, null]);
    expect(h.picked()).toEqual(new Set([key(0), key(1), key(2)]));
    events.stop();
    expect(events.messages).toEqual([
      {
        cluster: 'web',
        endpoint: key(0),
        ejected: true,
        reason: 'consecutive_server_errors',
        ejectedUntilMs: T0 + 30_000,
        ejections: 1,
      },
      {
        cluster: 'web',
        endpoint: key(0),
        ejected: false,
        reason: 'consecutive_server_errors',
        ejectedUntilMs: 0,
        ejections: 1,
      },
    ]);
  });

  it('ejects after consecutiveGatewayErrors gateway errors (502/503/504, connect failure, reset)', () => {
    const events = recordChannel<OutlierEvent>('weft:outlier');
    const h = make({ consecutiveGatewayErrors: 3 }, 3);
    h.record(0, S502);
    h.record(0, CONNECT_FAILURE);
    h.record(0, S500); // a 5xx that is not a gateway error resets the gateway count
    h.record(0, RESET, 2);
    expect(ejected(h)).toEqual([null, null, null]);
    h.record(0, S503);
    expect(h.cluster.snapshot().endpoints[0]?.ejectedUntil).toBe(at(30_000)); // default base 30 s
    events.stop();
    expect(events.messages.map((e) => e.reason)).toEqual(['consecutive_gateway_errors']);
  });

  it('ejects on the first failure with a threshold of 1 (a dead endpoint leaves at once)', () => {
    const h = make({ consecutiveGatewayErrors: 1 }, 3);
    h.record(1, CONNECT_FAILURE);
    expect(h.picked()).toEqual(new Set([key(0), key(2)]));
  });

  it('does nothing with both thresholds at 0 (the default)', () => {
    const h = make({}, 2);
    h.record(0, S503, 1000);
    expect(ejected(h)).toEqual([null, null]);
    expect(h.picked()).toEqual(new Set([key(0), key(1)]));
  });

  it('grows the ejection time with the ejection count, up to max(base, 300 s)', () => {
    const h = make({ consecutiveGatewayErrors: 1, baseEjectionTimeMs: 1000, intervalMs: 3_600_000 }, 3);
    for (let n = 1; n <= 4; n++) {
      const start = Date.now() - T0;
      h.record(0, S503);
      expect(h.cluster.snapshot().endpoints[0]).toMatchObject({
        ejections: n,
        ejectedUntil: at(start + n * 1000),
      });
      vi.advanceTimersByTime(n * 1000);
      expect(ejected(h)[0]).toBeNull();
    }
    const capped = make(
      { consecutiveGatewayErrors: 1, baseEjectionTimeMs: 200_000, intervalMs: 3_600_000 },
      3,
    );
    capped.record(0, S503);
    vi.advanceTimersByTime(200_000);
    const start = Date.now() - T0;
    capped.record(0, S503);
    expect(capped.cluster.snapshot().endpoints[0]).toMatchObject({
      ejections: 2,
      ejectedUntil: at(start + 300_000),
    });
  });

  it('decays the ejection count by one per interval while the endpoint stays healthy', () => {
    const h = make({ consecutiveGatewayErrors: 1, baseEjectionTimeMs: 1000, intervalMs: 10_000 }, 3);
    h.record(0, S503); // ejection 1: 1 s
    vi.advanceTimersByTime(1000);
    h.record(0, S503); // ejection 2: 2 s
    vi.advanceTimersByTime(2000);
    expect(h.cluster.snapshot().endpoints[0]?.ejections).toBe(2);
    vi.advanceTimersByTime(7000); // interval tick at 10 s: healthy → 1
    expect(h.cluster.snapshot().endpoints[0]?.ejections).toBe(1);
    const start = Date.now() - T0;
    h.record(0, S503); // ejection count back to 2: 2 s, not 3 s
    expect(h.cluster.snapshot().endpoints[0]).toMatchObject({ ejections: 2, ejectedUntil: at(start + 2000) });
    vi.advanceTimersByTime(10_000); // tick at 20 s (ejection over at 12 s) → 1
    vi.advanceTimersByTime(10_000); // tick at 30 s → 0
    expect(h.cluster.snapshot().endpoints[0]?.ejections).toBe(0);
  });

  it('keeps the state of an endpoint that stays across config pushes, forgets one that goes', () => {
    const h = make({ consecutiveGatewayErrors: 1 }, 3);
    h.record(0, S503);
    h.manager.update(
      [{ name: 'web', outlierDetection: { consecutiveGatewayErrors: 1 }, lbPolicy: 'RANDOM' }],
      [{ clusterName: 'web', endpoints: [0, 1].map((i) => ({ address: '127.0.0.1', port: 10_001 + i })) }],
    );
    expect(ejected(h)).toEqual([at(30_000), null]);
    h.manager.update(
      [{ name: 'web' }],
      [{ clusterName: 'web', endpoints: [{ address: '127.0.0.1', port: 10_001 }] }],
    );
    expect(h.cluster.snapshot().endpoints[0]).not.toHaveProperty('ejectedUntil'); // detection off
    expect(h.picked()).toEqual(new Set([key(0)]));
  });
});

describe('max ejection percent', () => {
  it('lets one endpoint of three be ejected at the default 10 %, and no second one', () => {
    const h = make({ consecutiveGatewayErrors: 1 }, 3);
    h.record(0, S503);
    h.record(1, S503);
    expect(ejected(h)).toEqual([at(30_000), null, null]);
    h.record(1, S503);
    expect(ejected(h)[1]).toBeNull();
    vi.advanceTimersByTime(30_000);
    h.record(1, S503); // room again once the first returned
    expect(ejected(h)).toEqual([null, at(60_000), null]);
  });

  it('ejects up to maxEjectionPercent of the endpoints', () => {
    const h = make({ consecutiveGatewayErrors: 1, maxEjectionPercent: 50 }, 4);
    for (let i = 0; i < 4; i++) h.record(i, S503);
    expect(ejected(h).filter((e) => e !== null)).toHaveLength(2);
    expect(h.picked()).toEqual(new Set([key(2), key(3)]));
  });
});

describe('success-rate ejection', () => {
  const sr: OutlierDetection = {
    intervalMs: 10_000,
    successRateMinimumHosts: 5,
    successRateRequestVolume: 20,
    successRateStdevFactor: 1000,
    maxEjectionPercent: 50,
  };

  it('ejects endpoints below mean − stdev × factor at the interval tick', () => {
    const events = recordChannel<OutlierEvent>('weft:outlier');
    const h = make(sr, 6);
    for (let i = 0; i < 5; i++) h.record(i, OK, 20);
    h.record(5, OK, 10);
    h.record(5, S500, 10); // 50 %
    vi.advanceTimersByTime(9999);
    expect(ejected(h)[5]).toBeNull();
    vi.advanceTimersByTime(1);
    expect(ejected(h)[5]).toBe(at(40_000));
    events.stop();
    expect(events.messages.map((e) => [e.endpoint, e.reason])).toEqual([[key(5), 'success_rate']]);
  });

  it('needs successRateMinimumHosts endpoints with successRateRequestVolume attempts each', () => {
    const h = make(sr, 6);
    for (let i = 0; i < 4; i++) h.record(i, OK, 20);
    h.record(4, OK, 19); // below the volume: not compared
    h.record(5, S500, 20); // 0 %, but only 5 endpoints are compared …
    const strict = make({ ...sr, successRateMinimumHosts: 6 }, 6); // … and 6 are needed
    for (let i = 0; i < 4; i++) strict.record(i, OK, 20);
    strict.record(4, OK, 19);
    strict.record(5, S500, 20);
    vi.advanceTimersByTime(10_000);
    expect(ejected(strict)).toEqual([null, null, null, null, null, null]);
    expect(ejected(h)).toEqual([null, null, null, null, null, at(40_000)]);
  });

  it('starts each interval afresh', () => {
    const h = make(sr, 5);
    for (let i = 0; i < 4; i++) h.record(i, OK, 20);
    h.record(4, S500, 20);
    vi.advanceTimersByTime(5000);
    // 4 + 1 hosts, but the fifth is 0 % … yet: the tick has not come. Next interval: counts restart.
    vi.advanceTimersByTime(5000);
    expect(ejected(h)[4]).toBe(at(40_000));
    vi.advanceTimersByTime(30_000);
    for (let i = 0; i < 4; i++) h.record(i, OK, 20); // the fifth has no volume this time
    vi.advanceTimersByTime(10_000);
    expect(ejected(h)[4]).toBeNull();
  });

  it('does not eject when every endpoint does equally badly (the stdev is 0)', () => {
    const h = make(sr, 5);
    for (let i = 0; i < 5; i++) {
      h.record(i, OK, 10);
      h.record(i, S500, 10);
    }
    vi.advanceTimersByTime(10_000);
    expect(ejected(h).every((e) => e === null)).toBe(true);
  });
});

describe('panic threshold', () => {
  it('picks from every endpoint once fewer than panicThresholdPercent % are healthy', () => {
    const h = make({ consecutiveGatewayErrors: 1, maxEjectionPercent: 100 }, 3);
    h.record(0, S503);
    expect(h.picked()).toEqual(new Set([key(1), key(2)]));
    expect(h.cluster.snapshot().panic).toBe(false);
    h.record(1, S503); // 1 of 3 healthy: 33 % < 50 %
    expect(h.cluster.snapshot().panic).toBe(true);
    expect(h.picked()).toEqual(new Set([key(0), key(1), key(2)]));
    vi.advanceTimersByTime(30_000);
    expect(h.cluster.snapshot().panic).toBe(false);
  });

  it('is exactly at the threshold not in panic; a higher threshold panics sooner', () => {
    const h = make({ consecutiveGatewayErrors: 1, maxEjectionPercent: 100 }, 2);
    h.record(0, S503); // 1 of 2 = 50 %: not below 50 %
    expect(h.picked()).toEqual(new Set([key(1)]));
    const strict = make(
      { consecutiveGatewayErrors: 1, maxEjectionPercent: 100, panicThresholdPercent: 80 },
      4,
    );
    strict.record(0, S503); // 3 of 4 = 75 % < 80 %
    expect(strict.picked()).toEqual(new Set([key(0), key(1), key(2), key(3)]));
  });

  it('sends traffic to a lone ejected endpoint rather than to nothing', () => {
    const h = make({ consecutiveGatewayErrors: 1 }, 1);
    h.record(0, S503);
    expect(ejected(h)[0]).toBe(at(30_000));
    expect(h.picked(3)).toEqual(new Set([key(0)]));
  });
});

describe('ejection metrics', () => {
  it('counts ejections as weft_outlier_ejections_total{cluster, reason}', async () => {
    const metrics = new ProxyMetrics({ service: 's', workload: 'w', namespace: 'n' });
    try {
      const h = make({ consecutiveGatewayErrors: 1, consecutiveServerErrors: 2, maxEjectionPercent: 100 }, 3);
      h.record(0, S503);
      h.record(1, S500, 2);
      vi.advanceTimersByTime(30_000);
      h.record(0, CONNECT_FAILURE);
      const body = (await metrics.expose()).body;
      expect(body).toContain(
        'weft_outlier_ejections_total{cluster="web",reason="consecutive_gateway_errors"} 2',
      );
      expect(body).toContain(
        'weft_outlier_ejections_total{cluster="web",reason="consecutive_server_errors"} 1',
      );
    } finally {
      metrics.close();
    }
  });
});

describe('pick with exclude (a retry avoids the endpoint that just failed)', () => {
  it.each(['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'CONSISTENT_HASH'] as const)(
    '%s returns another endpoint whenever there is one',
    (lbPolicy) => {
      const h = harness({ lbPolicy, ...(lbPolicy === 'CONSISTENT_HASH' && { hashHeader: 'x-user' }) }, 3);
      open.push(h);
      const avoid = h.endpoint(1);
      for (let i = 0; i < 50; i++) {
        const picked = h.cluster.pick({ hashKey: `user-${i % 7}`, random: Math.random }, avoid);
        expect(picked?.key).not.toBe(avoid.key);
      }
    },
  );

  it('returns the excluded endpoint when it is the only one left', () => {
    const h = make({ consecutiveGatewayErrors: 1, maxEjectionPercent: 100, panicThresholdPercent: 1 }, 2);
    h.record(0, S503);
    const only = h.endpoint(1);
    expect(h.cluster.pick({ hashKey: undefined, random: Math.random }, only)?.key).toBe(key(1));
  });
});
