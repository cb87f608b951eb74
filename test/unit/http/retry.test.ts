/**
 * Retries in the forwarder, in process with real sockets on loopback (timers do not matter here:
 * back-offs are a few tens of milliseconds; deadline behaviour is in retry-deadlines.test.ts with
 * fake timers). A scriptable upstream answers with a status, resets before the head or in the
 * middle of the body; a fake cluster implements the resilience hooks with counters, so each test
 * also checks that admission and retry slots balance and that every attempt's outcome is recorded.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer as createTcpServer } from 'node:net';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { RetryPolicy } from '../../../sidecar/proxy/config/types.ts';
import { ProxyMetrics } from '../../../sidecar/proxy/telemetry/metrics.ts';
import {
  type Action,
  chunked,
  collectRetryEvents,
  endpointFor,
  route,
  type ScriptedUpstream,
  type Seen,
  scriptedUpstream,
  send,
  sha256,
  startProxy,
  TestCluster,
} from './retry-helpers.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** A port on 127.0.0.1 with nothing listening. */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Rig {
  readonly port: number;
  readonly cluster: TestCluster;
  readonly log: Seen[];
  readonly upstreams: ScriptedUpstream[];
  readonly events: ReturnType<typeof collectRetryEvents>['events'];
}

/**
 * Upstreams `a`, `b`, … with the given scripts behind one cluster `c` (round robin from `a`), one
 * route with `retry` (and `extra` route fields), and a retry event collector.
 */
async function rig(
  scripts: readonly ((n: number) => Action)[],
  retry: RetryPolicy | undefined,
  options: { extraPorts?: readonly number[] } = {},
): Promise<Rig> {
  const log: Seen[] = [];
  const upstreams: ScriptedUpstream[] = [];
  for (const [i, script] of scripts.entries()) {
    const u = await scriptedUpstream(String.fromCharCode(97 + i), script, log);
    upstreams.push(u);
    cleanups.push(() => u.close());
  }
  const ports = [...(options.extraPorts ?? []), ...upstreams.map((u) => u.port)];
  const cluster = new TestCluster('c', ports.map(endpointFor));
  cleanups.push(() => cluster.close());
  const proxy = await startProxy([route('r', 'c', retry === undefined ? {} : { retry })], [cluster]);
  cleanups.push(() => proxy.close());
  const collector = collectRetryEvents();
  cleanups.push(() => collector.stop());
  return { port: proxy.port, cluster, log, upstreams, events: collector.events };
}

const always =
  (action: Action) =>
  (_n: number): Action =>
    action;
const ok: Action = { status: 200 };

/** Every admitted request and retry slot was released; no endpoint counts an active request. */
function expectBalanced(cluster: TestCluster): void {
  expect(cluster.activeRequests).toBe(0);
  expect(cluster.activeRetries).toBe(0);
  for (const e of cluster.endpoints) expect(e.activeRequests).toBe(0);
}

const on503: RetryPolicy = { numRetries: 2, retryOnStatus: [503] };

