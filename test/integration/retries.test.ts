/**
 * Retries end to end: a real `weft sidecar` on a bootstrap whose routes set `Route.retry`, real
 * upstreams on loopback, undici as the client.
 *
 * - Steady load: cluster `api` has three endpoints, one of which answers 503 to every other request
 *   (a deterministic alternation, so the figures do not depend on a seed). With two retries on 503,
 *   the client must see ≥ 99.9 % success over 2000 requests, and the upstreams' total attempts must
 *   stay within the cluster's retry budget: requests × 1.2 plus the budget's minimum of 10 retries
 *   per second (per 10 s window). The sidecar's `weft_retries_total` must account for the extra
 *   attempts. Concurrent retries default to 1024 (Envoy Gateway), so only the budget limits them.
 * - Bodies: a 10 KiB POST on a route that allows POST retries is retried with an identical body (the
 *   upstream compares sha256); a 1 MiB POST is not (over the 64 KiB buffer), nor is any POST on a route
 *   that does not list POST.
 * - Deadlines: a `grpc-timeout` shrinks across attempts as the upstream sees it.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RetryPolicy, VirtualHost } from '../../sidecar/proxy/config/types.ts';
import { outboundBootstrap, type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';

const REQUESTS = 2000;
const CONCURRENCY = 16;
const BUDGET_PERCENT = 20;
const BUDGET_MIN_PER_SECOND = 10;
const BUDGET_WINDOW_S = 10;

/** One request as an upstream saw it. */
interface Hit {
  readonly status: number;
  readonly attempt: string | undefined;
  readonly grpcTimeout: string | undefined;
  readonly bodyBytes: number;
  readonly bodySha256: string;
}

/** An upstream that reads the whole body, then answers `decide(n, req)` (n: 0-based request index). */
async function countingUpstream(
  decide: (n: number, req: IncomingMessage) => number,
): Promise<{ upstream: Upstream; hits: Hit[] }> {
  const hits: Hit[] = [];
  const upstream = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      const status = decide(hits.length, req);
      const attempt = req.headers['x-weft-attempt'];
      const grpc = req.headers['grpc-timeout'];
      hits.push({
        status,
        attempt: typeof attempt === 'string' ? attempt : undefined,
        grpcTimeout: typeof grpc === 'string' ? grpc : undefined,
        bodyBytes: bytes,
        bodySha256: hash.digest('hex'),
      });
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'busy');
    });
  });
  return { upstream, hits };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hostRoute(name: string, domain: string, cluster: string, retry: RetryPolicy): VirtualHost {
  return { name, domains: [domain], routes: [{ name, route: { clusters: [{ name: cluster }] }, retry }] };
}

