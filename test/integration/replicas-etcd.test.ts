/**
 * Two control-plane replicas on one etcd, as real processes on loopback: one etcd, replicas r1
 * and r2 (`weft control-plane --etcd`), three in-process apps each behind a real `weft sidecar`:
 *
 *   sidecar A  service alpha  --control-plane r1,r2   (fails over)
 *   sidecar B  service beta   --control-plane r2,r1
 *   sidecar C  service gamma  --control-plane r1      (cannot fail over)
 *
 * The cases run in order and share the mesh: (a) both replicas serve proxies and see the same
 * changes; (b) SIGKILL r1: A reconnects to r2 within seconds, re-registers its endpoint and keeps
 * serving, and traffic A→B and B→A stays 200 throughout; (c) C's endpoint, under the lease of the
 * dead replica, expires from etcd within the lease TTL (10 s; asserted ≤ 15 s). The measured
 * reconnect, re-registration and expiry times are printed (`[replicas-etcd] …`).
 */
import { createServer, type Server } from 'node:http';
import { Etcd3 } from 'etcd3';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyList, ProxyStatusRecord } from '../../control-plane/api/types.ts';
import { type EtcdStore, openEtcdStore } from '../../control-plane/store/etcd.ts';
import { endpointKey, proxyKey } from '../../control-plane/store/keys.ts';
import { type RunningEtcd, startEtcd } from '../support/etcd.ts';
import {
  type RunningControlPlane,
  type RunningSidecar,
  startControlPlane,
  startDynamicSidecar,
  until,
} from '../support/replicas.ts';

const SERVICES = ['alpha', 'beta', 'gamma']
  .map(
    (name) => `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: ${name} }
spec:
  ports: [{ name: http, port: 80 }]
`,
  )
  .join('---\n');

/** Beta's route: `/v2` gets `x-route: beta-canary` on its way to beta, the rest goes to beta as is. */
const ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: beta-canary }
spec:
  parentRefs: [{ group: "", kind: Service, name: beta, port: 80 }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /v2 } }]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: { set: [{ name: x-route, value: beta-canary }] }
      backendRefs: [{ name: beta, port: 80 }]
    - backendRefs: [{ name: beta, port: 80 }]
`;

const log = (line: string): void => {
  process.stdout.write(`[replicas-etcd] ${line}\n`);
};

let etcd: RunningEtcd | undefined;
let store: EtcdStore | undefined;
let etcdClient: Etcd3 | undefined;
let r1: RunningControlPlane;
let r2: RunningControlPlane;
let A: RunningSidecar;
let B: RunningSidecar;
let C: RunningSidecar;
const apps: Server[] = [];
/** Every process started, by kind, for afterAll: sidecars stop first, then the replicas. */
const started = { sidecars: [] as RunningSidecar[], replicas: [] as RunningControlPlane[] };
let traffic: Traffic | undefined;

/** Awaits all of `starts`, keeping every process that started in `into`; throws the first failure. */
async function startAll<T>(starts: Promise<T>[], into: T[]): Promise<T[]> {
  const settled = await Promise.allSettled(starts);
  for (const s of settled) if (s.status === 'fulfilled') into.push(s.value);
  for (const s of settled) if (s.status === 'rejected') throw s.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/** An app that answers JSON naming its service, the path and the `x-route` header it got. */
async function startApp(service: string): Promise<number> {
  const server = createServer((req, res) => {
    req.resume();
    const body = JSON.stringify({ service, path: req.url, route: req.headers['x-route'] ?? null });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  apps.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('app not bound');
  return address.port;
}

interface Answer {
  readonly status: number;
  readonly body: { service?: string; path?: string; route?: string | null };
}

/** A request through `via`'s outbound listener to `service` (Host-routed). */
async function call(via: RunningSidecar, service: string, path = '/'): Promise<Answer> {
  const res = await request(`http://127.0.0.1:${via.outboundPort}${path}`, {
    headers: { host: service },
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  const text = await res.body.text();
  let body: Answer['body'] = {};
  try {
    body = JSON.parse(text) as Answer['body'];
  } catch {
    body = { route: text };
  }
  return { status: res.statusCode, body };
}

interface Outcome {
  /** performance.now() when the answer (or error) came. */
  readonly at: number;
  readonly flow: string;
  /** 'ok', or the status and body, or the error. */
  readonly outcome: string;
}

