/**
 * A live mesh on loopback, every part a real process: `weft control-plane` on the embedded store
 * (temp dir), dynamic `weft sidecar`s beside small HTTP apps (a client `web`, servers `api` v1
 * and v2), driven with the real `weft` CLI. The acceptance criteria of the control plane:
 *
 * - a route applied with the CLI changes traffic through a sidecar within 1 s;
 * - `weft apply --wait` prints the rollout receipt (every connected proxy synced);
 * - invalid config is rejected naming resource, field and reason, and nothing is stored;
 * - a snapshot a sidecar cannot apply (its inbound port is taken) shows as a NACK in
 *   `weft proxy-status`;
 * - a killed sidecar's endpoint leaves within the lease TTL;
 * - with the control plane killed, traffic keeps flowing;
 * - a sidecar restarted while the control plane is down serves its on-disk config.
 *
 * The scenarios share one mesh and run in this order (the last two need the control plane
 * gone). Waits are events or deadline-bound polls; every process started here is stopped in
 * `afterAll` by its pid, and the temp dir is removed. Ports are allocated dynamically.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyList, ResourceList } from '../../control-plane/api/types.ts';
import type { ProxyConfig } from '../../sidecar/proxy/config/model.ts';
import {
  type ConfigDump,
  type ControlPlane,
  freePorts,
  type MeshSidecar,
  type MeshSidecarOptions,
  pollUntil,
  startControlPlane,
  startMeshSidecar,
  stopAll,
  type WeftResult,
  weft,
} from '../support/mesh.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';

/** What every app answers: who it is. */
interface Answer {
  readonly service: string;
  readonly version: string;
  readonly workload: string;
}

interface Reply {
  readonly status: number;
  readonly answer: Answer | undefined;
  readonly text: string;
}

const SERVICES_YAML = `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: web }
spec:
  ports: [{ name: http, port: 80 }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: api }
spec:
  selector: { app: api }
  ports: [{ name: http, port: 80 }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: api-v1 }
spec:
  selector: { app: api, version: v1 }
  ports: [{ name: http, port: 80 }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: api-v2 }
spec:
  selector: { app: api, version: v2 }
  ports: [{ name: http, port: 80 }]
`;

/** The HTTPRoute `api-split` on Service api sending everything to `backend`. */
function routeTo(backend: 'api-v1' | 'api-v2'): string {
  return `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: api-split }
spec:
  parentRefs: [{ group: "", kind: Service, name: api, port: 80 }]
  rules:
    - backendRefs:
        - { name: ${backend}, port: 80, weight: 100 }
      timeouts: { request: 5s }
`;
}

/** Two valid documents and one HTTPRoute breaking a rule (backendRequest > request). */
const INVALID_BUNDLE_YAML = `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: orders }
spec:
  ports: [{ name: http, port: 80 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: orders-route }
spec:
  parentRefs: [{ group: "", kind: Service, name: orders, port: 80 }]
  rules:
    - backendRefs: [{ name: orders, port: 80 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: broken-route, namespace: default }
spec:
  parentRefs: [{ group: "", kind: Service, name: orders, port: 80 }]
  rules:
    - backendRefs: [{ name: orders, port: 80 }]
      timeouts: { request: 2s, backendRequest: 10s }
`;

/** An app on 127.0.0.1 answering every request with `{service, version, workload}`. */
function startApp(service: string, version: string, workload: string): Promise<Upstream> {
  return startUpstream((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ service, version, workload } satisfies Answer);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
}

let root = '';
let cp: ControlPlane | undefined;
let env: NodeJS.ProcessEnv = {};
let agent = new Agent({ keepAliveTimeout: 2000 });
const apps: Upstream[] = [];
const sidecars: MeshSidecar[] = [];
const heldSockets: NetServer[] = [];
let web: MeshSidecar;
let apiV1: MeshSidecar;
let apiV2: MeshSidecar;

/** Runs `weft args` against the test control plane (server and token from the environment). */
function cli(args: readonly string[]): Promise<WeftResult> {
  return weft(args, { env, cwd: root });
}