describe('retries on each trigger', () => {
  it('retries a 503 on another endpoint and forwards only the final 200', async () => {
    const r = await rig([always({ status: 503, body: 'a is busy' }), always(ok)], on503);
    const reply = await send(r.port);
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('b 200');
    expect(r.log.map((s) => [s.upstream, s.attempt])).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
    expect(r.cluster.outcomes).toEqual([
      { endpoint: r.cluster.endpoints[0]?.key, outcome: { kind: 'response', status: 503 } },
      { endpoint: r.cluster.endpoints[1]?.key, outcome: { kind: 'response', status: 200 } },
    ]);
    expect(r.events).toEqual([{ cluster: 'c', retried: true, reason: '5xx' }]);
    expect(r.cluster.admittedRequests).toBe(1);
    expect(r.cluster.admittedRetries).toBe(1);
    expectBalanced(r.cluster);
  });

  it('fails N times then succeeds within numRetries (one endpoint: retries fall back to it)', async () => {
    const r = await rig([(n) => (n < 2 ? { status: 503 } : ok)], on503);
    const reply = await send(r.port);
    expect(reply.status).toBe(200);
    expect(r.log.map((s) => s.attempt)).toEqual(['1', '2', '3']);
    expect(r.events).toHaveLength(2);
    expectBalanced(r.cluster);
  });

  it('forwards the last upstream answer as is when the attempts run out', async () => {
    const r = await rig([(n) => ({ status: 503, body: `busy ${n}` })], on503);
    const reply = await send(r.port);
    expect(reply.status).toBe(503);
    expect(reply.body).toBe('busy 2');
    expect(reply.headers['x-weft-error']).toBeUndefined();
    expect(r.log).toHaveLength(3);
    expectBalanced(r.cluster);
  });

  it('reads a small retried response to its end and reuses its connection; aborts a large one', async () => {
    const small = await rig([(n) => (n === 0 ? { status: 503, body: 'short' } : ok)], on503);
    expect((await send(small.port)).status).toBe(200);
    expect(small.log).toHaveLength(2);
    expect(small.upstreams[0]?.connections()).toBe(1);

    const big = 'x'.repeat(100 * 1024);
    const large = await rig([(n) => (n === 0 ? { status: 503, body: big } : ok)], on503);
    const reply = await send(large.port);
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('a 200');
    expect(large.log).toHaveLength(2);
    expect(large.upstreams[0]?.connections()).toBe(2);
    expectBalanced(large.cluster);
  });

  it('does not retry a status the policy does not list', async () => {
    const r = await rig([always({ status: 500 }), always(ok)], on503);
    const reply = await send(r.port);
    expect(reply.status).toBe(500);
    expect(r.log).toHaveLength(1);
    expect(r.events).toEqual([]);
    expectBalanced(r.cluster);
  });

  it('retries a connect failure only with retryOnConnectFailure', async () => {
    const dead = await closedPort();
    const r = await rig([always(ok)], { ...on503, retryOnConnectFailure: true }, { extraPorts: [dead] });
    const reply = await send(r.port);
    expect(reply.status).toBe(200);
    expect(r.cluster.outcomes[0]).toEqual({
      endpoint: `127.0.0.1:${dead}`,
      outcome: { kind: 'error', error: 'UPSTREAM_CONNECT_FAILURE' },
    });
    expect(r.log.map((s) => s.attempt)).toEqual(['2']);
    expect(r.events).toEqual([{ cluster: 'c', retried: true, reason: 'connect_failure' }]);
    expectBalanced(r.cluster);

    const without = await rig([always(ok)], on503, { extraPorts: [dead] });
    const refused = await send(without.port);
    expect(refused.status).toBe(503);
    expect(refused.headers['x-weft-error']).toBe('UPSTREAM_CONNECT_FAILURE');
    expect(without.log).toHaveLength(0);
    expectBalanced(without.cluster);
  });

  it('retries a reset before the response head only with retryOnReset (after the keep-alive race retry)', async () => {
    const r = await rig([always('reset-before-headers'), always(ok)], { ...on503, retryOnReset: true });
    const reply = await send(r.port);
    expect(reply.status).toBe(200);
    // The race retry re-sends attempt 1 on a fresh connection to `a`, outside the policy.
    expect(r.log.map((s) => [s.upstream, s.attempt])).toEqual([
      ['a', '1'],
      ['a', '1'],
      ['b', '2'],
    ]);
    expect(r.events).toEqual([{ cluster: 'c', retried: true, reason: 'reset' }]);
    expect(r.cluster.outcomes.map((o) => o.outcome)).toEqual([
      { kind: 'error', error: 'UPSTREAM_RESET' },
      { kind: 'response', status: 200 },
    ]);
    expectBalanced(r.cluster);

    const without = await rig([always('reset-before-headers'), always(ok)], on503);
    const reset = await send(without.port);
    expect(reset.status).toBe(502);
    expect(reset.headers['x-weft-error']).toBe('UPSTREAM_RESET');
    expect(without.log.map((s) => s.upstream)).toEqual(['a', 'a']);
    expectBalanced(without.cluster);
  });

  it('never retries once response bytes went downstream (reset in the middle of the body)', async () => {
    const r = await rig([always('reset-mid-body'), always(ok)], { ...on503, retryOnReset: true });
    const res = await request(`http://127.0.0.1:${r.port}/`, { headers: { host: 'svc' }, reset: true });
    expect(res.statusCode).toBe(200);
    await expect(res.body.text()).rejects.toThrow();
    expect(r.log).toHaveLength(1);
    expect(r.events).toEqual([]);
    expect(r.cluster.outcomes).toHaveLength(1);
    // The exchange releases its slot when the broken response ends: wait for that, with a deadline.
    await expect.poll(() => r.cluster.activeRequests, { timeout: 2000, interval: 10 }).toBe(0);
    expectBalanced(r.cluster);
  });
});

