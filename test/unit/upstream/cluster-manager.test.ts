import type { ServerResponse } from 'node:http';
import { Pool } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type {
  Cluster,
  ClusterLoadAssignment,
  Endpoint,
  LbPolicy,
} from '../../../sidecar/proxy/config/types.ts';
import { ClusterManager } from '../../../sidecar/proxy/upstream/cluster-manager.ts';
import type { UpstreamCluster, UpstreamEndpoint } from '../../../sidecar/proxy/upstream/types.ts';
import { ctx, get, poolIdle, startUpstream, stopUpstream, type Upstream, until } from './helpers.ts';

const upstreams: Upstream[] = [];
const managers: ClusterManager[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(managers.splice(0).map((m) => m.close()));
  await Promise.all(upstreams.splice(0).map(stopUpstream));
});

async function upstream(name: string, handler?: Parameters<typeof startUpstream>[1]): Promise<Upstream> {
  const up = await startUpstream(name, handler);
  upstreams.push(up);
  return up;
}

function manager(): ClusterManager {
  const m = new ClusterManager({ random: () => 0 });
  managers.push(m);
  return m;
}

const at = (up: Upstream, extra: Partial<Endpoint> = {}): Endpoint => ({
  address: '127.0.0.1',
  port: up.port,
  ...extra,
});
const assign = (clusterName: string, endpoints: Endpoint[]): ClusterLoadAssignment => ({
  clusterName,
  endpoints,
});

/** Every endpoint `cluster` picks over `n` round-robin picks, by key. */
function picked(cluster: UpstreamCluster | undefined, n = 12): Set<string | undefined> {
  return new Set(Array.from({ length: n }, () => cluster?.pick(ctx(() => 0))?.key));
}

function endpointOf(cluster: UpstreamCluster | undefined, up: Upstream): UpstreamEndpoint {
  for (let i = 0; i < 50; i++) {
    const e = cluster?.pick(ctx(Math.random));
    if (e?.key === `127.0.0.1:${up.port}`) return e;
  }
  throw new Error(`127.0.0.1:${up.port} is not picked`);
}

