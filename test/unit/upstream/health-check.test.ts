/**
 * Active health checks (upstream/health-check.ts) against real loopback upstreams, with fake timers
 * for the check schedule (the sockets are real, so each step waits for the upstream to see the
 * check): thresholds both ways, timeouts, refused connections, a connection of its own per check,
 * the cluster not picking an unhealthy endpoint (panic threshold aside), and checkers stopping when
 * their endpoint or the manager goes.
 */
import diagnostics from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Pool } from 'undici';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HealthCheck } from '../../../sidecar/proxy/config/types.ts';
import type { HealthCheckEvent } from '../../../sidecar/proxy/telemetry/channels.ts';
import { ClusterManager } from '../../../sidecar/proxy/upstream/cluster-manager.ts';
import { ctx, startUpstream, stopUpstream, type Upstream } from './helpers.ts';

const INTERVAL = 5000;
/**
 * The check timeout unless a test is about it: far beyond the fake time the tests advance while a
 * check is in flight on the real sockets, so only the timeout test ever sees one fire.
 */
const NO_TIMEOUT = 3_600_000;

let upstreams: Upstream[] = [];
let manager: ClusterManager;
/** Status each upstream answers its health path with (by port); 'hang' never answers. */
const answer = new Map<number, number | 'hang'>();
/** Health-check requests seen, by port. */
const checks = new Map<number, IncomingMessage[]>();
const hung: ServerResponse[] = [];

async function upstream(): Promise<Upstream> {
  const up: Upstream = await startUpstream('hc', (req, res) => {
    if (req.url !== '/healthz') {
      res.end('traffic');
      return;
    }
    checks.get(up.port)?.push(req);
    const status = answer.get(up.port) ?? 200;
    if (status === 'hang') hung.push(res);
    else {
      res.statusCode = status;
      res.end('ok');
    }
  });
  checks.set(up.port, []);
  upstreams.push(up);
  return up;
}

const keyOf = (up: Upstream | number): string => `127.0.0.1:${typeof up === 'number' ? up : up.port}`;
const seen = (up: Upstream): number => checks.get(up.port)?.length ?? 0;

function update(healthCheck: HealthCheck | undefined, ports: readonly number[]): void {
  const hc = healthCheck === undefined ? undefined : { timeoutMs: NO_TIMEOUT, ...healthCheck };
  manager.update(
    [{ name: 'web', ...(hc !== undefined && { healthCheck: hc }) }],
    [{ clusterName: 'web', endpoints: ports.map((port) => ({ address: '127.0.0.1', port })) }],
  );
}

function stateOf(port: number): string | undefined {
  return manager.snapshot().clusters[0]?.endpoints.find((e) => e.key === keyOf(port))?.healthCheck;
}

function picked(n = 12): Set<string | undefined> {
  return new Set(Array.from({ length: n }, () => manager.get('web')?.pick(ctx(Math.random))?.key));
}

/** The real `setTimeout`, taken before any test fakes it (`vi.waitFor` would move the fake clock). */
const realSetTimeout = globalThis.setTimeout;
const realSleep = (ms: number) => new Promise((resolve) => realSetTimeout(resolve, ms));

/** Waits in real time (the fake clock stands still) until `check` stops throwing; 5 s at most. */
async function eventually(check: () => void): Promise<void> {
  const deadline = performance.now() + 5000;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (performance.now() > deadline) throw err;
      await realSleep(5);
    }
  }
}

/** Health-check results published so far, by endpoint key. */
const results = new Map<string, number>();
const onResult = (message: unknown): void => {
  const e = message as HealthCheckEvent;
  results.set(e.endpoint, (results.get(e.endpoint) ?? 0) + 1);
};
const done = (up: Upstream): number => results.get(keyOf(up)) ?? 0;

/**
 * Runs `up`'s next check: moves the fake clock to it (`stepMs`: 0 for an endpoint's first check, the
 * interval afterwards; with no jitter each check is due exactly one interval after the previous one
 * ended) and waits in real time for its result.
 */
async function nextCheck(up: Upstream, stepMs = INTERVAL): Promise<void> {
  const before = done(up);
  await vi.advanceTimersByTimeAsync(stepMs);
  await eventually(() => expect(done(up)).toBe(before + 1));
}

beforeEach(() => {
  diagnostics.subscribe('weft:health-check', onResult);
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  manager = new ClusterManager({ random: () => 0 }); // no jitter: the first check at once
});

afterEach(async () => {
  diagnostics.unsubscribe('weft:health-check', onResult);
  results.clear();
  await manager.close();
  for (const res of hung.splice(0)) res.destroy();
  vi.useRealTimers();
  await Promise.all(upstreams.map(stopUpstream));
  upstreams = [];
  answer.clear();
  checks.clear();
});