describe('methods and bodies', () => {
  const postRetry: RetryPolicy = { ...on503, retryMethods: ['POST'] };

  it('does not retry a POST by default (idempotent methods only), and does not count it as skipped', async () => {
    const r = await rig([always({ status: 503 }), always(ok)], on503);
    const reply = await send(r.port, { method: 'POST', body: 'hello' });
    expect(reply.status).toBe(503);
    expect(r.log).toHaveLength(1);
    expect(r.events).toEqual([]);
    expectBalanced(r.cluster);
  });

  it('retries a PUT by default (idempotent) with its body', async () => {
    const r = await rig([always({ status: 503 }), always(ok)], on503);
    const reply = await send(r.port, { method: 'PUT', body: 'x'.repeat(100) });
    expect(reply.status).toBe(200);
    expect(r.log.map((s) => s.bodyBytes)).toEqual([100, 100]);
  });

  it.each([
    ['with Content-Length', (data: Buffer) => data],
    ['chunked, without Content-Length', (data: Buffer) => chunked(data, 1000)],
  ])('retries a 10 KiB POST when configured, sending an identical body (%s)', async (_name, body) => {
    const data = randomBytes(10 * 1024);
    const r = await rig([always({ status: 503 }), always(ok)], postRetry);
    const reply = await send(r.port, { method: 'POST', body: body(data) });
    expect(reply.status).toBe(200);
    expect(r.log.map((s) => [s.upstream, s.bodyBytes, s.bodySha256])).toEqual([
      ['a', data.length, sha256(data)],
      ['b', data.length, sha256(data)],
    ]);
    expectBalanced(r.cluster);
  });

  it.each([
    ['with Content-Length', (data: Buffer) => data],
    ['chunked, outgrowing the buffer while read', (data: Buffer) => chunked(data, 16 * 1024)],
  ])('does not retry a 1 MiB POST even when configured, and streams it intact (%s)', async (_name, body) => {
    const data = randomBytes(1024 * 1024);
    const r = await rig([always({ status: 503, body: 'too busy' }), always(ok)], postRetry);
    const reply = await send(r.port, { method: 'POST', body: body(data) });
    expect(reply.status).toBe(503);
    expect(reply.body).toBe('too busy');
    expect(r.log.map((s) => [s.upstream, s.bodyBytes, s.bodySha256])).toEqual([
      ['a', data.length, sha256(data)],
    ]);
    expect(r.events).toEqual([{ cluster: 'c', retried: false, reason: 'body_not_replayable' }]);
    expectBalanced(r.cluster);
  });

  it('buffers up to maxBufferedBodyBytes: a body of exactly the limit is retried', async () => {
    const data = randomBytes(2048);
    const r = await rig([always({ status: 503 }), always(ok)], { ...postRetry, maxBufferedBodyBytes: 2048 });
    expect((await send(r.port, { method: 'POST', body: chunked(data, 512) })).status).toBe(200);
    expect(r.log.map((s) => s.bodySha256)).toEqual([sha256(data), sha256(data)]);
  });
});

describe('cluster hooks and headers', () => {
  it('makes no retry when the cluster refuses it (budget), and counts budget_exhausted', async () => {
    const r = await rig([always({ status: 503 }), always(ok)], on503);
    r.cluster.budget = false;
    const reply = await send(r.port);
    expect(reply.status).toBe(503);
    expect(r.log).toHaveLength(1);
    expect(r.events).toEqual([{ cluster: 'c', retried: false, reason: 'budget_exhausted' }]);
    expectBalanced(r.cluster);
  });

  it('makes no retry when the cluster is at its max active retries, and counts overflow', async () => {
    const r = await rig([always({ status: 503 }), always(ok)], on503);
    r.cluster.retrySlots = false;
    const reply = await send(r.port);
    expect(reply.status).toBe(503);
    expect(r.log).toHaveLength(1);
    expect(r.events).toEqual([{ cluster: 'c', retried: false, reason: 'overflow' }]);
    expectBalanced(r.cluster);
  });

  it('answers 503 OVERFLOW without dispatching when the cluster refuses the request', async () => {
    const r = await rig([always(ok)], on503);
    r.cluster.overflow = true;
    const reply = await send(r.port);
    expect(reply.status).toBe(503);
    expect(reply.headers['x-weft-error']).toBe('OVERFLOW');
    expect(r.log).toHaveLength(0);
    expect(r.cluster.admittedRequests).toBe(0);
    expectBalanced(r.cluster);
  });

  it('sends x-weft-attempt on every attempt, overwriting the client value, with or without a policy', async () => {
    const r = await rig([(n) => (n === 0 ? { status: 503 } : ok)], on503);
    await send(r.port, { headers: { 'x-weft-attempt': '7' } });
    expect(r.log.map((s) => s.attempt)).toEqual(['1', '2']);

    const plain = await rig([always(ok)], undefined);
    await send(plain.port, { headers: { 'x-weft-attempt': '7' } });
    expect(plain.log.map((s) => s.attempt)).toEqual(['1']);
    expectBalanced(plain.cluster);
  });

  it('feeds weft_retries_total and weft_retries_skipped_total through the weft:retry channel', async () => {
    const metrics = new ProxyMetrics({ service: 's', workload: 'w', namespace: 'n' });
    cleanups.push(() => metrics.close());
    const r = await rig([(n) => (n < 3 ? { status: 503 } : ok)], { ...on503, numRetries: 1 });
    await send(r.port); // 503, retry → 503: attempts exhausted (not a skip)
    r.cluster.budget = false;
    await send(r.port); // 503, no budget → skipped
    const { body } = await metrics.expose();
    expect(body).toContain('weft_retries_total{cluster="c",reason="5xx"} 1');
    expect(body).toContain('weft_retries_skipped_total{cluster="c",reason="budget_exhausted"} 1');
  });
});
