/**
 * Edge limits on a GATEWAY listener of the proxy core (issue 7), over real sockets: per-client and
 * per-plan rate limits and quotas (429 with Retry-After and RateLimit-* fields), the RFC 9111
 * response cache (hit / miss / Vary / no-store / private / Authorization / Age / size cap) and the
 * request body limit (413 for a declared length and for a chunked body, upstream aborted).
 *
 * The authenticated principal normally comes from the edge auth filters; here a test filter sets it
 * from `x-test-client` / `x-test-plan` headers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeLimits } from '../../gateway/filters/limits/edge.ts';
import { registerEdgeMetrics } from '../../gateway/filters/limits/telemetry.ts';
import type { ProxyConfig } from '../../sidecar/proxy/config/model.ts';
import type { RateLimitRule, Route } from '../../sidecar/proxy/config/types.ts';
import { CONTINUE, type HttpFilter } from '../../sidecar/proxy/filters/filter.ts';
import { ProxyCore } from '../../sidecar/proxy/proxy.ts';
import { ProxyMetrics } from '../../sidecar/proxy/telemetry/metrics.ts';
import { pollUntil } from '../support/mesh.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';

const principalFromHeaders: HttpFilter = {
  name: 'test.principal',
  onRequest(ctx) {
    const id = ctx.req.headers['x-test-client'];
    if (typeof id === 'string') {
      const plan = ctx.req.headers['x-test-plan'];
      ctx.principal = { clientId: id, plan: typeof plan === 'string' ? plan : '', sub: id, claims: {} };
    }
    return CONTINUE;
  },
};

let upstream: Upstream;
let proxy: ProxyCore;
let metrics: ProxyMetrics;
let base = '';
let xffBase = '';
const hits = new Map<string, number>();
/** Bytes the /upload handler received per request, and whether its request was aborted. */
const uploads: { bytes: number; aborted: boolean }[] = [];

function count(path: string): number {
  const n = (hits.get(path) ?? 0) + 1;
  hits.set(path, n);
  return n;
}

function handler(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0] as string;
  if (path.startsWith('/upload')) {
    const record = { bytes: 0, aborted: false };
    uploads.push(record);
    req.on('data', (c: Buffer) => {
      record.bytes += c.length;
    });
    req.on('aborted', () => {
      record.aborted = true;
    });
    req.on('error', () => {
      record.aborted = true;
    });
    req.on('end', () => res.end(`got ${record.bytes}`));
    return;
  }
  req.resume();
  const n = count(req.url ?? '/');
  const lang = req.headers['accept-language'] ?? 'none';
  const headers: Record<string, string> = { 'content-type': 'text/plain' };
  let body = `${path} #${n}`;
  if (path === '/cache/public') headers['cache-control'] = 'public, max-age=60';
  else if (path === '/cache/plain' || path === '/cache/limited') headers['cache-control'] = 'max-age=60';
  else if (path === '/cache/vary') {
    headers['cache-control'] = 'max-age=60';
    headers.vary = 'accept-language';
    body = `${lang} #${n}`;
  } else if (path === '/cache/nostore') headers['cache-control'] = 'no-store';
  else if (path === '/cache/private') headers['cache-control'] = 'private, max-age=60';
  else if (path === '/cache/big') {
    headers['cache-control'] = 'max-age=60';
    body = 'x'.repeat(2048);
  } else if (path === '/cache/aged') {
    headers['cache-control'] = 'max-age=60';
    headers.age = '10';
  }
  res.writeHead(200, headers);
  res.end(body);
}

function route(name: string, prefix: string, extra: Partial<Route> = {}): Route {
  return {
    name,
    matches: [{ path: { type: 'PATH_PREFIX', value: prefix } }],
    route: { clusters: [{ name: 'app', weight: 1 }] },
    ...extra,
  };
}

const perClient: RateLimitRule = {
  name: 'default/per-client/limit-0',
  selectors: [{ source: 'SOURCE_HEADER', name: 'x-client', match: 'DISTINCT' }],
  requests: 3,
  unit: 'PER_MINUTE',
};

