/**
 * The sidecar agent's DiscoveryClient against a real DiscoveryServer on loopback: apply → cache
 * → ACK; NACK keeps the last good config of a real ProxyCore; cache at start-up; re-register
 * after a control-plane restart with backoff; Deregister; close revokes the lease.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { endpointKey } from '../../control-plane/store/keys.ts';
import type { EndpointRegistration } from '../../control-plane/translate/types.ts';
import { loadCached, writeCached } from '../../sidecar/agent/cache-file.ts';
import {
  type ConfigTarget,
  DiscoveryClient,
  type DiscoveryClientOptions,
  type StateChange,
} from '../../sidecar/agent/client.ts';
import type { ProxyConfig } from '../../sidecar/proxy/config/model.ts';
import { ProxyCore } from '../../sidecar/proxy/proxy.ts';
import { MemoryStore } from '../support/memory-store.ts';
import { badConfig, configFor, startServer, type TestServer, until } from './discovery-helpers.ts';

const cleanups: (() => Promise<unknown>)[] = [];
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-agent-'));
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

/** A fake proxy that records applies and rejects configs whose first route is named "reject". */
class FakeProxy implements ConfigTarget {
  readonly applied: { version: string; config: ProxyConfig }[] = [];
  async apply(config: ProxyConfig, version: string): Promise<void> {
    if (config.routes[0]?.virtualHosts?.[0]?.routes?.[0]?.name === 'reject')
      throw new Error('rejected on purpose');
    this.applied.push({ version, config });
  }
}

function client(
  address: string,
  proxy: ConfigTarget,
  extra: Partial<DiscoveryClientOptions> = {},
): DiscoveryClient {
  const c = new DiscoveryClient({
    address,
    identity: { proxyId: 'web-1', kind: 'sidecar', service: 'web', namespace: 'shop' },
    register: { port: 15006, labels: { version: 'v1' } },
    proxy,
    cacheFile: join(dir, 'snapshot.json'),
    ...extra,
  });
  cleanups.push(() => c.close());
  return c;
}

async function endpoint(s: TestServer): Promise<EndpointRegistration | undefined> {
  const kv = await s.store.get(endpointKey('shop', 'web-1'));
  return kv === undefined ? undefined : (JSON.parse(kv.value) as EndpointRegistration);
}

