import { once } from 'node:events';
import type { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkPort,
  endpointKey,
  endpointOrigin,
  normalizeAddress,
} from '../../../sidecar/proxy/upstream/address.ts';
import { hash32 } from '../../../sidecar/proxy/upstream/hash-ring.ts';
import { createEndpointPool, poolOptions } from '../../../sidecar/proxy/upstream/pool.ts';
import { get, poolIdle, startUpstream, stopUpstream, type Upstream } from './helpers.ts';

describe('addresses', () => {
  it('normalises IPv4, IPv6 and hostnames', () => {
    expect(normalizeAddress('127.0.0.1')).toBe('127.0.0.1');
    expect(normalizeAddress('::1')).toBe('::1');
    expect(normalizeAddress('[0:0::1]')).toBe('::1');
    expect(normalizeAddress('FE80:0:0:0:0:0:0:1')).toBe('fe80::1');
    expect(normalizeAddress('Api.Internal.')).toBe('api.internal');
    expect(normalizeAddress('localhost')).toBe('localhost');
  });

  it.each([
    '',
    ' ',
    '1.2.3',
    '01.2.3.4',
    '999.1.1.1',
    'a..b',
    '-a.b',
    'a_b.c',
    'fe80::1%eth0',
    '[::1',
    'x'.repeat(64),
  ])('rejects %j', (bad) => {
    expect(() => normalizeAddress(bad)).toThrow(Error);
  });

  it('checks ports', () => {
    expect(() => checkPort(1)).not.toThrow();
    expect(() => checkPort(65535)).not.toThrow();
    for (const bad of [0, -1, 65536, 80.5, Number.NaN]) expect(() => checkPort(bad)).toThrow(/port/);
  });

  it('brackets IPv6 in keys and origins', () => {
    expect(endpointKey('::1', 8080)).toBe('[::1]:8080');
    expect(endpointOrigin('::1', 8080)).toBe('http://[::1]:8080');
    expect(endpointOrigin('10.0.0.1', 80)).toBe('http://10.0.0.1:80');
  });

  it('hash32 is a deterministic unsigned 32-bit hash', () => {
    expect(hash32('abc')).toBe(hash32('abc'));
    expect(hash32('abc')).not.toBe(hash32('abd'));
    for (const s of ['', 'a', 'user-1', '\u{1F600}']) {
      expect(Number.isInteger(hash32(s)) && hash32(s) >= 0 && hash32(s) < 2 ** 32).toBe(true);
    }
  });
});

describe('poolOptions', () => {
  it('uses the defaults when nothing is set', () => {
    expect(poolOptions(undefined)).toEqual({
      connections: null,
      connectTimeout: 5000,
      keepAliveTimeout: 4000,
      keepAliveMaxTimeout: 4000,
      keepAliveTimeoutThreshold: 500,
      pipelining: 1,
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    expect(poolOptions({ maxConnectionsPerEndpoint: 0, connectTimeoutMs: 0, idleTimeoutMs: 0 })).toEqual(
      poolOptions({}),
    );
  });

  it('maps every connectionPool field', () => {
    expect(
      poolOptions({
        maxConnectionsPerEndpoint: 8,
        connectTimeoutMs: 250,
        idleTimeoutMs: 1500,
        maxRequestsPerConnection: 100,
      }),
    ).toMatchObject({
      connections: 8,
      connectTimeout: 250,
      keepAliveTimeout: 1500,
      keepAliveMaxTimeout: 1500,
      maxRequestsPerClient: 100,
    });
  });

  it('rejects negative and fractional values, naming the field', () => {
    expect(() => poolOptions({ connectTimeoutMs: -1 })).toThrow(/connectionPool\.connectTimeoutMs/);
    expect(() => poolOptions({ maxConnectionsPerEndpoint: 1.5 })).toThrow(/maxConnectionsPerEndpoint/);
    expect(() => poolOptions({ idleTimeoutMs: 2 ** 31 })).toThrow(/idleTimeoutMs/);
  });
});

describe('createEndpointPool', () => {
  const upstreams: Upstream[] = [];
  const pools: Pool[] = [];
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
    await Promise.all(upstreams.splice(0).map(stopUpstream));
  });

  it('talks to an IPv6 upstream through http://[::1]:port', async () => {
    const up = await startUpstream('v6', undefined, '::1');
    upstreams.push(up);
    const pool = createEndpointPool({ address: '::1', port: up.port }, { name: 'c' });
    pools.push(pool);
    expect(await get(pool)).toMatchObject({ status: 200, body: 'v6' });
  });

  it('reuses one keep-alive connection and drops it after idleTimeoutMs', async () => {
    const up = await startUpstream('ka');
    upstreams.push(up);
    up.server.keepAliveTimeout = 60_000; // the client, not the server, must close the idle socket
    const closed: Promise<unknown>[] = [];
    up.server.on('connection', (socket) => closed.push(once(socket, 'close')));
    const pool = createEndpointPool(
      { address: '127.0.0.1', port: up.port },
      { name: 'c', connectionPool: { idleTimeoutMs: 150 } },
    );
    pools.push(pool);
    const started = Date.now();
    await get(pool);
    await poolIdle(pool);
    await get(pool);
    expect(up.connections).toBe(1);
    await closed[0];
    expect(Date.now() - started).toBeLessThan(2000); // the server would have kept it 60 s
    expect(pool.closed).toBe(false);
  });

  it('throws naming cluster and endpoint for a bad address or port', () => {
    expect(() => createEndpointPool({ address: 'bad host', port: 80 }, { name: 'c1' })).toThrow(
      /cluster c1: endpoint bad host:80/,
    );
    expect(() => createEndpointPool({ address: '10.0.0.1', port: 0 }, { name: 'c1' })).toThrow(
      /cluster c1: endpoint 10\.0\.0\.1:0: port/,
    );
  });
});
