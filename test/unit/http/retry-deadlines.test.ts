/**
 * Retries against the clock, with fake timers: per-try timeouts, the route's request timeout as a
 * hard bound over all attempts and back-offs, `grpc-timeout` shrinking across attempts (as the
 * upstream sees it) and acting as a deadline, back-off jitter within its bounds, the retry slot held
 * through the back-off, and the back-off abandoned when the client goes away.
 *
 * Only `Date` and `setInterval` are faked: the proxy's shared coarse timer (sidecar/proxy/timers.ts)
 * runs on exactly those, while sockets, undici and node:http keep their real timers. Time moves only
 * when a test advances it, so every duration below is exact to the tick.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RetryPolicy, Route } from '../../../sidecar/proxy/config/types.ts';
import { TICK_MS } from '../../../sidecar/proxy/timers.ts';
import {
  type Action,
  collectRetryEvents,
  endpointFor,
  type Reply,
  route,
  type Seen,
  scriptedUpstream,
  send,
  startProxy,
  TestCluster,
  until,
} from './retry-helpers.ts';

beforeAll(() => {
  vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval'] });
});
afterAll(() => {
  vi.useRealTimers();
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Rig {
  readonly port: number;
  readonly cluster: TestCluster;
  readonly log: Seen[];
  readonly events: ReturnType<typeof collectRetryEvents>['events'];
}

async function rig(scripts: readonly ((n: number) => Action)[], extra: Partial<Route>): Promise<Rig> {
  const log: Seen[] = [];
  const ports: number[] = [];
  for (const [i, script] of scripts.entries()) {
    const u = await scriptedUpstream(String.fromCharCode(97 + i), script, log);
    ports.push(u.port);
    cleanups.push(() => u.close());
  }
  const cluster = new TestCluster('c', ports.map(endpointFor));
  cleanups.push(() => cluster.close());
  const proxy = await startProxy([route('r', 'c', extra)], [cluster]);
  cleanups.push(() => proxy.close());
  const collector = collectRetryEvents();
  cleanups.push(() => collector.stop());
  return { port: proxy.port, cluster, log, events: collector.events };
}

const always =
  (action: Action) =>
  (_n: number): Action =>
    action;

/** A request in flight, settled or not, without awaiting it. */
function inFlight(promise: Promise<Reply>): {
  reply: Reply | undefined;
  error: unknown;
  done: () => boolean;
} {
  const state: { reply: Reply | undefined; error: unknown; settled: boolean } = {
    reply: undefined,
    error: undefined,
    settled: false,
  };
  promise.then(
    (r) => {
      state.reply = r;
      state.settled = true;
    },
    (err: unknown) => {
      state.error = err;
      state.settled = true;
    },
  );
  return {
    get reply() {
      return state.reply;
    },
    get error() {
      return state.error;
    },
    done: () => state.settled,
  };
}

/** Real time (ms) given to loopback I/O after each fake tick before time moves on. */
const SETTLE_MS = 25;

/**
 * Moves fake time forward one coarse-timer tick at a time (every deadline in the proxy fires on a
 * tick, so nothing is skipped), letting real I/O land between ticks, until `cond()` holds; fails
 * after `maxMs` of fake time.
 */
async function advanceUntil(cond: () => boolean, maxMs: number): Promise<void> {
  const end = Date.now() + maxMs;
  for (;;) {
    await until(cond, SETTLE_MS).catch(() => undefined);
    if (cond()) return;
    if (Date.now() >= end) throw new Error(`condition not met within ${maxMs} ms of fake time`);
    await vi.advanceTimersByTimeAsync(TICK_MS);
  }
}

