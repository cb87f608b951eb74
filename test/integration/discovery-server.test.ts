/**
 * The discovery server over real gRPC on loopback, with a scripted proxy end (RawProxy) and the
 * in-memory store: the protocol of proto/weft/v1/discovery.proto as specifications.
 */
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { endpointKey } from '../../control-plane/store/keys.ts';
import type { EndpointRegistration } from '../../control-plane/translate/types.ts';
import { badConfig, configFor, RawProxy, startServer, type TestServer, until } from './discovery-helpers.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(): Promise<TestServer> {
  const s = await startServer();
  cleanups.push(() => s.stop());
  return s;
}

function proxy(s: TestServer): RawProxy {
  const p = new RawProxy(s.address);
  cleanups.push(() => p.close());
  return p;
}

async function endpoint(
  s: TestServer,
  namespace: string,
  proxyId: string,
): Promise<EndpointRegistration | undefined> {
  const kv = await s.store.get(endpointKey(namespace, proxyId));
  return kv === undefined ? undefined : (JSON.parse(kv.value) as EndpointRegistration);
}

describe('discovery server', () => {
  it('answers a Hello with the current snapshot at once and records the ACK', async () => {
    const s = await server();
    const revision = await s.setConfig('web-1', configFor('a'));
    const p = proxy(s);
    p.hello('web-1');
    const snap = await p.snapshot(1);
    expect(snap.version).toBe(String(revision));
    expect(snap.nonce).toMatch(/^[0-9a-f-]{36}$/);
    expect(snap.routes?.[0]?.virtualHosts?.[0]?.routes?.[0]?.name).toBe('a');
    p.ack(snap);
    const record = await until(async () => {
      const r = await s.record('web-1');
      return r?.ackedVersion === String(revision) && r;
    }, 'the ACK in the status record');
    expect(record).toMatchObject({
      proxyId: 'web-1',
      replicaId: 'cp-test',
      connected: true,
      sentVersion: String(revision),
      syncedRevision: revision,
      identity: { proxyId: 'web-1', kind: 'sidecar', service: 'web', namespace: 'default' },
    });
    expect(record.lastNack).toBeUndefined();
    expect(s.server.status()).toMatchObject([
      { proxyId: 'web-1', ackedVersion: String(revision), pendingNonce: '' },
    ]);
    expect(await s.metric('weft_cp_connected_proxies')).toBe(1);
    expect(await s.metric('weft_cp_pushes_total')).toBe(1);
    expect(await s.metric('weft_cp_push_duration_seconds')).toBe(1);
  });

  it('ends a stream whose first message is not a Hello with INVALID_ARGUMENT', async () => {
    const s = await server();
    const p = proxy(s);
    p.send({ ack: { version: '1', nonce: 'x' } });
    const st = await p.ended;
    expect(st.code).toBe(status.INVALID_ARGUMENT);
    expect(st.details).toMatch(/first message must be a Hello, got ack/);
  });

  it('ends a stream whose Hello has no proxy id with INVALID_ARGUMENT naming the field', async () => {
    const s = await server();
    const p = proxy(s);
    p.send({ hello: { service: 'web' } });
    const st = await p.ended;
    expect(st.code).toBe(status.INVALID_ARGUMENT);
    expect(st.details).toMatch(/hello\.proxyId/);
  });

  it('records a NACK with its reason and does not resend that config until it changes', async () => {
    const s = await server();
    const r1 = await s.setConfig('web-1', configFor('good'));
    const p = proxy(s);
    p.hello('web-1');
    p.ack(await p.snapshot(1));
    await until(async () => (await s.record('web-1'))?.syncedRevision === r1, 'first ACK');

    const r2 = await s.setConfig('web-1', badConfig('x'));
    s.server.notify(r2);
    const bad = await p.snapshot(2);
    p.send({
      nack: { version: bad.version ?? '', nonce: bad.nonce ?? '', errorDetail: 'Listener outbound: nope' },
    });
    const nacked = await until(async () => {
      const r = await s.record('web-1');
      return r?.lastNack !== undefined && r;
    }, 'the NACK in the status record');
    expect(nacked.lastNack).toMatchObject({ version: String(r2), reason: 'Listener outbound: nope' });
    expect(nacked).toMatchObject({ ackedVersion: String(r1), syncedRevision: r1, sentVersion: String(r2) });
    expect(await s.metric('weft_cp_nacks_total')).toBe(1);

    // The same bad config at a newer revision: recomputed, not resent, not "in sync".
    const calls = s.calls.get('web-1') ?? 0;
    const r3 = await s.setConfig('web-1', badConfig('x'));
    s.server.notify(r3);
    await until(() => (s.calls.get('web-1') ?? 0) > calls, 'the recomputation');
    // A change after that is pushed, and is the next snapshot the proxy sees.
    const r4 = await s.setConfig('web-1', configFor('fixed'));
    s.server.notify(r4);
    const fixed = await p.snapshot(3);
    expect(fixed.version).toBe(String(r4));
    expect(p.snapshots).toHaveLength(3);
    expect(await s.metric('weft_cp_pushes_total')).toBe(3);
    expect((await s.record('web-1'))?.syncedRevision).toBe(r1);
  });

  it('pushes a change only to the proxies whose config changed; the others are marked in sync', async () => {
    const s = await server();
    await s.setConfig('a-1', configFor('a'));
    await s.setConfig('b-1', configFor('b'));
    const a = proxy(s);
    const b = proxy(s);
    a.hello('a-1');
    b.hello('b-1');
    a.ack(await a.snapshot(1));
    b.ack(await b.snapshot(1));
    await until(async () => (await s.record('b-1'))?.syncedRevision, 'b in sync');

    const revision = await s.setConfig('a-1', configFor('a2'));
    s.server.notify(revision);
    const pushed = await a.snapshot(2);
    expect(pushed.version).toBe(String(revision));
    a.ack(pushed);
    await until(async () => (await s.record('a-1'))?.syncedRevision === revision, 'a in sync after its ACK');
    await until(async () => (await s.record('b-1'))?.syncedRevision === revision, 'b in sync without a push');
    expect(b.snapshots).toHaveLength(1);
    expect((await s.record('b-1'))?.sentVersion).toBe(b.snapshots[0]?.version);
  });

  it('coalesces a burst of notifications into one recomputation and one push', async () => {
    const s = await server();
    await s.setConfig('web-1', configFor('v0'));
    const p = proxy(s);
    p.hello('web-1');
    p.ack(await p.snapshot(1));
    await until(async () => (await s.record('web-1'))?.syncedRevision, 'in sync');
    const before = s.calls.get('web-1') ?? 0;

    const started = Date.now();
    let last = 0;
    for (let i = 1; i <= 10; i++) {
      last = await s.setConfig('web-1', configFor(`v${i}`));
      s.server.notify(last);
      await new Promise((r) => setImmediate(r));
    }
    expect(Date.now() - started).toBeLessThan(50);
    const pushed = await p.snapshot(2);
    expect(pushed.version).toBe(String(last));
    expect(pushed.routes?.[0]?.virtualHosts?.[0]?.routes?.[0]?.name).toBe('v10');
    p.ack(pushed);
    await until(
      async () => (await s.record('web-1'))?.syncedRevision === last,
      'in sync with the last revision',
    );
    expect((s.calls.get('web-1') ?? 0) - before).toBe(1);
    expect(p.snapshots).toHaveLength(2);
  });

  it('waits for a notification when no snapshot can be computed yet', async () => {
    const s = await server();
    const p = proxy(s);
    p.hello('web-1');
    const record = await until(() => s.record('web-1'), 'the status record');
    expect(record).toMatchObject({ sentVersion: '', ackedVersion: '', syncedRevision: 0 });
    const revision = await s.setConfig('web-1', configFor('late'));
    s.server.notify(revision);
    expect((await p.snapshot(1)).version).toBe(String(revision));
  });

  it('registers the endpoint under the stream lease, marks it draining on Deregister, and drops it at stream end', async () => {
    const s = await server();
    const p = proxy(s);
    p.hello('web-1', { namespace: 'shop', labels: { version: 'v1' } });
    p.send({ register: { address: '127.0.0.2', port: 15006, labels: { version: 'v1' } } });
    const registered = await until(() => endpoint(s, 'shop', 'web-1'), 'the endpoint');
    expect(registered).toStrictEqual({
      proxyId: 'web-1',
      namespace: 'shop',
      address: '127.0.0.2',
      port: 15006,
      labels: { version: 'v1', app: 'web' },
      weight: 1,
      draining: false,
    });
    const kv = await s.store.get(endpointKey('shop', 'web-1'));
    expect(kv?.lease).toBeDefined();

    p.send({ deregister: {} });
    await until(async () => (await endpoint(s, 'shop', 'web-1'))?.draining === true, 'draining');

    await p.close();
    await until(async () => (await s.store.get(endpointKey('shop', 'web-1'))) === undefined, 'endpoint gone');
    await until(async () => (await s.record('web-1')) === undefined, 'status record gone');
    expect(s.store.leases()).toEqual([]);
    await until(async () => (await s.metric('weft_cp_connected_proxies')) === 0, 'gauge back to 0');
    expect(s.server.status()).toEqual([]);
  });

  it('a newer stream with the same proxy id replaces the older one, keeping the endpoint', async () => {
    const s = await server();
    const old = proxy(s);
    old.hello('web-1');
    old.send({ register: { port: 15006 } });
    await until(() => endpoint(s, 'default', 'web-1'), 'the endpoint');
    const fresh = proxy(s);
    fresh.hello('web-1');
    fresh.send({ register: { port: 15007 } });
    expect((await old.ended).code).toBe(status.ABORTED);
    await until(
      async () => (await endpoint(s, 'default', 'web-1'))?.port === 15007,
      'the newer registration',
    );
    expect(s.store.leases()).toHaveLength(1);
    expect(s.server.status()).toHaveLength(1);
  });

  it('stop ends every stream with UNAVAILABLE and revokes their leases', async () => {
    const s = await startServer();
    const p = proxy(s);
    p.hello('web-1');
    p.send({ register: { port: 15006 } });
    await until(() => endpoint(s, 'default', 'web-1'), 'the endpoint');
    await s.stop();
    expect((await p.ended).code).toBe(status.UNAVAILABLE);
    expect(await s.store.get(endpointKey('default', 'web-1'))).toBeUndefined();
    expect(s.store.leases()).toEqual([]);
  });
});
