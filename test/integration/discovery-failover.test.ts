/**
 * Control-plane failover in the sidecar agent: a `DiscoveryClient` given several replicas'
 * addresses against real `DiscoveryServer`s on loopback sharing one `MemoryStore` (as replicas
 * share etcd). The client goes round the addresses in order, tries the next one at once when an
 * attempt fails or its stream ends, waits the jittered backoff only after a whole round failed,
 * and registers again (draining included) on whichever replica it reaches.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { endpointKey } from '../../control-plane/store/keys.ts';
import type { Lease } from '../../control-plane/store/types.ts';
import type { EndpointRegistration } from '../../control-plane/translate/types.ts';
import {
  type ConfigTarget,
  DiscoveryClient,
  type DiscoveryClientOptions,
  parseAddresses,
  type StateChange,
} from '../../sidecar/agent/client.ts';
import type { ProxyConfig } from '../../sidecar/proxy/config/model.ts';
import { MemoryStore } from '../support/memory-store.ts';
import { configFor, startServer, type TestServer, until } from './discovery-helpers.ts';

const cleanups: (() => Promise<unknown>)[] = [];
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-failover-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await rm(dir, { recursive: true, force: true });
});

async function server(options: Parameters<typeof startServer>[0] = {}): Promise<TestServer> {
  const s = await startServer(options);
  cleanups.push(() => s.stop());
  return s;
}

/** An address nothing listens on: a server's port, released again. */
async function deadAddress(): Promise<{ address: string; port: number }> {
  const s = await startServer();
  await s.stop();
  return { address: s.address, port: s.port };
}

/** A MemoryStore whose leases can be lost as etcd loses them: keys deleted, `onLost` told. */
class LossyStore extends MemoryStore {
  readonly #lost = new Map<string, ((error: Error) => void)[]>();

  override async grantLease(ttlSeconds: number): Promise<Lease> {
    const lease = await super.grantLease(ttlSeconds);
    const listeners: ((error: Error) => void)[] = [];
    this.#lost.set(lease.id, listeners);
    return { ...lease, onLost: (listener) => listeners.push(listener) };
  }