/** The value of a counter sample in a Prometheus text exposition (0 when absent). */
function sample(metrics: string, name: string, labels: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('retries through a real sidecar', () => {
  let steady1: Awaited<ReturnType<typeof countingUpstream>>;
  let steady2: Awaited<ReturnType<typeof countingUpstream>>;
  let flaky: Awaited<ReturnType<typeof countingUpstream>>;
  let alternating: Awaited<ReturnType<typeof countingUpstream>>;
  let byAttempt: Awaited<ReturnType<typeof countingUpstream>>;
  let sidecar: RunningSidecar;
  let pool: Pool;

  beforeAll(async () => {
    steady1 = await countingUpstream(() => 200);
    steady2 = await countingUpstream(() => 200);
    flaky = await countingUpstream((n) => (n % 2 === 0 ? 503 : 200));
    alternating = await countingUpstream((n) => (n % 2 === 0 ? 503 : 200));
    byAttempt = await countingUpstream((_n, req) => (Number(req.headers['x-weft-attempt']) < 3 ? 503 : 200));
    const endpoint = (u: Upstream) => ({ address: '127.0.0.1', port: u.port });
    sidecar = await startSidecar(
      outboundBootstrap({
        virtualHosts: [
          hostRoute('api', 'api', 'api', { numRetries: 2, retryOnStatus: [503] }),
          hostRoute('post', 'post', 'alternating', {
            numRetries: 1,
            retryOnStatus: [503],
            retryMethods: ['POST'],
          }),
          hostRoute('post-default', 'post-default', 'alternating', { numRetries: 1, retryOnStatus: [503] }),
          hostRoute('grpc', 'grpc', 'by-attempt', {
            numRetries: 3,
            retryOnStatus: [503],
            backoffBaseMs: 100,
            backoffMaxMs: 400,
          }),
        ],
        clusters: [
          {
            name: 'api',
            retryBudget: { percent: BUDGET_PERCENT, minRetriesPerSecond: BUDGET_MIN_PER_SECOND },
          },
          { name: 'alternating' },
          { name: 'by-attempt' },
        ],
        endpoints: [
          {
            clusterName: 'api',
            endpoints: [endpoint(steady1.upstream), endpoint(steady2.upstream), endpoint(flaky.upstream)],
          },
          { clusterName: 'alternating', endpoints: [endpoint(alternating.upstream)] },
          { clusterName: 'by-attempt', endpoints: [endpoint(byAttempt.upstream)] },
        ],
      }),
    );
    pool = new Pool(sidecar.url('outbound'), { connections: CONCURRENCY, pipelining: 1 });
  });

  afterAll(async () => {
    await pool?.close();
    await sidecar?.stop();
    for (const u of [steady1, steady2, flaky, alternating, byAttempt]) await u?.upstream.close();
  });

  it('keeps client success ≥ 99.9 % against an endpoint failing half its requests, within the retry budget', async () => {
    const statuses = new Map<number, number>();
    let next = 0;
    const started = performance.now();
    const lane = async (): Promise<void> => {
      while (next < REQUESTS) {
        next++;
        const res = await pool.request({ path: '/', method: 'GET', headers: { host: 'api' } });
        await res.body.text();
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
    const elapsedS = (performance.now() - started) / 1000;

    const ok = statuses.get(200) ?? 0;
    const attempts = steady1.hits.length + steady2.hits.length + flaky.hits.length;
    const upstream503 = flaky.hits.filter((h) => h.status === 503).length;
    const allowance = BUDGET_MIN_PER_SECOND * BUDGET_WINDOW_S * Math.ceil(elapsedS / BUDGET_WINDOW_S);
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.adminPort}/metrics`)).text();
    const retries = sample(metrics, 'weft_retries_total', 'cluster="api",reason="5xx"');
    const skipped = ['budget_exhausted', 'overflow', 'body_not_replayable', 'no_time_left'].map((reason) =>
      sample(metrics, 'weft_retries_skipped_total', `cluster="api",reason="${reason}"`),
    );
    console.info(
      `retries: ${REQUESTS} requests in ${elapsedS.toFixed(2)} s, ${ok} × 200 (${((100 * ok) / REQUESTS).toFixed(2)} %), ` +
        `statuses ${JSON.stringify(Object.fromEntries(statuses))}; upstream attempts ${attempts} ` +
        `(${(attempts / REQUESTS).toFixed(3)} per request, flaky ${flaky.hits.length} with ${upstream503} × 503); ` +
        `weft_retries_total ${retries}, skipped [budget, overflow, body, time] ${skipped.join(', ')}; ` +
        `budget bound ${REQUESTS * (1 + BUDGET_PERCENT / 100) + allowance}`,
    );

    expect(ok / REQUESTS).toBeGreaterThanOrEqual(0.999);
    expect(upstream503).toBeGreaterThan(REQUESTS / 10); // the flaky endpoint really did fail
    expect(attempts).toBeLessThanOrEqual(REQUESTS * (1 + BUDGET_PERCENT / 100) + allowance);
    // Every extra attempt is a counted retry (a keep-alive race retry would be the only other kind).
    expect(retries).toBeGreaterThanOrEqual(attempts - REQUESTS - 5);
    expect(retries).toBeLessThanOrEqual(attempts - REQUESTS);
  });

  it('retries a 10 KiB POST on a route that allows it, with an identical body', async () => {
    const data = randomBytes(10 * 1024);
    const before = alternating.hits.length;
    // The alternating upstream answers its even-numbered requests 503: line the POST up with one.
    if (before % 2 === 1)
      await (await pool.request({ path: '/', method: 'GET', headers: { host: 'post' } })).body.text();
    const from = alternating.hits.length;
    const res = await pool.request({
      path: '/upload',
      method: 'POST',
      headers: { host: 'post' },
      body: data,
    });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    const hits = alternating.hits.slice(from);
    expect(hits.map((h) => [h.status, h.attempt, h.bodyBytes, h.bodySha256])).toEqual([
      [503, '1', data.length, sha256(data)],
      [200, '2', data.length, sha256(data)],
    ]);
  });

  it('does not retry a 1 MiB POST (over the 64 KiB buffer) even where POST retries are configured', async () => {
    const data = randomBytes(1024 * 1024);
    if (alternating.hits.length % 2 === 1) {
      await (await pool.request({ path: '/', method: 'GET', headers: { host: 'post' } })).body.text();
    }
    const from = alternating.hits.length;
    const res = await pool.request({
      path: '/upload',
      method: 'POST',
      headers: { host: 'post' },
      body: data,
    });
    await res.body.text();
    expect(res.statusCode).toBe(503);
    expect(alternating.hits.slice(from).map((h) => [h.status, h.bodyBytes, h.bodySha256])).toEqual([
      [503, data.length, sha256(data)],
    ]);
  });

  it('does not retry a POST on a route that does not list POST', async () => {
    if (alternating.hits.length % 2 === 1) {
      await (await pool.request({ path: '/', method: 'GET', headers: { host: 'post-default' } })).body.text();
    }
    const from = alternating.hits.length;
    const res = await pool.request({
      path: '/upload',
      method: 'POST',
      headers: { host: 'post-default' },
      body: 'small',
    });
    await res.body.text();
    expect(res.statusCode).toBe(503);
    expect(alternating.hits.length - from).toBe(1);
  });

  it('shrinks grpc-timeout across attempts, as the upstream sees it', async () => {
    const from = byAttempt.hits.length;
    const res = await pool.request({
      path: '/pkg.Service/Method',
      method: 'GET',
      headers: { host: 'grpc', 'grpc-timeout': '5S' },
    });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    const hits = byAttempt.hits.slice(from);
    expect(hits.map((h) => h.attempt)).toEqual(['1', '2', '3']);
    const ms = hits.map((h) => {
      expect(h.grpcTimeout).toMatch(/^\d{1,8}m$/);
      return Number.parseInt(h.grpcTimeout ?? '', 10);
    });
    expect(ms[0]).toBeLessThanOrEqual(5000);
    expect(ms[0]).toBeGreaterThan(4900);
    expect(ms[1]).toBeLessThan(ms[0] as number);
    expect(ms[2]).toBeLessThan(ms[1] as number);
  });
});