/** Starts a dynamic sidecar on fresh ports and remembers it for `afterAll`. */
async function sidecar(
  options: Omit<MeshSidecarOptions, 'controlPlane' | 'outboundPort' | 'inboundPort' | 'dataDir'> &
    Partial<Pick<MeshSidecarOptions, 'outboundPort' | 'inboundPort'>>,
): Promise<MeshSidecar> {
  const [outboundPort, inboundPort] = await freePorts(2);
  const started = await startMeshSidecar({
    controlPlane: (cp as ControlPlane).discoveryAddress,
    outboundPort: outboundPort as number,
    inboundPort: inboundPort as number,
    dataDir: join(root, 'sidecars', options.workload),
    ...options,
  });
  sidecars.push(started);
  return started;
}

/**
 * Like `Promise.all`, but settles every start before rejecting, so nothing is still starting when
 * `afterAll` stops what was started; fulfilled values are also pushed into `started` (`sidecar()`
 * records its sidecars itself).
 */
async function allStarted<T>(starts: readonly Promise<T>[], started: T[] = []): Promise<T[]> {
  const results = await Promise.allSettled(starts);
  const values: T[] = [];
  for (const r of results) if (r.status === 'fulfilled') values.push(r.value);
  started.push(...values);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return values;
}

/** One request through `via`'s outbound listener with `Host: host`. */
async function ask(via: MeshSidecar, host = 'api'): Promise<Reply> {
  const res = await request(`${via.outboundUrl}/`, {
    headers: { host },
    dispatcher: agent,
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  const text = await res.body.text();
  let answer: Answer | undefined;
  try {
    answer = JSON.parse(text) as Answer;
  } catch {
    answer = undefined;
  }
  return { status: res.statusCode, answer, text };
}

/**
 * `total` requests through `via`, `concurrency` at a time; resolves with every reply (a socket
 * error counts as status 0 with the error as its text).
 */
async function burst(via: MeshSidecar, total: number, concurrency = 10, host = 'api'): Promise<Reply[]> {
  const replies: Reply[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        replies.push(
          await ask(via, host).catch((err: unknown) => ({ status: 0, answer: undefined, text: String(err) })),
        );
      }
    }),
  );
  return replies;
}