function config(): ProxyConfig {
  return {
    listeners: [
      { name: 'edge', address: '127.0.0.1', port: 0, direction: 'GATEWAY', routeConfigName: 'r' },
      // Behind one trusted proxy: the client address is the last X-Forwarded-For entry.
      {
        name: 'edge-xff',
        address: '127.0.0.1',
        port: 0,
        direction: 'GATEWAY',
        routeConfigName: 'r',
        xffNumTrustedHops: 1,
      },
    ],
    routes: [
      {
        name: 'r',
        virtualHosts: [
          {
            name: 'vh',
            domains: ['*'],
            routes: [
              route('cache-limited', '/cache/limited', {
                cache: {},
                rateLimits: [{ name: 'default/cached/limit-0', requests: 100, unit: 'PER_MINUTE' }],
              }),
              route('cache', '/cache', { cache: { maxEntryBytes: 1024 } }),
              route('upload', '/upload', { maxRequestBodyBytes: 1000 }),
              route('limited', '/limited', { rateLimits: [perClient] }),
              route('quota', '/quota', {
                rateLimits: [
                  {
                    name: 'default/plans/limit-0',
                    plan: 'free',
                    selectors: [{ source: 'SOURCE_CLIENT_ID', match: 'DISTINCT' }],
                    requests: 3,
                    unit: 'PER_DAY',
                  },
                  {
                    name: 'default/plans/limit-1',
                    plan: 'gold',
                    selectors: [{ source: 'SOURCE_CLIENT_ID', match: 'DISTINCT' }],
                    requests: 10,
                    unit: 'PER_DAY',
                  },
                ],
              }),
              route('per-ip', '/ip', {
                rateLimits: [
                  {
                    name: 'default/per-ip/limit-0',
                    selectors: [{ source: 'SOURCE_CLIENT_IP', match: 'DISTINCT' }],
                    requests: 2,
                    unit: 'PER_MINUTE',
                  },
                ],
              }),
              route('open', '/'),
            ],
          },
        ],
      },
    ],
    clusters: [{ name: 'app' }],
    endpoints: [{ clusterName: 'app', endpoints: [{ address: '127.0.0.1', port: upstream.port }] }],
  };
}

async function get(
  path: string,
  headers: Record<string, string> = {},
  method: 'GET' | 'HEAD' = 'GET',
  origin = base,
) {
  const res = await request(`${origin}${path}`, { method, headers });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body };
}