describe('active health checks', () => {
  it('marks an endpoint UNHEALTHY after unhealthyThreshold failures and HEALTHY after healthyThreshold successes', async () => {
    const [a, b] = [await upstream(), await upstream()];
    update({ path: '/healthz', intervalMs: INTERVAL, unhealthyThreshold: 2, healthyThreshold: 2 }, [
      a.port,
      b.port,
    ]);
    expect(stateOf(a.port)).toBe('HEALTHY'); // starts healthy
    await nextCheck(a, 0);
    answer.set(a.port, 503);
    await nextCheck(a);
    expect(stateOf(a.port)).toBe('HEALTHY'); // one failure of two
    await nextCheck(a);
    expect(stateOf(a.port)).toBe('UNHEALTHY');
    expect(picked()).toEqual(new Set([keyOf(b)]));

    answer.set(a.port, 200);
    await nextCheck(a);
    expect(stateOf(a.port)).toBe('UNHEALTHY'); // one success of two
    await nextCheck(a);
    expect(stateOf(a.port)).toBe('HEALTHY');
    expect(picked()).toEqual(new Set([keyOf(a), keyOf(b)]));
    expect(seen(a)).toBe(5);
  });

  it('counts a check that does not answer within timeoutMs as failed', async () => {
    const [a, b] = [await upstream(), await upstream()];
    answer.set(a.port, 'hang');
    update({ path: '/healthz', intervalMs: INTERVAL, timeoutMs: 1000, unhealthyThreshold: 1 }, [
      a.port,
      b.port,
    ]);
    await vi.advanceTimersByTimeAsync(0); // the first check is due at once
    await eventually(() => expect(seen(a)).toBe(1));
    await vi.advanceTimersByTimeAsync(999);
    expect(stateOf(a.port)).toBe('HEALTHY');
    await vi.advanceTimersByTimeAsync(1);
    await eventually(() => expect(stateOf(a.port)).toBe('UNHEALTHY'));
    expect(picked()).toEqual(new Set([keyOf(b)]));
  });

  it('counts a refused connection as failed, and sends each check on a connection of its own', async () => {
    const [a, b] = [await upstream(), await upstream()];
    const gone = await upstream();
    await stopUpstream(gone);
    update({ path: '/healthz', intervalMs: INTERVAL, unhealthyThreshold: 1 }, [a.port, b.port, gone.port]);
    await nextCheck(gone, 0);
    expect(stateOf(gone.port)).toBe('UNHEALTHY');
    await eventually(() => expect(done(a)).toBe(1));
    expect(picked()).toEqual(new Set([keyOf(a), keyOf(b)]));
    await nextCheck(a);
    const [first, second] = checks.get(a.port) ?? [];
    expect(first?.method).toBe('GET');
    expect(first?.headers['user-agent']).toBe('weft-health-check');
    expect(first?.socket).not.toBe(second?.socket);
    expect(a.connections).toBe(2);
    const pool = manager.get('web')?.pick(ctx(Math.random))?.pool;
    expect((pool as Pool | undefined)?.stats.connected).toBe(0); // the endpoint's pool was never used
  });

  it('picks from all endpoints when too many fail their checks (panic threshold)', async () => {
    const [a, b] = [await upstream(), await upstream()];
    answer.set(a.port, 503);
    answer.set(b.port, 503);
    update({ path: '/healthz', intervalMs: INTERVAL, unhealthyThreshold: 1 }, [a.port, b.port]);
    await nextCheck(a, 0);
    await eventually(() => expect(done(b)).toBe(1));
    expect([stateOf(a.port), stateOf(b.port)]).toEqual(['UNHEALTHY', 'UNHEALTHY']);
    expect(manager.snapshot().clusters[0]?.panic).toBe(true);
    expect(picked()).toEqual(new Set([keyOf(a), keyOf(b)]));
  });

  it('stops checking an endpoint that is removed, and everything when the manager closes', async () => {
    const [a, b] = [await upstream(), await upstream()];
    update({ path: '/healthz', intervalMs: INTERVAL }, [a.port, b.port]);
    await nextCheck(a, 0);
    await eventually(() => expect(done(b)).toBe(1));
    update({ path: '/healthz', intervalMs: INTERVAL }, [a.port]);
    await nextCheck(a);
    await nextCheck(a);
    expect(seen(b)).toBe(1);
    await manager.close();
    await vi.advanceTimersByTimeAsync(5 * INTERVAL);
    await realSleep(50);
    expect(seen(a)).toBe(3);
  });

  it('aborts a check in flight when its endpoint goes', async () => {
    const a = await upstream();
    answer.set(a.port, 'hang');
    update({ path: '/healthz', intervalMs: INTERVAL }, [a.port]);
    await vi.advanceTimersByTimeAsync(0);
    await eventually(() => expect(seen(a)).toBe(1));
    const socket = checks.get(a.port)?.[0]?.socket;
    update(undefined, [a.port]);
    await eventually(() => expect(socket?.destroyed).toBe(true));
    expect(done(a)).toBe(0); // no result for a check of a stopped checker
  });

  it('keeps an endpoint UNHEALTHY across a push that changes the check; no checks, no health state', async () => {
    const a = await upstream();
    const b = await upstream();
    answer.set(a.port, 503);
    update({ path: '/healthz', intervalMs: INTERVAL, unhealthyThreshold: 1 }, [a.port, b.port]);
    await nextCheck(a, 0);
    expect(stateOf(a.port)).toBe('UNHEALTHY');
    update({ path: '/healthz', intervalMs: 2 * INTERVAL, unhealthyThreshold: 1 }, [a.port, b.port]);
    expect(stateOf(a.port)).toBe('UNHEALTHY');
    expect(picked()).toEqual(new Set([keyOf(b)]));
    update(undefined, [a.port, b.port]); // checks off: every endpoint counts as healthy
    expect(stateOf(a.port)).toBeUndefined();
    expect(picked()).toEqual(new Set([keyOf(a), keyOf(b)]));
  });
});