describe('ClusterManager', () => {
  it('creates clusters whose endpoints serve real requests in round robin', async () => {
    const [a, b] = [await upstream('a'), await upstream('b')];
    const m = manager();
    m.update([{ name: 'web' }], [assign('web', [at(a), at(b)])]);
    const web = m.get('web');
    const bodies: string[] = [];
    for (let i = 0; i < 4; i++) {
      const e = web?.pick(ctx(Math.random));
      if (!e) throw new Error('nothing picked');
      bodies.push((await get(e.pool)).body);
    }
    expect(bodies).toEqual(['a', 'b', 'a', 'b']);
    expect(m.get('nope')).toBeUndefined();
    expect(web?.hashHeader).toBeUndefined();
  });

  it('keeps the Pool, activeRequests and keep-alive connection of an endpoint that stays', async () => {
    const [a, b] = [await upstream('a'), await upstream('b')];
    const m = manager();
    m.update([{ name: 'web' }], [assign('web', [at(a)])]);
    const before = endpointOf(m.get('web'), a);
    await get(before.pool);
    await poolIdle(before.pool);
    before.activeRequests = 3;

    m.update([{ name: 'web' }], [assign('web', [at(a, { weight: 2, labels: { v: '2' } }), at(b)])]);
    const after = endpointOf(m.get('web'), a);
    expect(after).toBe(before);
    expect(after.pool).toBe(before.pool);
    expect(after.activeRequests).toBe(3);
    expect(after.weight).toBe(2);
    expect(after.labels).toEqual({ v: '2' });
    expect(await get(after.pool)).toMatchObject({ status: 200, body: 'a' });
    expect(a.connections).toBe(1);
    expect(before.pool.closed).toBe(false);
    after.activeRequests = 0;
  });

  it('lets an in-flight request to a removed endpoint complete, then closes its pool', async () => {
    const held: ServerResponse[] = [];
    const a = await upstream('a', (_req, res) => held.push(res));
    const b = await upstream('b');
    const m = manager();
    m.update([{ name: 'web' }], [assign('web', [at(a), at(b)])]);
    const web = m.get('web');
    const ea = endpointOf(web, a);
    const destroy = vi.spyOn(Pool.prototype, 'destroy');

    ea.activeRequests++;
    const inflight = get(ea.pool);
    await until(() => held.length === 1, 5000, 'request at upstream a');

    m.update([{ name: 'web' }], [assign('web', [at(b)])]);
    expect(picked(web)).toEqual(new Set([`127.0.0.1:${b.port}`]));
    expect(m.snapshot().retiringEndpoints).toBe(1);
    expect(ea.pool.closed).toBe(false);

    held[0]?.end('late');
    expect(await inflight).toMatchObject({ status: 200, body: 'late', from: 'a' });
    expect(destroy).not.toHaveBeenCalled(); // (undici's own close() destroys its clients later, once idle)
    ea.activeRequests--;
    await until(() => ea.pool.destroyed, 5000, 'pool of the removed endpoint to close');
    expect(m.snapshot().retiringEndpoints).toBe(0);
  });

  it('closes a removed endpoint gracefully even when the caller does not count activeRequests', async () => {
    const held: ServerResponse[] = [];
    const a = await upstream('a', (_req, res) => held.push(res));
    const m = manager();
    m.update([{ name: 'web' }], [assign('web', [at(a)])]);
    const ea = endpointOf(m.get('web'), a);
    const inflight = get(ea.pool);
    await until(() => held.length === 1, 5000, 'request at upstream a');

    m.update([{ name: 'web' }], [assign('web', [])]);
    expect(ea.pool.closed).toBe(true);
    expect(m.get('web')?.pick(ctx(Math.random))).toBeUndefined();
    held[0]?.end('done');
    expect(await inflight).toMatchObject({ status: 200, body: 'done' });
    await until(() => ea.pool.destroyed, 5000, 'pool to close');
  });

  it('drains a removed cluster: its object picks nothing and in-flight work completes', async () => {
    const held: ServerResponse[] = [];
    const a = await upstream('a', (_req, res) => held.push(res));
    const m = manager();
    m.update([{ name: 'web' }, { name: 'api' }], [assign('web', [at(a)])]);
    const web = m.get('web');
    const ea = endpointOf(web, a);
    ea.activeRequests++;
    const inflight = get(ea.pool);
    await until(() => held.length === 1, 5000, 'request at upstream a');

    m.update([{ name: 'api' }], []);
    expect(m.get('web')).toBeUndefined();
    expect(web?.pick(ctx(Math.random))).toBeUndefined();
    held[0]?.end('bye');
    expect(await inflight).toMatchObject({ status: 200, body: 'bye' });
    ea.activeRequests--;
    await until(() => ea.pool.destroyed, 5000, 'pool to close');
  });

  it('does not pick UNHEALTHY or DRAINING endpoints but keeps their pools open', async () => {
    const [a, b, c] = [await upstream('a'), await upstream('b'), await upstream('c')];
    const m = manager();
    m.update([{ name: 'web' }], [assign('web', [at(a), at(b), at(c)])]);
    const web = m.get('web');
    const eb = endpointOf(web, b);
    const ec = endpointOf(web, c);

    m.update(
      [{ name: 'web' }],
      [assign('web', [at(a), at(b, { health: 'DRAINING' }), at(c, { health: 'UNHEALTHY' })])],
    );
    expect(picked(web)).toEqual(new Set([`127.0.0.1:${a.port}`]));
    expect(eb.pool.closed || ec.pool.closed).toBe(false);
    expect(await get(eb.pool)).toMatchObject({ status: 200, body: 'b' });

    m.update(
      [{ name: 'web' }],
      [assign('web', [at(a, { health: 'UNHEALTHY' }), at(b, { health: 'DRAINING' })])],
    );
    expect(web?.pick(ctx(Math.random))).toBeUndefined();
    await until(() => ec.pool.destroyed, 5000, 'removed endpoint c to close');

    m.update([{ name: 'web' }], [assign('web', [at(a), at(b)])]);
    expect(endpointOf(web, b)).toBe(eb);
  });

  it('rejects an invalid update and keeps the previous config intact', async () => {
    const a = await upstream('a');
    const m = manager();
    const good: Cluster[] = [{ name: 'web', lbPolicy: 'LEAST_REQUEST' }];
    m.update(good, [assign('web', [at(a)])]);
    const web = m.get('web');
    const ea = endpointOf(web, a);
    const before = m.snapshot();

    const bad: [Cluster[], ClusterLoadAssignment[], RegExp][] = [
      [
        good,
        [assign('web', [at(a), { address: '10.0.0.1', port: 70000 }])],
        /cluster "web" endpoint 10\.0\.0\.1:70000/,
      ],
      [
        good,
        [assign('web', [{ address: 'no such host!', port: 80 }])],
        /cluster "web" endpoint no such host!:80/,
      ],
      [[{ name: 'web', lbPolicy: 'WEIGHTED' as LbPolicy }], [], /cluster "web": unknown lbPolicy/],
      [[{ name: 'web', lbPolicy: 'CONSISTENT_HASH' }], [], /cluster "web": .*hashHeader/],
      [[...good, { name: 'web' }], [], /cluster "web": duplicate/],
      [good, [assign('api', [at(a)])], /cluster "api": unknown cluster/],
    ];
    for (const [clusters, assignments, message] of bad) {
      expect(() => m.update(clusters, assignments)).toThrow(message);
      expect(m.snapshot()).toEqual(before);
      expect(m.get('web')).toBe(web);
      expect(endpointOf(web, a)).toBe(ea);
      expect(ea.pool.closed).toBe(false);
    }
    expect(await get(ea.pool)).toMatchObject({ status: 200, body: 'a' });
  });

  it('replaces every pool of a cluster whose connection pool settings change', async () => {
    const a = await upstream('a');
    const m = manager();
    m.update([{ name: 'web' }], [assign('web', [at(a)])]);
    const old = endpointOf(m.get('web'), a);
    m.update([{ name: 'web', connectionPool: { maxConnectionsPerEndpoint: 4 } }], [assign('web', [at(a)])]);
    const fresh = endpointOf(m.get('web'), a);
    expect(fresh).not.toBe(old);
    expect(fresh.pool).not.toBe(old.pool);
    await until(() => old.pool.destroyed, 5000, 'old pool to close');
    expect(await get(fresh.pool)).toMatchObject({ status: 200, body: 'a' });
  });

  it('switches policy and hash header in place and keeps an unchanged balancer', async () => {
    const [a, b, c] = [await upstream('a'), await upstream('b'), await upstream('c')];
    const m = manager();
    m.update([{ name: 'web' }], [assign('web', [at(a), at(b), at(c)])]);
    const web = m.get('web');
    const key = (up: Upstream) => `127.0.0.1:${up.port}`;
    expect(web?.pick(ctx(Math.random))?.key).toBe(key(a));
    // Same picked set, new labels only: the round-robin cycle continues where it was.
    m.update([{ name: 'web' }], [assign('web', [at(a), at(b, { labels: { x: 'y' } }), at(c)])]);
    expect(web?.pick(ctx(Math.random))?.key).toBe(key(b));

    m.update(
      [{ name: 'web', lbPolicy: 'CONSISTENT_HASH', hashHeader: 'X-User' }],
      [assign('web', [at(a), at(b), at(c)])],
    );
    expect(m.get('web')).toBe(web);
    expect(web?.hashHeader).toBe('x-user');
    const first = web?.pick(ctx(Math.random, 'alice'));
    for (let i = 0; i < 20; i++) expect(web?.pick(ctx(Math.random, 'alice'))).toBe(first);
    expect(m.snapshot().clusters[0]).toMatchObject({ lbPolicy: 'CONSISTENT_HASH', hashHeader: 'x-user' });
  });

  it('snapshots plain JSON-able state', async () => {
    const a = await upstream('a');
    const m = manager();
    m.update(
      [{ name: 'web', lbPolicy: 'RANDOM' }, { name: 'empty' }],
      [
        assign('web', [
          at(a, { weight: 3, labels: { zone: 'z1' } }),
          { address: '::1', port: 9, health: 'DRAINING' },
        ]),
      ],
    );
    endpointOf(m.get('web'), a).activeRequests = 2;
    const snap = m.snapshot();
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
    expect(snap).toEqual({
      clusters: [
        {
          name: 'web',
          lbPolicy: 'RANDOM',
          hashHeader: null,
          endpoints: [
            {
              key: `127.0.0.1:${a.port}`,
              health: 'HEALTHY',
              weight: 3,
              labels: { zone: 'z1' },
              activeRequests: 2,
            },
            { key: '[::1]:9', health: 'DRAINING', weight: 1, labels: {}, activeRequests: 0 },
          ],
        },
        { name: 'empty', lbPolicy: 'ROUND_ROBIN', hashHeader: null, endpoints: [] },
      ],
      retiringEndpoints: 0,
    });
    endpointOf(m.get('web'), a).activeRequests = 0;
  });

  it('close() closes every pool, including retiring ones, and refuses later updates', async () => {
    const a = await upstream('a');
    const b = await upstream('b');
    const m = manager();
    m.update([{ name: 'web' }], [assign('web', [at(a), at(b)])]);
    const ea = endpointOf(m.get('web'), a);
    const eb = endpointOf(m.get('web'), b);
    await get(ea.pool);
    eb.activeRequests = 1; // a forwarder that never finishes must not keep the pool open past close()
    m.update([{ name: 'web' }], [assign('web', [at(a)])]);
    expect(eb.pool.closed).toBe(false);

    await m.close();
    expect(ea.pool.destroyed && eb.pool.destroyed).toBe(true);
    expect(m.get('web')).toBeUndefined();
    expect(() => m.update([], [])).toThrow(/closed/);
    await m.close();
  });
});