async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  const text = (await metrics.expose()).body;
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (want.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

beforeAll(async () => {
  upstream = await startUpstream(handler);
  metrics = new ProxyMetrics({ service: 'edge', workload: 'edge-v1', namespace: 'default' }, [
    registerEdgeMetrics,
  ]);
  proxy = new ProxyCore({ filters: [principalFromHeaders], listenerFilters: [new EdgeLimits()] });
  await proxy.apply(config(), '1');
  base = `http://127.0.0.1:${proxy.listeners()[0]?.port}`;
  xffBase = `http://127.0.0.1:${proxy.listeners()[1]?.port}`;
});

afterAll(async () => {
  await proxy?.close(0);
  metrics?.close();
  await upstream?.close();
});

describe('edge rate limits (local)', () => {
  it('limits each client key separately: 3 per minute, then 429 with Retry-After and RateLimit-* fields', async () => {
    const statuses: number[] = [];
    let first: Awaited<ReturnType<typeof get>> | undefined;
    let limited: Awaited<ReturnType<typeof get>> | undefined;
    for (let i = 0; i < 5; i++) {
      const r = await get('/limited/x', { 'x-client': 'alice' });
      statuses.push(r.status);
      if (i === 0) first = r;
      if (r.status === 429) limited ??= r;
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(first?.headers['ratelimit-limit']).toBe('3');
    expect(first?.headers['ratelimit-remaining']).toBe('2');
    expect(first?.headers['ratelimit-policy']).toBe('3;w=60');
    const reset = Number(first?.headers['ratelimit-reset']);
    expect(reset).toBeGreaterThan(0);
    expect(reset).toBeLessThanOrEqual(60);
    expect(limited?.headers['x-weft-error']).toBe('RATE_LIMITED');
    expect(limited?.headers['ratelimit-remaining']).toBe('0');
    const retryAfter = Number(limited?.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Another client has its own bucket; a request without the key is not limited by this rule.
    expect((await get('/limited/x', { 'x-client': 'bob' })).status).toBe(200);
    const unkeyed = await get('/limited/x');
    expect(unkeyed.status).toBe(200);
    expect(unkeyed.headers['ratelimit-limit']).toBeUndefined();
    expect(await metricValue('weft_ratelimit_decisions_total', { route: 'limited', result: 'limited' })).toBe(
      2,
    );
    expect(await metricValue('weft_ratelimit_decisions_total', { route: 'limited', result: 'allowed' })).toBe(
      4,
    );
  });

  it('per-plan daily quotas: free gets 3 a day, then 429 with Retry-After until the day ends; gold gets 10', async () => {
    const free: number[] = [];
    let refused: Awaited<ReturnType<typeof get>> | undefined;
    for (let i = 0; i < 5; i++) {
      const r = await get('/quota', { 'x-test-client': 'c-free', 'x-test-plan': 'free' });
      free.push(r.status);
      if (r.status === 429) refused = r;
    }
    expect(free).toEqual([200, 200, 200, 429, 429]);
    const retryAfter = Number(refused?.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(86_400 - 120);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
    expect(refused?.headers['ratelimit-policy']).toBe('3;w=86400');
    const gold: number[] = [];
    for (let i = 0; i < 11; i++) {
      gold.push((await get('/quota', { 'x-test-client': 'c-gold', 'x-test-plan': 'gold' })).status);
    }
    expect(gold.filter((s) => s === 200)).toHaveLength(10);
    expect(gold.at(-1)).toBe(429);
    expect(
      await metricValue('weft_ratelimit_decisions_total', {
        route: 'quota',
        plan: 'free',
        result: 'limited',
      }),
    ).toBe(2);
  });

  it('keys on the client address, trusting X-Forwarded-For only for the configured hops', async () => {
    const viaProxy = async (xff: string) =>
      (await get('/ip', { 'x-forwarded-for': xff }, 'GET', xffBase)).status;
    expect([
      await viaProxy('203.0.113.1'),
      await viaProxy('203.0.113.1'),
      await viaProxy('203.0.113.1'),
    ]).toEqual([200, 200, 429]);
    expect(await viaProxy('203.0.113.2')).toBe(200);
    // Without trusted hops a client cannot pick its bucket by sending X-Forwarded-For.
    const direct = async (xff: string) => (await get('/ip', { 'x-forwarded-for': xff })).status;
    expect([
      await direct('198.51.100.1'),
      await direct('198.51.100.2'),
      await direct('198.51.100.3'),
    ]).toEqual([200, 200, 429]);
    // A route served on two listeners has one bucket set: 127.0.0.1 is spent on both.
    expect(await viaProxy('127.0.0.1')).toBe(429);
  });

  it('keeps counts across a config reload', async () => {
    await proxy.apply(config(), '2');
    const r = await get('/limited/x', { 'x-client': 'alice' });
    expect(r.status).toBe(429);
  });
});

describe('edge response cache (RFC 9111)', () => {
  it('serves a fresh response from the cache with Age and x-weft-cache: hit; HEAD too', async () => {
    const a = await get('/cache/public');
    expect(a.headers['x-weft-cache']).toBe('miss');
    const b = await get('/cache/public');
    expect(b.headers['x-weft-cache']).toBe('hit');
    expect(b.body).toBe(a.body);
    expect(Number(b.headers.age)).toBeGreaterThanOrEqual(0);
    const head = await get('/cache/public', {}, 'HEAD');
    expect(head.headers['x-weft-cache']).toBe('hit');
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(a.body)));
    expect(hits.get('/cache/public')).toBe(1);
  });

  it('adds the stored Age to the time in cache', async () => {
    await get('/cache/aged');
    const hit = await get('/cache/aged');
    expect(hit.headers['x-weft-cache']).toBe('hit');
    expect(Number(hit.headers.age)).toBeGreaterThanOrEqual(10);
  });

  it('respects Vary: one variant per Accept-Language', async () => {
    const en1 = await get('/cache/vary', { 'accept-language': 'en' });
    const fr1 = await get('/cache/vary', { 'accept-language': 'fr' });
    const en2 = await get('/cache/vary', { 'accept-language': 'en' });
    const fr2 = await get('/cache/vary', { 'accept-language': 'fr' });
    expect(en1.headers['x-weft-cache']).toBe('miss');
    expect(fr1.headers['x-weft-cache']).toBe('miss');
    expect(en2.headers['x-weft-cache']).toBe('hit');
    expect(fr2.headers['x-weft-cache']).toBe('hit');
    expect(en2.body).toBe(en1.body);
    expect(fr2.body).toBe(fr1.body);
    expect(en1.body.startsWith('en')).toBe(true);
    expect(fr1.body.startsWith('fr')).toBe(true);
  });

  it('never stores no-store or private responses, nor bodies over the entry cap', async () => {
    for (const path of ['/cache/nostore', '/cache/private', '/cache/big']) {
      await get(path);
      const again = await get(path);
      expect(again.headers['x-weft-cache'], path).toBe('miss');
      expect(hits.get(path), path).toBe(2);
    }
  });

  it('stores a response to a request with Authorization only when it is public (RFC 9111 §3.5)', async () => {
    const auth = { authorization: 'Bearer t' };
    await get('/cache/plain?auth', auth);
    expect((await get('/cache/plain?auth', auth)).headers['x-weft-cache']).toBe('miss');
    await get('/cache/public?auth', auth);
    expect((await get('/cache/public?auth', auth)).headers['x-weft-cache']).toBe('hit');
  });

  it('goes upstream when the client asks for a fresh copy (no-cache)', async () => {
    await get('/cache/plain?nc');
    const r = await get('/cache/plain?nc', { 'cache-control': 'no-cache' });
    expect(r.headers['x-weft-cache']).toBe('miss');
    expect(hits.get('/cache/plain?nc')).toBe(2);
  });

  it('counts cache hits against rate limits and gives them their own RateLimit-* fields', async () => {
    const a = await get('/cache/limited');
    const b = await get('/cache/limited');
    expect(a.headers['x-weft-cache']).toBe('miss');
    expect(b.headers['x-weft-cache']).toBe('hit');
    expect(a.headers['ratelimit-remaining']).toBe('99');
    expect(b.headers['ratelimit-remaining']).toBe('98');
  });

  it('drops the stored response when an unsafe request to the same target succeeds (RFC 9111 §4.4)', async () => {
    await get('/cache/plain?inv');
    expect((await get('/cache/plain?inv')).headers['x-weft-cache']).toBe('hit');
    const post = await request(`${base}/cache/plain?inv`, { method: 'POST', body: 'x' });
    await post.body.text();
    expect(post.statusCode).toBe(200);
    expect((await get('/cache/plain?inv')).headers['x-weft-cache']).toBe('miss');
  });

  it('does not cache routes that do not opt in', async () => {
    const r = await get('/other');
    expect(r.headers['x-weft-cache']).toBeUndefined();
  });
});

describe('edge request body limit', () => {
  it('answers 413 to a declared Content-Length over the route limit, before going upstream', async () => {
    const before = uploads.length;
    const res = await request(`${base}/upload`, { method: 'POST', body: Buffer.alloc(1001, 97) });
    await res.body.text();
    expect(res.statusCode).toBe(413);
    expect(res.headers['x-weft-error']).toBe('REQUEST_BODY_TOO_LARGE');
    expect(uploads.length).toBe(before);
    const ok = await request(`${base}/upload`, { method: 'POST', body: Buffer.alloc(1000, 97) });
    expect(ok.statusCode).toBe(200);
    expect(await ok.body.text()).toBe('got 1000');
  });

  it('answers 413 to a chunked body that outgrows the limit mid-stream and aborts the upstream request', async () => {
    const before = uploads.length;
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 20; i++) {
        yield Buffer.alloc(200, 98);
        await new Promise((r) => setImmediate(r));
      }
    }
    const res = await request(`${base}/upload`, { method: 'POST', body: Readable.from(chunks()) });
    expect(res.statusCode).toBe(413);
    expect(res.headers['x-weft-error']).toBe('REQUEST_BODY_TOO_LARGE');
    expect(res.headers.connection).toBe('close');
    await res.body.text();
    // The upstream saw at most the limit plus one chunk, and its request was cut.
    const record = uploads[before];
    expect(record).toBeDefined();
    await pollUntil('upstream request aborted', () => (record?.aborted ? true : undefined));
    expect(record?.bytes).toBeLessThanOrEqual(1200);
    // A chunked body within the limit passes whole.
    async function* small(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(500, 99);
      yield Buffer.alloc(500, 99);
    }
    const ok = await request(`${base}/upload`, { method: 'POST', body: Readable.from(small()) });
    expect(ok.statusCode).toBe(200);
    expect(await ok.body.text()).toBe('got 1000');
  });
});