/** Tally of `status version` pairs, e.g. `{ '200 v1': 200 }`, for readable assertions. */
function tally(replies: readonly Reply[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of replies) {
    const key = `${r.status} ${r.answer?.version ?? r.text.slice(0, 60)}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

/** The endpoints (`address:port`) of `cluster` in a proxy config. */
function endpointsOf(endpoints: ProxyConfig['endpoints'] | undefined, cluster: string): string[] {
  const cla = (endpoints ?? []).find((c) => c.clusterName === cluster);
  return (cla?.endpoints ?? []).map((e) => `${e.address}:${e.port}`).sort();
}

const API_V1_CLUSTER = 'outbound|80|api-v1.default';

describe('a live mesh: control plane, sidecars and the weft CLI as real processes', () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'weft-mesh-live-'));
    cp = await startControlPlane({ dataDir: join(root, 'control-plane') });
    env = { WEFT_SERVER: cp.server, WEFT_TOKEN: cp.token };

    await writeFile(join(root, 'mesh.yaml'), `${SERVICES_YAML}---${routeTo('api-v1')}`);
    await writeFile(join(root, 'route-v1.yaml'), routeTo('api-v1'));
    await writeFile(join(root, 'route-v2.yaml'), routeTo('api-v2'));
    await writeFile(join(root, 'invalid.yaml'), INVALID_BUNDLE_YAML);
    const applied = await cli(['apply', '-f', join(root, 'mesh.yaml')]);
    expect(applied.code, applied.stderr).toBe(0);

    const [webApp, v1App, v2App] = (await allStarted(
      [startApp('web', 'v1', 'web-v1'), startApp('api', 'v1', 'api-v1-a'), startApp('api', 'v2', 'api-v2-a')],
      apps,
    )) as [Upstream, Upstream, Upstream];
    [web, apiV1, apiV2] = (await allStarted([
      sidecar({ service: 'web', workload: 'web-v1', labels: { version: 'v1' }, appPort: webApp.port }),
      sidecar({ service: 'api', workload: 'api-v1-a', labels: { version: 'v1' }, appPort: v1App.port }),
      sidecar({ service: 'api', workload: 'api-v2-a', labels: { version: 'v2' }, appPort: v2App.port }),
    ])) as [MeshSidecar, MeshSidecar, MeshSidecar];
    // The api endpoints register after web's first snapshot; wait until web routes to v1.
    await pollUntil('web → api to be answered by api v1', async () => {
      const r = await ask(web);
      return r.status === 200 && r.answer?.version === 'v1' ? true : undefined;
    });
  });

  afterAll(async () => {
    await stopAll(sidecars);
    await cp?.stop();
    await agent.close();
    await Promise.all(apps.map((a) => a.close()));
    await Promise.all(heldSockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('applying a route with `weft apply` moves all traffic through a sidecar to the new backend within 1 s', async () => {
    const before = await burst(web, 20, 1);
    expect(tally(before)).toEqual({ '200 v1': 20 });

    const applied = await cli(['apply', '-f', join(root, 'route-v2.yaml')]);
    const appliedAt = performance.now();
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/HTTPRoute\/default\/api-split configured/);

    // Sequential requests until a streak of 20 answers all from v2; the switch is the arrival of
    // the streak's first answer.
    const STREAK = 20;
    let streak = 0;
    let streakStartedAt = 0;
    const seen: Reply[] = [];
    await pollUntil(
      `${STREAK} answers in a row from api v2`,
      async () => {
        const r = await ask(web);
        seen.push(r);
        if (r.status === 200 && r.answer?.version === 'v2') {
          if (streak === 0) streakStartedAt = performance.now();
          streak++;
        } else {
          streak = 0;
        }
        return streak >= STREAK ? true : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 0 },
    );
    const latencyMs = streakStartedAt - appliedAt;
    console.log(
      `[mesh-live] apply → all traffic on api v2: ${latencyMs.toFixed(1)} ms after \`weft apply\` returned (${seen.length} requests: ${JSON.stringify(tally(seen))})`,
    );
    expect(latencyMs).toBeLessThan(1000);
  });

  it('`weft apply --wait` exits 0 with a receipt listing every connected proxy as synced', async () => {
    const result = await cli(['apply', '-f', join(root, 'route-v1.yaml'), '--wait', '--timeout', '10s']);
    expect(result.code, result.stderr).toBe(0);
    const revision = Number(/^revision (\d+)$/m.exec(result.stdout)?.[1]);
    expect(revision).toBeGreaterThan(0);
    expect(result.stdout).toContain(`rollout of revision ${revision}: 3 synced, 0 NACKed, 0 pending`);
    for (const proxy of [web, apiV1, apiV2]) {
      expect(result.stdout).toMatch(
        new RegExp(`^${proxy.proxyId.replaceAll('.', '\\.')}\\s+synced\\s*$`, 'm'),
      );
    }
    // The receipt covers exactly the connected proxies.
    const status = await cli(['proxy-status', '-o', 'json']);
    expect(status.code, status.stderr).toBe(0);
    const ids = (JSON.parse(status.stdout) as ProxyList).items.map((p) => p.proxyId).sort();
    expect(ids).toEqual([web, apiV1, apiV2].map((p) => p.proxyId).sort());
    // Synced means web runs the new route: the very next requests go to v1.
    expect(tally(await burst(web, 20, 5))).toEqual({ '200 v1': 20 });
  });

  it('an invalid document makes `weft apply` exit 1 naming resource, field and reason, and stores nothing', async () => {
    const result = await cli(['apply', '-f', join(root, 'invalid.yaml')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /HTTPRoute default\/broken-route: spec\.rules\[0\]\.timeouts\.backendRequest: 10s exceeds request \(2s\)/,
    );

    // The admin API itself rejects the same bundle as a whole (the CLI checks locally first).
    const server = await request(`${(cp as ControlPlane).server}/v1/apply`, {
      method: 'POST',
      headers: { authorization: `Bearer ${(cp as ControlPlane).token}`, 'content-type': 'application/yaml' },
      body: INVALID_BUNDLE_YAML,
    });
    const body = (await server.body.json()) as { errors?: string[] };
    expect(server.statusCode).toBe(422);
    expect(body.errors?.join('\n')).toMatch(
      /HTTPRoute default\/broken-route: spec\.rules\[0\]\.timeouts\.backendRequest/,
    );

    const routes = await cli(['get', 'httproutes', '-o', 'json']);
    expect(routes.code, routes.stderr).toBe(0);
    expect((JSON.parse(routes.stdout) as ResourceList).items.map((r) => r.metadata.name)).toEqual([
      'api-split',
    ]);
    const services = await cli(['get', 'services', '-o', 'json']);
    expect(services.code, services.stderr).toBe(0);
    expect((JSON.parse(services.stdout) as ResourceList).items.map((r) => r.metadata.name)).not.toContain(
      'orders',
    );
  });

  it('a snapshot a sidecar cannot apply (inbound port taken) shows as a NACK in `weft proxy-status`', async () => {
    const [takenPort] = await freePorts(1);
    const holder = createNetServer();
    heldSockets.push(holder);
    await new Promise<void>((resolve, reject) => {
      holder.once('error', reject);
      holder.listen(takenPort, '127.0.0.1', () => resolve());
    });
    const app = await startApp('batch', 'v1', 'batch-v1');
    apps.push(app);
    const batch = await sidecar({
      service: 'batch',
      workload: 'batch-v1',
      labels: { version: 'v1' },
      appPort: app.port,
      inboundPort: takenPort as number,
      waitReady: false,
    });
    try {
      const nacked = await pollUntil(`${batch.proxyId} to show a NACK in proxy-status`, async () => {
        const status = await cli(['proxy-status', '-o', 'json']);
        if (status.code !== 0) throw new Error(status.stderr);
        const record = (JSON.parse(status.stdout) as ProxyList).items.find(
          (p) => p.proxyId === batch.proxyId,
        );
        return record?.lastNack !== undefined ? record : undefined;
      });
      expect(nacked.lastNack?.reason).toMatch(/EADDRINUSE|address already in use/i);
      expect(nacked.lastNack?.reason).toContain(`127.0.0.1:${takenPort}`);
      expect(nacked.ackedVersion).toBe('');

      // The table names it too, and the sidecar never turned ready.
      const table = await cli(['proxy-status']);
      expect(table.code, table.stderr).toBe(0);
      expect(table.stdout).toMatch(new RegExp(`${batch.proxyId.replaceAll('.', '\\.')}.*EADDRINUSE`));
      const ready = await request(`${batch.adminUrl}/ready`);
      await ready.body.dump();
      expect(ready.statusCode).toBe(503);
      // Recorded, not asserted: what the proxy core holds after the failed first apply.
      const dump = (await batch.configDump()) as ConfigDump & {
        listeners: unknown[];
        clusters: { clusters: { name: string }[] };
      };
      console.log(
        `[mesh-live] NACK reason: ${nacked.lastNack?.reason}; the sidecar after it: version "${dump.version}", ${dump.listeners.length} listeners, clusters held ${JSON.stringify(dump.clusters.clusters.map((c) => c.name))}`,
      );
    } finally {
      await batch.stop();
    }
  });

  it("a killed sidecar's endpoint leaves the other proxies' config within the lease TTL", async () => {
    const app = await startApp('api', 'v1', 'api-v1-b');
    apps.push(app);
    const second = await sidecar({
      service: 'api',
      workload: 'api-v1-b',
      labels: { version: 'v1' },
      appPort: app.port,
    });
    const first = `127.0.0.1:${apiV1.options.inboundPort}`;
    const killed = `127.0.0.1:${second.options.inboundPort}`;
    // Both instances are in web's computed config, in the config web runs, and take traffic.
    const both = [first, killed].sort();
    const shown = await pollUntil('both api-v1 endpoints in `weft proxy-config`', async () => {
      const r = await cli(['proxy-config', web.proxyId, 'endpoints', '-o', 'json']);
      const eps = endpointsOf(JSON.parse(r.stdout) as ProxyConfig['endpoints'], API_V1_CLUSTER);
      return eps.length === 2 ? eps : undefined;
    });
    expect(shown).toEqual(both);
    await pollUntil('web to run both api-v1 endpoints', async () => {
      const dump = await web.configDump();
      return endpointsOf(dump.config?.endpoints, API_V1_CLUSTER).length === 2 ? true : undefined;
    });
    const workloads = new Set<string | undefined>();
    await pollUntil('both api-v1 instances to answer through web', async () => {
      workloads.add((await ask(web)).answer?.workload);
      return workloads.has('api-v1-a') && workloads.has('api-v1-b') ? true : undefined;
    });

    const killedAt = performance.now();
    const exit = await second.kill('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');
    const proxyConfigUrl = `${(cp as ControlPlane).server}/v1/proxies/${encodeURIComponent(web.proxyId)}/config`;
    await pollUntil(
      `${killed} to leave web's computed config`,
      async () => {
        const res = await request(proxyConfigUrl, {
          headers: { authorization: `Bearer ${(cp as ControlPlane).token}` },
        });
        const snapshot = (await res.body.json()) as { config: ProxyConfig };
        return endpointsOf(snapshot.config.endpoints, API_V1_CLUSTER).includes(killed) ? undefined : true;
      },
      { timeoutMs: 20_000, intervalMs: 20 },
    );
    const removedMs = performance.now() - killedAt;
    await pollUntil(
      'web to run without the killed endpoint',
      async () => {
        const dump = await web.configDump();
        return endpointsOf(dump.config?.endpoints, API_V1_CLUSTER).includes(killed) ? undefined : true;
      },
      { timeoutMs: 20_000, intervalMs: 20 },
    );
    const appliedMs = performance.now() - killedAt;
    console.log(
      `[mesh-live] killed sidecar's endpoint gone from web's computed config ${removedMs.toFixed(0)} ms after SIGKILL; web runs without it after ${appliedMs.toFixed(0)} ms (lease TTL 10 s)`,
    );
    expect(removedMs).toBeLessThan(15_000);

    const listed = await cli(['proxy-config', web.proxyId, 'endpoints', '-o', 'json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(endpointsOf(JSON.parse(listed.stdout) as ProxyConfig['endpoints'], API_V1_CLUSTER)).toEqual([
      first,
    ]);
    const after = await burst(web, 50, 5);
    expect(tally(after)).toEqual({ '200 v1': 50 });
    expect(new Set(after.map((r) => r.answer?.workload))).toEqual(new Set(['api-v1-a']));
  });

  it('with the control plane killed (SIGKILL), traffic through the sidecars keeps flowing', async () => {
    const exit = await (cp as ControlPlane).kill('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');
    const down = await cli(['proxy-status']);
    expect(down.code).toBe(1); // the admin API is gone with it

    const viaRoute = await burst(web, 200, 10);
    expect(tally(viaRoute)).toEqual({ '200 v1': 200 });
    const direct = await burst(web, 50, 10, 'api-v2');
    expect(tally(direct)).toEqual({ '200 v2': 50 });
    for (const s of [web, apiV1, apiV2]) {
      const ready = await request(`${s.adminUrl}/ready`);
      await ready.body.dump();
      expect(ready.statusCode, s.proxyId).toBe(200);
    }
  });

  it('a sidecar restarted while the control plane is down serves its last config from disk', async () => {
    const versionBefore = (await web.configDump()).version;
    const stopped = await web.stop(10_000);
    expect(stopped).toEqual({ code: 0, signal: null });
    await agent.close(); // its connections went to the old process
    agent = new Agent({ keepAliveTimeout: 2000 });

    const restarted = await startMeshSidecar({ ...web.options, waitReady: true });
    sidecars.push(restarted);
    expect(restarted.proxyId).toBe(web.proxyId);
    expect(restarted.process.logs.some((e) => e.msg === 'serving the cached config')).toBe(true);
    expect((await restarted.configDump()).version).toBe(versionBefore);

    const replies = await burst(restarted, 50, 5);
    expect(tally(replies)).toEqual({ '200 v1': 50 });
    expect(tally(await burst(restarted, 20, 5, 'api-v2'))).toEqual({ '200 v2': 20 });
  });
});