  /** Expires lease `id` (its keys are deleted) and tells its `onLost` listeners. */
  lose(id: string): void {
    this.expireLease(id);
    for (const listener of this.#lost.get(id) ?? []) listener(new Error(`lease ${id} expired`));
  }
}

class FakeProxy implements ConfigTarget {
  readonly applied: { version: string; config: ProxyConfig }[] = [];
  async apply(config: ProxyConfig, version: string): Promise<void> {
    this.applied.push({ version, config });
  }
}

function client(
  address: DiscoveryClientOptions['address'],
  extra: Partial<DiscoveryClientOptions> = {},
): { client: DiscoveryClient; states: StateChange[]; proxy: FakeProxy } {
  const states: StateChange[] = [];
  const proxy = new FakeProxy();
  const c = new DiscoveryClient({
    address,
    identity: { proxyId: 'web-1', kind: 'sidecar', service: 'web', namespace: 'shop' },
    register: { port: 15006, labels: { version: 'v1' } },
    proxy,
    cacheFile: join(dir, 'snapshot.json'),
    onStateChange: (ch) => states.push(ch),
    ...extra,
  });
  cleanups.push(() => c.close());
  return { client: c, states, proxy };
}

async function endpoint(store: MemoryStore): Promise<EndpointRegistration | undefined> {
  const kv = await store.get(endpointKey('shop', 'web-1'));
  return kv === undefined ? undefined : (JSON.parse(kv.value) as EndpointRegistration);
}

function disconnects(states: readonly StateChange[]): StateChange[] {
  return states.filter((ch) => ch.state === 'disconnected');
}

describe('control-plane addresses', () => {
  it('are read from an array or a comma-separated string, trimmed, empty entries dropped', () => {
    expect(parseAddresses('127.0.0.1:15012')).toEqual(['127.0.0.1:15012']);
    expect(parseAddresses(' 127.0.0.1:15012, 127.0.0.1:25012 ,')).toEqual([
      '127.0.0.1:15012',
      '127.0.0.1:25012',
    ]);
    expect(parseAddresses(['a:1', 'b:2,c:3'])).toEqual(['a:1', 'b:2', 'c:3']);
    expect(() => parseAddresses(' , ')).toThrow(/no control-plane address/);
    expect(() => parseAddresses([])).toThrow(/no control-plane address/);
  });

  it('a client given no address is refused at construction', () => {
    expect(() => client('')).toThrow(/no control-plane address/);
  });
});

describe('discovery client failover', () => {
  it('tries the addresses in order and connects to the first that answers, without waiting between them', async () => {
    const dead = await deadAddress();
    const store = new MemoryStore();
    const live = await server({ store });
    const r = await live.setConfig('web-1', configFor('live'));
    const { client: c, states, proxy } = client([dead.address, live.address]);
    expect(c.addresses).toEqual([dead.address, live.address]);
    await c.start();
    expect(await c.onFirstConfig).toBe(String(r));
    expect(c.state).toBe('connected');
    expect(c.address).toBe(live.address);
    expect(states.map((ch) => [ch.state, ch.address, ch.retryInMs])).toEqual([
      ['connecting', dead.address, undefined],
      ['disconnected', dead.address, 0],
      ['connecting', live.address, undefined],
      ['connected', live.address, undefined],
    ]);
    expect(proxy.applied.map((a) => a.version)).toEqual([String(r)]);
    await until(() => endpoint(store), 'the endpoint registered on the live replica');
  });

  it('moves to the next replica at once when its replica goes away, registers there and takes its snapshots', async () => {
    const store = new MemoryStore();
    const s1 = await server({ store });
    const s2 = await server({ store });
    const r1 = await s1.setConfig('web-1', configFor('one'));
    // One comma-separated string, as `weft sidecar --control-plane a,b` passes it.
    const { client: c, states, proxy } = client(`${s1.address}, ${s2.address}`);
    await c.start();
    await until(async () => (await s1.record('web-1'))?.syncedRevision === r1, 'the ACK on replica 1');
    expect(c.address).toBe(s1.address);
    expect(s1.server.status().map((p) => p.proxyId)).toEqual(['web-1']);
    expect(s2.server.status()).toEqual([]);

    // A new revision that only replica 2 has computed yet.
    const r2 = await s2.setConfig('web-1', configFor('two'));
    const startedAt = performance.now();
    await s1.stop();
    await until(() => c.address === s2.address && c.state === 'connected', 'connected to replica 2');
    const failoverMs = performance.now() - startedAt;
    const lost = disconnects(states);
    expect(lost.map((ch) => [ch.address, ch.retryInMs])).toEqual([[s1.address, 0]]);
    expect(failoverMs).toBeLessThan(1000);

    await until(() => s2.server.status().some((p) => p.proxyId === 'web-1'), 'the proxy known to replica 2');
    expect(await until(() => endpoint(store), 'the endpoint registered again')).toMatchObject({
      proxyId: 'web-1',
      port: 15006,
      draining: false,
    });
    await until(() => proxy.applied.some((a) => a.version === String(r2)), "replica 2's snapshot");
    expect(proxy.applied.at(-1)?.config).toStrictEqual(configFor('two'));
    await until(async () => (await s2.record('web-1'))?.syncedRevision === r2, 'the ACK on replica 2');
    expect(c.version).toBe(String(r2));
  });

  it('backs off between whole rounds of addresses, not between the addresses of a round', async () => {
    const a = await deadAddress();
    const b = await deadAddress();
    const { client: c, states } = client([a.address, b.address]);
    await c.start();
    const lost = await until(() => {
      const d = disconnects(states);
      return d.length >= 6 && d.slice(0, 6);
    }, 'three failed rounds');
    expect(lost.map((ch) => ch.address)).toEqual([
      a.address,
      b.address,
      a.address,
      b.address,
      a.address,
      b.address,
    ]);
    const delays = lost.map((ch) => ch.retryInMs ?? -1);
    expect([delays[0], delays[2], delays[4]]).toEqual([0, 0, 0]);
    expect(delays[1]).toBeGreaterThanOrEqual(80);
    expect(delays[1]).toBeLessThanOrEqual(120);
    expect(delays[3]).toBeGreaterThanOrEqual(160);
    expect(delays[3]).toBeLessThanOrEqual(240);
    expect(delays[5]).toBeGreaterThanOrEqual(320);
    expect(delays[5]).toBeLessThanOrEqual(480);

    // The second replica comes up: the client finds it on its next round and registers there.
    const store = new MemoryStore();
    await server({ store, port: b.port });
    await until(() => c.state === 'connected' || undefined, 'connected', 10_000);
    expect(c.address).toBe(b.address);
    await until(() => endpoint(store), 'the endpoint registered');
  });

  it('after the replica it was connected to drops the stream, tries the others at once and that one after a backoff', async () => {
    const store = new MemoryStore();
    const s1 = await server({ store });
    const dead = await deadAddress();
    await s1.setConfig('web-1', configFor('one'));
    const { client: c, states } = client([s1.address, dead.address]);
    await c.start();
    await c.onFirstConfig;
    await until(() => c.state === 'connected' || undefined, 'connected to replica 1');
    await s1.stop();
    const lost = await until(() => {
      const d = disconnects(states);
      return d.length >= 3 && d.slice(0, 3);
    }, 'three failed attempts');
    expect(lost.map((ch) => ch.address)).toEqual([s1.address, dead.address, s1.address]);
    expect(lost[0]?.retryInMs).toBe(0);
    // The backoff was reset by the accepted stream: its first delay.
    expect(lost[1]?.retryInMs).toBeGreaterThanOrEqual(80);
    expect(lost[1]?.retryInMs).toBeLessThanOrEqual(120);
    expect(lost[2]?.retryInMs).toBe(0);

    const back = await server({ store, port: s1.port, configs: new Map([['web-1', configFor('back')]]) });
    await until(
      () => back.server.status().some((p) => p.proxyId === 'web-1'),
      'reconnected to replica 1',
      10_000,
    );
    expect(c.address).toBe(s1.address);
    await until(() => endpoint(store), 'the endpoint registered again');
  });

  it('when the store loses the lease of its stream, the replica ends the stream and the proxy registers anew on the next one', async () => {
    const store = new LossyStore();
    const s1 = await server({ store });
    const s2 = await server({ store });
    await s1.setConfig('web-1', configFor('one'));
    await s2.setConfig('web-1', configFor('one'));
    const { client: c, states } = client([s1.address, s2.address]);
    await c.start();
    await c.onFirstConfig;
    const before = await until(() => store.get(endpointKey('shop', 'web-1')), 'the endpoint on replica 1');
    expect(before.lease).toEqual(expect.any(String));

    store.lose(before.lease as string);
    await until(() => c.address === s2.address && c.state === 'connected', 'connected to replica 2');
    expect(disconnects(states)[0]?.reason).toMatch(/stream lease lost/);
    const after = await until(() => store.get(endpointKey('shop', 'web-1')), 'the endpoint registered again');
    expect(after.lease).not.toBe(before.lease);
    await until(async () => (await s2.record('web-1'))?.connected, 'the status record again');
  });

  it('keeps its endpoint draining on the replica it fails over to', async () => {
    const store = new MemoryStore();
    const s1 = await server({ store });
    const s2 = await server({ store });
    await s1.setConfig('web-1', configFor('one'));
    const { client: c } = client([s1.address, s2.address]);
    await c.start();
    await c.onFirstConfig;
    await until(() => endpoint(store), 'the endpoint');
    await c.deregister();
    await until(async () => (await endpoint(store))?.draining === true, 'draining on replica 1');

    await s1.stop();
    await until(() => s2.server.status().some((p) => p.proxyId === 'web-1'), 'connected to replica 2');
    const registration = await until(async () => {
      const e = await endpoint(store);
      return e?.draining === true && e;
    }, 'draining on replica 2');
    expect(registration).toMatchObject({ proxyId: 'web-1', port: 15006 });
    expect(c.address).toBe(s2.address);

    await c.close();
    await until(async () => (await endpoint(store)) === undefined, 'the endpoint gone after close');
    expect(store.leases()).toEqual([]);
  });
});
