/**
 * Global rate limits across gateway replicas (issue 7): two `weft sidecar` processes with a GATEWAY
 * listener share one real Redis and enforce one limit together; a third declares FAIL_CLOSED.
 * Redis killed → FAIL_OPEN replicas let requests pass (metric `failed_open`, one log line), the
 * FAIL_CLOSED one answers 503 RATE_LIMIT_UNAVAILABLE (metric `failed_closed`).
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bootstrap, RateLimitFailMode } from '../../sidecar/proxy/config/types.ts';
import { pollUntil } from '../support/mesh.ts';
import { type RunningRedis, startRedis } from '../support/redis.ts';
import { type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';

const LIMIT = 20;
let redis: RunningRedis;
let upstream: Upstream;
const replicas: RunningSidecar[] = [];
let closedReplica: RunningSidecar;

function bootstrap(id: string, failMode: RateLimitFailMode): Bootstrap {
  return {
    node: { id, service: 'edge', namespace: 'default', workload: 'edge-v1' },
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [{ name: 'edge', address: '127.0.0.1', port: 0, direction: 'GATEWAY', routeConfigName: 'r' }],
    routes: [
      {
        name: 'r',
        virtualHosts: [
          {
            name: 'vh',
            domains: ['*'],
            routes: [
              {
                name: 'api',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/' } }],
                route: { clusters: [{ name: 'app', weight: 1 }] },
                rateLimits: [
                  {
                    name: 'default/global/limit-0',
                    selectors: [{ source: 'SOURCE_HEADER', name: 'x-client', match: 'DISTINCT' }],
                    requests: LIMIT,
                    unit: 'PER_MINUTE',
                    global: true,
                  },
                ],
              },
            ],
          },
        ],
      },
    ],
    clusters: [{ name: 'app' }],
    endpoints: [{ clusterName: 'app', endpoints: [{ address: '127.0.0.1', port: upstream.port }] }],
    // Generous: a loaded test machine must not turn a slow answer into a store failure. A killed
    // Redis is noticed at once anyway (connection refused, the client is not ready).
    rateLimitService: { redisUrl: redis.url, failMode, timeoutMs: 2000 },
  };
}

async function hit(replica: RunningSidecar, client: string) {
  const res = await request(`${replica.url('edge')}/x`, { headers: { 'x-client': client } });
  await res.body.text();
  return { status: res.statusCode, headers: res.headers };
}

async function metric(replica: RunningSidecar, result: string): Promise<number> {
  const res = await request(`http://127.0.0.1:${replica.adminPort}/metrics`);
  const text = await res.body.text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('weft_ratelimit_decisions_total{') && l.includes(`result="${result}"`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

beforeAll(async () => {
  redis = await startRedis();
  upstream = await startUpstream();
  const started = await Promise.all([
    startSidecar(bootstrap('edge-1', 'FAIL_OPEN'), { role: 'gateway' }),
    startSidecar(bootstrap('edge-2', 'FAIL_OPEN'), { role: 'gateway' }),
    startSidecar(bootstrap('edge-3', 'FAIL_CLOSED'), { role: 'gateway' }),
  ]);
  replicas.push(started[0], started[1]);
  closedReplica = started[2];
});

afterAll(async () => {
  await Promise.all([...replicas, closedReplica].filter(Boolean).map((r) => r.stop()));
  await upstream?.close();
  await redis?.stop();
});

describe('global rate limits with Redis', () => {
  it('two replicas sharing Redis enforce one limit together', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 2 * LIMIT; i++) {
      statuses.push((await hit(replicas[i % 2] as RunningSidecar, 'shared')).status);
    }
    const allowed = statuses.filter((s) => s === 200).length;
    // One bucket across both replicas: the sum of allowed requests is the limit, not twice it.
    const failedOpen =
      (await metric(replicas[0] as RunningSidecar, 'failed_open')) +
      (await metric(replicas[1] as RunningSidecar, 'failed_open'));
    expect({ allowed, failedOpen }, statuses.join(',')).toEqual({ allowed: LIMIT, failedOpen: 0 });
    expect(statuses.slice(LIMIT).every((s) => s === 429)).toBe(true);
    const refused = await hit(replicas[0] as RunningSidecar, 'shared');
    expect(refused.status).toBe(429);
    expect(refused.headers['ratelimit-limit']).toBe(String(LIMIT));
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    // The FAIL_CLOSED replica counts in the same store.
    expect((await hit(closedReplica, 'shared')).status).toBe(429);
    expect((await hit(closedReplica, 'other')).status).toBe(200);
  });

  it('Redis killed: FAIL_OPEN lets requests pass (metric, log line); FAIL_CLOSED answers 503', async () => {
    await redis.kill();
    const open = replicas[0] as RunningSidecar;
    // The limit of "shared" is spent; with the store gone the open replica lets it through.
    const passed = await pollUntil('FAIL_OPEN replica lets requests pass', async () => {
      const r = await hit(open, 'shared');
      return r.status === 200 ? r : undefined;
    });
    expect(passed.headers['x-weft-error']).toBeUndefined();
    expect(await metric(open, 'failed_open')).toBeGreaterThanOrEqual(1);
    await pollUntil('store-down log line', () =>
      open.output.some((l) => l.includes('rate limit store unreachable')) ? true : undefined,
    );
    const refused = await hit(closedReplica, 'fresh-client');
    expect(refused.status).toBe(503);
    expect(refused.headers['x-weft-error']).toBe('RATE_LIMIT_UNAVAILABLE');
    expect(refused.headers['retry-after']).toBe('1');
    expect(await metric(closedReplica, 'failed_closed')).toBeGreaterThanOrEqual(1);
    const gauge = await (await request(`http://127.0.0.1:${closedReplica.adminPort}/metrics`)).body.text();
    expect(gauge).toMatch(/^weft_ratelimit_store_up 0$/m);
  });
});