describe('per-try timeout', () => {
  it('retries an attempt that outlives perTryTimeoutMs on another endpoint', async () => {
    const r = await rig([always('hang'), always({ status: 200 })], {
      retry: { numRetries: 1, perTryTimeoutMs: 1000 },
    });
    const start = Date.now();
    const req = inFlight(send(r.port));
    await advanceUntil(() => req.done(), 5000);
    expect(req.reply?.status).toBe(200);
    expect(r.log.map((s) => [s.upstream, s.attempt])).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
    // b was reached after the per-try timeout (one tick of precision) plus the back-off (≤ 25 ms + a tick).
    const atB = (r.log[1] as Seen).atMs - start;
    expect(atB).toBeGreaterThanOrEqual(1000);
    expect(atB).toBeLessThanOrEqual(1000 + TICK_MS + 25 + TICK_MS);
    expect(r.cluster.outcomes[0]?.outcome).toEqual({ kind: 'error', error: 'UPSTREAM_TIMEOUT' });
    expect(r.events).toEqual([{ cluster: 'c', retried: true, reason: 'per_try_timeout' }]);
  });

  it("uses the route's backendRequestMs as the per-try timeout when the policy sets none", async () => {
    const r = await rig([always('hang'), always({ status: 200 })], {
      retry: { numRetries: 1 },
      timeouts: { backendRequestMs: 500 },
    });
    const req = inFlight(send(r.port));
    await advanceUntil(() => req.done(), 5000);
    expect(req.reply?.status).toBe(200);
    expect(r.events).toEqual([{ cluster: 'c', retried: true, reason: 'per_try_timeout' }]);
  });

  it('answers 504 UPSTREAM_TIMEOUT when the per-try timeout is not retried (attempts used up)', async () => {
    const r = await rig([always('hang')], { retry: { numRetries: 1, perTryTimeoutMs: 300 } });
    const req = inFlight(send(r.port));
    await advanceUntil(() => req.done(), 5000);
    expect(req.reply?.status).toBe(504);
    expect(req.reply?.headers['x-weft-error']).toBe('UPSTREAM_TIMEOUT');
    expect(r.log).toHaveLength(2);
  });
});

describe('the route request timeout bounds the whole exchange', () => {
  it('answers 504 REQUEST_TIMEOUT at the request timeout whatever attempts remain', async () => {
    const r = await rig([always('hang'), always('hang')], {
      timeouts: { requestMs: 1000 },
      retry: { numRetries: 10, perTryTimeoutMs: 300, retryOnStatus: [503] },
    });
    const start = Date.now();
    const req = inFlight(send(r.port));
    await advanceUntil(() => req.done(), 5000);
    const elapsed = Date.now() - start;
    expect(req.reply?.status).toBe(504);
    expect(req.reply?.headers['x-weft-error']).toBe('REQUEST_TIMEOUT');
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeLessThanOrEqual(1000 + TICK_MS);
    // 300 ms per try plus back-off: at most 4 attempts fit in 1 s.
    expect(r.log.length).toBeGreaterThanOrEqual(2);
    expect(r.log.length).toBeLessThanOrEqual(4);
    for (const s of r.log) expect(s.atMs - start).toBeLessThan(1000);
    await until(() => r.cluster.activeRequests === 0 && r.cluster.activeRetries === 0);
  });

  it('skips a retry whose back-off would not end before the deadline (no_time_left)', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.99);
    const r = await rig([always({ status: 503 }), always({ status: 200 })], {
      timeouts: { requestMs: 1000 },
      retry: { numRetries: 2, retryOnStatus: [503], backoffBaseMs: 2000, backoffMaxMs: 2000 },
    });
    const start = Date.now();
    const req = inFlight(send(r.port));
    await advanceUntil(() => req.done(), 500);
    expect(req.reply?.status).toBe(503);
    expect(Date.now() - start).toBeLessThan(100);
    expect(r.log).toHaveLength(1);
    expect(r.events).toEqual([{ cluster: 'c', retried: false, reason: 'no_time_left' }]);
  });
});