/** Back-to-back requests A→beta and B→alpha until `stop()`, recording every outcome. */
class Traffic {
  readonly results: Outcome[] = [];
  #running = true;
  readonly #done: Promise<void>;

  constructor() {
    this.#done = this.#loop();
  }

  async #loop(): Promise<void> {
    const flows: [string, () => Promise<Answer>, string][] = [
      ['A→beta', () => call(A, 'beta'), 'beta'],
      ['B→alpha', () => call(B, 'alpha'), 'alpha'],
    ];
    while (this.#running) {
      for (const [flow, send, service] of flows) {
        let outcome: string;
        try {
          const r = await send();
          outcome =
            r.status === 200 && r.body.service === service ? 'ok' : `${r.status} ${JSON.stringify(r.body)}`;
        } catch (err) {
          outcome = `error ${(err as Error).message}`;
        }
        this.results.push({ at: performance.now(), flow, outcome });
      }
      // Paced (about 100 pairs a second at most) so that the loop does not starve the processes.
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Results after `since` (performance.now()), optionally of one flow. */
  after(since: number, flow?: string): Outcome[] {
    return this.results.filter((r) => r.at > since && (flow === undefined || r.flow === flow));
  }

  failures(): Outcome[] {
    return this.results.filter((r) => r.outcome !== 'ok');
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }
}

async function proxies(cp: RunningControlPlane): Promise<Map<string, ProxyStatusRecord>> {
  const r = await cp.weft(['proxy-status', '-o', 'json']);
  if (r.code !== 0) throw new Error(`weft proxy-status failed (${r.code}): ${r.stderr}`);
  return new Map((JSON.parse(r.stdout) as ProxyList).items.map((p) => [p.proxyId, p]));
}

/** The proxies connected to `cp` now, from its monitoring `/config_dump`. */
async function connectedTo(cp: RunningControlPlane): Promise<string[]> {
  const res = await fetch(`${cp.monitoringUrl}/config_dump`, { signal: AbortSignal.timeout(2000) });
  const dump = (await res.json()) as { proxies: { proxyId: string }[] };
  return dump.proxies.map((p) => p.proxyId);
}

async function endpointLease(sidecar: RunningSidecar): Promise<string | undefined | null> {
  const kv = await (store as EtcdStore).get(endpointKey('default', sidecar.proxyId));
  return kv === undefined ? null : kv.lease;
}

/** Seconds left on etcd lease `id` (-1 once expired or revoked). */
async function leaseTtl(id: string): Promise<number> {
  const res = await (etcdClient as Etcd3).leaseClient.leaseTimeToLive({ ID: id });
  return Number(res.TTL);
}

/** Endpoint count of `service`'s outbound cluster in a sidecar's config in force. */
async function endpointsOf(sidecar: RunningSidecar, service: string): Promise<number | undefined> {
  const dump = (await sidecar.configDump()) as unknown as {
    config: { endpoints: { clusterName: string; endpoints?: unknown[] }[] } | null;
  };
  const cla = dump.config?.endpoints.find((e) => e.clusterName === `outbound|80|${service}.default`);
  return cla === undefined ? undefined : (cla.endpoints ?? []).length;
}

beforeAll(async () => {
  etcd = await startEtcd();
  store = await openEtcdStore(etcd.endpoints);
  etcdClient = new Etcd3({ hosts: etcd.endpoints });
  const endpoints = etcd.endpoints;
  [r1, r2] = (await startAll(
    ['r1', 'r2'].map((replicaId) => startControlPlane({ etcd: endpoints, replicaId })),
    started.replicas,
  )) as [RunningControlPlane, RunningControlPlane];
  const applied = await r1.weft(['apply', '-f', '-'], SERVICES);
  expect(applied.stderr).toBe('');
  expect(applied.code).toBe(0);

  const [alpha, beta, gamma] = await Promise.all(['alpha', 'beta', 'gamma'].map(startApp));
  [A, B, C] = (await startAll(
    [
      startDynamicSidecar({
        controlPlane: [r1.discoveryAddress, r2.discoveryAddress],
        service: 'alpha',
        workload: 'alpha-v1',
        appPort: alpha as number,
      }),
      startDynamicSidecar({
        controlPlane: [r2.discoveryAddress, r1.discoveryAddress],
        service: 'beta',
        workload: 'beta-v1',
        appPort: beta as number,
      }),
      startDynamicSidecar({
        controlPlane: r1.discoveryAddress,
        service: 'gamma',
        workload: 'gamma-v1',
        appPort: gamma as number,
      }),
    ],
    started.sidecars,
  )) as [RunningSidecar, RunningSidecar, RunningSidecar];
  // The mesh is complete once A and B each know all three endpoints.
  await until(async () => {
    for (const sidecar of [A, B])
      for (const service of ['alpha', 'beta', 'gamma'])
        if ((await endpointsOf(sidecar, service)) !== 1) return false;
    return true;
  }, 'every endpoint in A and B');
});

afterAll(async () => {
  await traffic?.stop();
  // Sidecars first (they close their streams), then the replicas, then etcd; each by its pid.
  await Promise.allSettled(started.sidecars.splice(0).map((p) => p.stop()));
  await Promise.allSettled(started.replicas.splice(0).map((p) => p.stop()));
  etcdClient?.close();
  await store?.close().catch(() => {});
  await etcd?.stop().catch(() => {});
  await Promise.all(apps.map((s) => new Promise((resolve) => s.close(resolve))));
});

describe('two control-plane replicas on one etcd', () => {
  let routeRevision = 0;

  it('(a) both serve proxies and see the same changes: a route applied on r1 reaches the sidecars of both', async () => {
    const applied = await r1.weft(['apply', '-f', '-', '-o', 'json'], ROUTE);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    routeRevision = (JSON.parse(applied.stdout) as { revision: number }).revision;
    const version = String(routeRevision);

    // A (on r1) and B (on r2) both run the new revision...
    await until(
      async () => (await A.configDump()).version === version && (await B.configDump()).version === version,
      `both sidecars at version ${version}`,
    );
    // ...and both ACKed it, as replica 2 reports (the status records of both replicas' proxies).
    const onR2 = await until(
      async () => {
        const list = await proxies(r2);
        const a = list.get(A.proxyId);
        const b = list.get(B.proxyId);
        return a?.ackedVersion === version && b?.ackedVersion === version && list;
      },
      `both ACKs of ${version} in proxy-status on r2`,
      15_000,
      100,
    );
    expect(onR2.get(A.proxyId)).toMatchObject({ replicaId: 'r1', connected: true, ackedVersion: version });
    expect(onR2.get(B.proxyId)).toMatchObject({ replicaId: 'r2', connected: true, ackedVersion: version });
    expect([...onR2.keys()].sort()).toEqual([A.proxyId, B.proxyId, C.proxyId].sort());

    // proxy-status on r1 lists the same proxies; get on r2 shows the route applied on r1.
    const onR1 = await proxies(r1);
    expect([...onR1.keys()].sort()).toEqual([...onR2.keys()].sort());
    expect(onR1.get(B.proxyId)?.replicaId).toBe('r2');
    const routes = await r2.weft(['get', 'httproutes']);
    expect(routes.code).toBe(0);
    expect(routes.stdout).toMatch(new RegExp(`^default\\s+beta-canary\\s+${routeRevision}\\s`, 'm'));

    // The route is in force on both sidecars.
    expect(await call(A, 'beta', '/v2/items')).toMatchObject({
      status: 200,
      body: { service: 'beta', path: '/v2/items', route: 'beta-canary' },
    });
    expect(await call(B, 'beta', '/v2/items')).toMatchObject({ status: 200, body: { route: 'beta-canary' } });
    expect(await call(A, 'beta', '/v1')).toMatchObject({ status: 200, body: { route: null } });
  });

  let killedAt = 0;
  let leaseA: string | undefined | null;
  let leaseC: string | undefined | null;

  it('(b) when r1 dies (SIGKILL), A reconnects to r2 within seconds, re-registers and keeps serving', async () => {
    leaseA = await endpointLease(A);
    leaseC = await endpointLease(C);
    expect(leaseA).toEqual(expect.any(String));
    expect(leaseC).toEqual(expect.any(String));
    expect(await connectedTo(r1)).toEqual([A.proxyId, C.proxyId].sort());

    traffic = new Traffic();
    await until(() => (traffic as Traffic).results.length >= 10 || undefined, 'traffic before the kill');
    killedAt = performance.now();
    await r1.kill('SIGKILL');

    await until(async () => (await connectedTo(r2)).includes(A.proxyId), 'A connected to r2', 10_000, 20);
    const reconnectMs = performance.now() - killedAt;
    const lease = await until(async () => {
      const l = await endpointLease(A);
      return typeof l === 'string' && l !== leaseA && l;
    }, "A's endpoint under a lease of r2");
    const reregisterMs = performance.now() - killedAt;
    log(
      `A reconnected to r2 ${Math.round(reconnectMs)} ms after r1 was killed; endpoint re-registered after ${Math.round(reregisterMs)} ms (lease ${leaseA} → ${lease})`,
    );
    expect(reconnectMs).toBeLessThan(5000);
    const record = await until(async () => {
      const kv = await (store as EtcdStore).get(proxyKey(A.proxyId));
      const r = kv && (JSON.parse(kv.value) as ProxyStatusRecord);
      return r?.replicaId === 'r2' && r;
    }, "A's status record written by r2");
    expect(record.connected).toBe(true);

    // Traffic both ways kept flowing across the failover.
    const since = performance.now();
    await until(
      () =>
        (traffic as Traffic).after(since, 'B→alpha').length >= 5 &&
        (traffic as Traffic).after(since, 'A→beta').length >= 5,
      'traffic after the failover',
    );
    expect((traffic as Traffic).failures()).toEqual([]);
  });

  it('(c) the endpoint of a proxy that cannot reconnect expires from etcd within the lease TTL', async () => {
    expect(killedAt).toBeGreaterThan(0);
    await until(async () => (await endpointLease(C)) === null, "C's endpoint expired", 20_000, 50);
    const expiryMs = performance.now() - killedAt;
    log(`C's endpoint (lease ${leaseC}, TTL 10 s) expired ${Math.round(expiryMs)} ms after r1 was killed`);
    expect(expiryMs).toBeLessThanOrEqual(15_000);
    // Not revoked by anyone (r1 died): it outlived at least part of the TTL.
    expect(expiryMs).toBeGreaterThan(3000);
    expect(await (store as EtcdStore).get(proxyKey(C.proxyId))).toBeUndefined();

    // A's old lease (from r1) has expired too, and A's endpoint, re-attached to r2's lease, stays.
    await until(async () => (await leaseTtl(leaseA as string)) === -1, "A's old lease expired", 10_000, 100);
    expect(await endpointLease(A)).toEqual(expect.any(String));

    // r2 pushes the change (gamma lost its endpoint) to A and B, which both ACK one revision.
    await until(
      async () => (await endpointsOf(A, 'gamma')) === 0 && (await endpointsOf(B, 'gamma')) === 0,
      "gamma's endpoint gone from A and B",
    );
    const version = await until(async () => {
      const [a, b] = await Promise.all([A.configDump(), B.configDump()]);
      return a.version === b.version && a.version;
    }, 'A and B at one version');
    expect(Number(version)).toBeGreaterThan(routeRevision);
    const list = await until(
      async () => {
        const l = await proxies(r2);
        return l.get(A.proxyId)?.ackedVersion === version && l.get(B.proxyId)?.ackedVersion === version && l;
      },
      `both ACKs of ${version} on r2`,
      10_000,
      100,
    );
    expect([...list.keys()].sort()).toEqual([A.proxyId, B.proxyId].sort());
    expect(list.get(A.proxyId)?.replicaId).toBe('r2');

    // B still routes to A's workload after the old lease expired; nothing failed all along.
    const since = performance.now();
    await until(() => (traffic as Traffic).after(since, 'B→alpha').length >= 5, 'B→alpha after the expiry');
    await traffic?.stop();
    const all = (traffic as Traffic).results;
    log(
      `traffic during the failover: ${all.length} requests (A→beta and B→alpha), ${(traffic as Traffic).failures().length} failed`,
    );
    expect((traffic as Traffic).failures()).toEqual([]);
    expect(await call(B, 'alpha')).toMatchObject({ status: 200, body: { service: 'alpha' } });
    expect(await call(A, 'beta')).toMatchObject({ status: 200, body: { service: 'beta' } });
  });
});