describe('discovery client', () => {
  it('applies the pushed snapshot, caches it, ACKs it; a rejected one is NACKed and the last good config kept', async () => {
    const s = await server();
    const r1 = await s.setConfig('web-1', configFor('good'));
    const core = new ProxyCore();
    cleanups.push(() => core.close(0));
    const c = client(s.address, core);
    await c.start();
    expect(await c.onFirstConfig).toBe(String(r1));
    expect(core.version).toBe(String(r1));
    const [listener] = core.listeners();
    expect(listener?.port).toBeGreaterThan(0);
    await until(async () => (await s.record('web-1'))?.syncedRevision === r1, 'the ACK');
    expect(await loadCached(join(dir, 'snapshot.json'))).toStrictEqual({
      version: String(r1),
      config: configFor('good'),
    });

    const r2 = await s.setConfig('web-1', badConfig('x'));
    s.server.notify(r2);
    const record = await until(async () => {
      const r = await s.record('web-1');
      return r?.lastNack !== undefined && r;
    }, 'the NACK');
    expect(record.lastNack?.version).toBe(String(r2));
    expect(record.lastNack?.reason).toMatch(/routeConfigName: no RouteConfiguration named "missing-x"/);
    expect(record.ackedVersion).toBe(String(r1));
    expect(core.version).toBe(String(r1));
    expect(c.version).toBe(String(r1));
    const res = await fetch(`http://127.0.0.1:${listener?.port}/`);
    expect(await res.text()).toBe('good');
    expect((await loadCached(join(dir, 'snapshot.json')))?.version).toBe(String(r1));
  });

  it('serves a valid cache at start-up before reaching the control plane, and says so in its Hello', async () => {
    const cacheFile = join(dir, 'snapshot.json');
    await writeCached(cacheFile, { version: '3', config: configFor('cached') });
    const fake = new FakeProxy();
    const states: StateChange[] = [];
    // No control plane at this address yet: the cache alone makes the proxy ready.
    const reserved = await server();
    const address = reserved.address;
    await reserved.stop();
    const c = client(address, fake, { onStateChange: (ch) => states.push(ch) });
    await c.start();
    expect(await c.onFirstConfig).toBe('3');
    expect(fake.applied).toEqual([{ version: '3', config: configFor('cached') }]);
    await until(() => states.some((ch) => ch.state === 'disconnected'), 'a failed attempt');

    const s = await server({ port: reserved.port });
    await until(() => s.server.status()[0]?.ackedVersion === '3' || undefined, 'the Hello with version 3');
  });

  it('ignores a corrupt cache and takes its first config from the stream', async () => {
    await writeFile(join(dir, 'snapshot.json'), '{"version":"3","config":{"listen');
    const s = await server();
    const r = await s.setConfig('web-1', configFor('fresh'));
    const fake = new FakeProxy();
    const c = client(s.address, fake);
    await c.start();
    expect(await c.onFirstConfig).toBe(String(r));
    expect(fake.applied.map((a) => a.version)).toEqual([String(r)]);
    await until(
      async () => (await loadCached(join(dir, 'snapshot.json')))?.version === String(r),
      'the rewritten cache',
    );
  });

  it('does not overwrite the cache with a rejected snapshot', async () => {
    const s = await server();
    await s.setConfig('web-1', configFor('reject'));
    const c = client(s.address, new FakeProxy());
    await c.start();
    await until(async () => (await s.record('web-1'))?.lastNack, 'the NACK');
    await expect(readFile(join(dir, 'snapshot.json'))).rejects.toThrow(/ENOENT/);
  });

  it('reconnects with backoff after a control-plane restart and registers again', async () => {
    const store = new MemoryStore();
    const s1 = await startServer({ store });
    const r1 = await s1.setConfig('web-1', configFor('one'));
    const states: StateChange[] = [];
    const fake = new FakeProxy();
    const c = client(s1.address, fake, { onStateChange: (ch) => states.push(ch) });
    await c.start();
    await until(async () => (await s1.record('web-1'))?.syncedRevision === r1, 'the first ACK');
    expect(await endpoint(s1)).toMatchObject({ port: 15006, draining: false });

    await s1.stop();
    expect(await store.get(endpointKey('shop', 'web-1'))).toBeUndefined();
    const retries = await until(() => {
      const d = states.filter((ch) => ch.state === 'disconnected');
      return d.length >= 3 && d;
    }, 'three failed attempts');
    const [d1, d2, d3] = retries.map((ch) => ch.retryInMs ?? -1);
    expect(d1).toBeGreaterThanOrEqual(80);
    expect(d1).toBeLessThanOrEqual(120);
    expect(d2).toBeGreaterThanOrEqual(160);
    expect(d2).toBeLessThanOrEqual(240);
    expect(d3).toBeGreaterThanOrEqual(320);
    expect(d3).toBeLessThanOrEqual(480);

    const configs = new Map([['web-1', configFor('two')]]);
    const s2 = await server({ store, port: s1.port, configs });
    await until(() => c.state === 'connected' || undefined, 'connected again');
    await until(() => endpoint(s2), 'the endpoint registered again');
    const record = await until(() => s2.record('web-1'), 'the status record');
    expect(record.identity.namespace).toBe('shop');
    await until(() => fake.applied.length === 2 || undefined, 'the new snapshot applied');
    expect(fake.applied[1]?.config).toStrictEqual(configFor('two'));
  });

  it('deregister marks the endpoint draining; close revokes the lease', async () => {
    const s = await server();
    await s.setConfig('web-1', configFor('a'));
    const c = client(s.address, new FakeProxy());
    await c.start();
    await c.onFirstConfig;
    await until(() => endpoint(s), 'the endpoint');
    await c.deregister();
    await until(async () => (await endpoint(s))?.draining === true, 'draining');
    await c.close();
    expect(c.state).toBe('closed');
    await until(async () => (await endpoint(s)) === undefined, 'the endpoint gone');
    await until(async () => (await s.record('web-1')) === undefined, 'the status gone');
    expect(s.store.leases()).toEqual([]);
  });

  it('onFirstConfig rejects when closed before any config', async () => {
    const s = await server();
    const c = client(s.address, new FakeProxy());
    await c.start();
    await until(() => s.server.status().length === 1 || undefined, 'connected');
    await c.close();
    await expect(c.onFirstConfig).rejects.toThrow(/closed before the first config/);
  });
});