describe('grpc-timeout', () => {
  it('shrinks across attempts as the upstream sees it: the time left, in milliseconds', async () => {
    const r = await rig([(n) => (n < 2 ? { status: 503 } : { status: 200 })], {
      retry: { numRetries: 3, retryOnStatus: [503], backoffBaseMs: 100, backoffMaxMs: 1000 },
    });
    const start = Date.now();
    const req = inFlight(send(r.port, { headers: { 'grpc-timeout': '5S' } }));
    await advanceUntil(() => req.done(), 3000);
    expect(req.reply?.status).toBe(200);
    expect(r.log).toHaveLength(3);
    const values = r.log.map((s) => s.grpcTimeout);
    for (const [i, s] of r.log.entries()) expect(values[i]).toBe(`${5000 - (s.atMs - start)}m`);
    const ms = values.map((v) => Number.parseInt(v ?? '', 10));
    expect(ms[0]).toBe(5000);
    expect(ms[1]).toBeLessThan(ms[0] as number);
    expect(ms[2]).toBeLessThan(ms[1] as number);
  });

  it('carries the smaller of the route timeout and grpc-timeout', async () => {
    const r = await rig([always({ status: 200 })], { timeouts: { requestMs: 2000 } });
    const req = inFlight(send(r.port, { headers: { 'grpc-timeout': '1H' } }));
    await advanceUntil(() => req.done(), 100);
    expect(r.log[0]?.grpcTimeout).toBe('2000m');
  });

  it('is a deadline: 504 REQUEST_TIMEOUT when it runs out, even without a route timeout', async () => {
    const r = await rig([always('hang')], {});
    const start = Date.now();
    const req = inFlight(send(r.port, { headers: { 'grpc-timeout': '300000u' } }));
    await advanceUntil(() => req.done(), 2000);
    expect(req.reply?.status).toBe(504);
    expect(req.reply?.headers['x-weft-error']).toBe('REQUEST_TIMEOUT');
    expect(Date.now() - start).toBeLessThanOrEqual(300 + TICK_MS);
    expect(r.log[0]?.grpcTimeout).toBe('300m');
  });

  it('is forwarded untouched and not enforced when malformed', async () => {
    const r = await rig([always({ status: 200 })], {});
    const req = inFlight(send(r.port, { headers: { 'grpc-timeout': '123456789m' } }));
    await advanceUntil(() => req.done(), 100);
    expect(r.log[0]?.grpcTimeout).toBe('123456789m');
  });
});

describe('back-off', () => {
  it('waits a full-jitter back-off within [base, max] bounds: floor(r × min(max, base × (2^n − 1)))', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.75);
    const policy: RetryPolicy = {
      numRetries: 3,
      retryOnStatus: [503],
      backoffBaseMs: 100,
      backoffMaxMs: 500,
    };
    const r = await rig([(n) => (n < 3 ? { status: 503 } : { status: 200 })], { retry: policy });
    const req = inFlight(send(r.port));
    await advanceUntil(() => req.done(), 5000);
    expect(req.reply?.status).toBe(200);
    const gaps = r.log.slice(1).map((s, i) => s.atMs - (r.log[i] as Seen).atMs);
    const expected = [75, 225, 375]; // 0.75 × 100, 0.75 × 300, 0.75 × min(500, 700)
    for (const [i, gap] of gaps.entries()) {
      expect(gap).toBeGreaterThanOrEqual(expected[i] as number);
      expect(gap).toBeLessThanOrEqual((expected[i] as number) + TICK_MS);
    }
  });

  it('holds the retry slot while backing off, and gives it back when the client goes away', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.99);
    const r = await rig([always({ status: 503 }), always({ status: 200 })], {
      retry: { numRetries: 2, retryOnStatus: [503], backoffBaseMs: 5000, backoffMaxMs: 5000 },
    });
    const controller = new AbortController();
    const { request } = await import('undici');
    const pending = request(`http://127.0.0.1:${r.port}/`, {
      headers: { host: 'svc' },
      signal: controller.signal,
      reset: true,
    }).catch((err: unknown) => err);
    await until(() => r.log.length === 1 && r.cluster.activeRetries === 1, 2000, 'first attempt');
    expect(r.cluster.activeRequests).toBe(1);
    controller.abort();
    await pending;
    await until(() => r.cluster.activeRetries === 0 && r.cluster.activeRequests === 0, 2000, 'release');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(r.log).toHaveLength(1);
    expect(r.cluster.peakRetries).toBe(1);
  });
});
