/**
 * gRPC end to end (issue 6 acceptance): a real gRPC client and real gRPC servers that no one here
 * wrote — Debian's python3-grpcio, driven by test/support/grpc/{client,server}.py with generic
 * raw-bytes stubs — talk through two sidecars with mTLS, configured by a real control plane
 * (`weft control-plane --tls`, `weft apply`).
 *
 * The mesh: the client is the test's `client.py`, speaking h2c (prior knowledge) to the `web`
 * sidecar's outbound listener with `:authority` set to the Service name; web's sidecar reaches the
 * servers' sidecars over mTLS (h2 by ALPN), which reach their apps over h2c (Service ports with
 * `appProtocol: grpc`):
 * - Service `echo` (endpoints echo-v1 → server `a`, echo-v2 → server `b`) with a GRPCRoute: the
 *   method `weft.test.Echo/Unary` with header `x-canary: true` goes to `echo-v2`; every other
 *   method of `weft.test.Echo` is split 3:1 between `echo-v1` and `echo-v2`; other services get
 *   no route (UNIMPLEMENTED).
 * - Service `flaky` (selector `flaky: "yes"`): echo-v1's endpoint (server `a`) and `bad`'s (server
 *   `bad`, which answers every call UNAVAILABLE, Trailers-Only); a BackendTrafficPolicy retries
 *   `unavailable`.
 * - Service `nobody`: no endpoints (UNAVAILABLE from the mesh).
 *
 * Waits are events (server `ready` lines, sidecar `/ready`) or deadline-bound polls; every
 * process is stopped by pid in `afterAll`; ports are dynamic.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GrpcCall,
  type GrpcResult,
  type GrpcServer,
  grpcCalls,
  startGrpcServer,
} from '../support/grpc.ts';
import {
  type ControlPlane,
  freePorts,
  joinToken,
  type MeshSidecar,
  pollUntil,
  startControlPlane,
  startMeshSidecar,
  stopAll,
  weft,
} from '../support/mesh.ts';

const ECHO = '/weft.test.Echo';
const FLAKY_CLUSTER = 'outbound|50051|flaky.default';

const MESH_YAML = `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: echo }
spec:
  ports: [{ name: grpc, port: 50051, appProtocol: grpc }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: echo-v1 }
spec:
  selector: { app: echo, version: v1 }
  ports: [{ name: grpc, port: 50051, appProtocol: grpc }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: echo-v2 }
spec:
  selector: { app: echo, version: v2 }
  ports: [{ name: grpc, port: 50051, appProtocol: grpc }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: flaky }
spec:
  selector: { flaky: "yes" }
  ports: [{ name: grpc, port: 50051, appProtocol: grpc }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: nobody }
spec:
  ports: [{ name: grpc, port: 50051, appProtocol: grpc }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: echo }
spec:
  parentRefs: [{ group: "", kind: Service, name: echo, port: 50051 }]
  rules:
    - matches:
        - method: { service: weft.test.Echo, method: Unary }
          headers: [{ name: x-canary, value: "true" }]
      backendRefs: [{ name: echo-v2, port: 50051 }]
    - matches:
        - method: { service: weft.test.Echo }
      backendRefs:
        - { name: echo-v1, port: 50051, weight: 3 }
        - { name: echo-v2, port: 50051, weight: 1 }
---
apiVersion: weft.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: { name: flaky-retry }
spec:
  targetRefs: [{ kind: Service, name: flaky }]
  retry:
    numRetries: 2
    perRetry: { backOff: { baseInterval: 5ms } }
    retryOn: { triggers: [unavailable] }
    budget: { percent: 100, minRetriesPerSecond: 1000 }
`;

let root = '';
let cp: ControlPlane | undefined;
const sidecars: MeshSidecar[] = [];
const servers: GrpcServer[] = [];
let web: MeshSidecar;
let echoV1: MeshSidecar;
let echoV2: MeshSidecar;
let a: GrpcServer;
let b: GrpcServer;
let bad: GrpcServer;

/** Calls `plan` through web's outbound listener with `:authority` `service`. */
function through(service: string, plan: readonly GrpcCall[]): Promise<GrpcResult[]> {
  return grpcCalls(`127.0.0.1:${web.options.outboundPort}`, service, plan);
}

/** The sum of a metric's samples whose labels include every `labels` pair (Prometheus text). */
function sample(metrics: string, name: string, labels: Readonly<Record<string, string>>): number {
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** A sidecar of `service` in front of `appPort`, joined to the mesh with a fresh join token. */
async function meshSidecar(
  name: string,
  service: string,
  appPort: number,
  labels: Record<string, string>,
): Promise<MeshSidecar> {
  const plane = cp as ControlPlane;
  const [outboundPort, inboundPort] = (await freePorts(2)) as [number, number];
  const started = await startMeshSidecar({
    controlPlane: plane.discoveryAddress,
    service,
    workload: name,
    labels,
    appPort,
    outboundPort,
    inboundPort,
    dataDir: join(root, 'sidecars', name),
    caBundle: plane.caBundle as string,
    token: await joinToken(plane, service),
  });
  sidecars.push(started);
  return started;
}

/** Like `Promise.all`, but settles every start first (so `afterAll` stops all that started). */
async function allStarted<T>(starts: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(starts);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/**
 * One `Unary` call with the request header `grpc-timeout: <value>`, sent with node:http2 (whose
 * header is exactly what we give it) through web's outbound listener to `echo`; resolves with the
 * deadline the server saw (ms).
 */
async function deadlineSeenByServer(value: string): Promise<number> {
  const session = connect(`http://127.0.0.1:${web.options.outboundPort}`);
  try {
    const body = await new Promise<Buffer>((resolve, reject) => {
      const message = Buffer.from('{}');
      const stream = session.request({
        ':method': 'POST',
        ':path': `${ECHO}/Unary`,
        ':authority': 'echo',
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': value,
      });
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => resolve(Buffer.concat(chunks)));
      stream.on('error', reject);
      // One length-prefixed message: no compression, 4-byte big-endian length, the bytes.
      stream.end(Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]));
    });
    return (JSON.parse(body.subarray(5).toString()) as { deadline_ms: number }).deadline_ms;
  } finally {
    session.close();
  }
}

/** How many endpoints web's sidecar knows for `cluster`. */
async function endpointCount(cluster: string): Promise<number> {
  const dump = await web.configDump();
  return dump.config?.endpoints.find((e) => e.clusterName === cluster)?.endpoints?.length ?? 0;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'weft-grpc-'));
  cp = await startControlPlane({ dataDir: join(root, 'control-plane'), tls: true });
  await writeFile(join(root, 'mesh.yaml'), MESH_YAML);
  const applied = await weft(['apply', '-f', join(root, 'mesh.yaml')], {
    env: { WEFT_SERVER: cp.server, WEFT_TOKEN: cp.token },
    cwd: root,
  });
  expect(applied.code, applied.stderr).toBe(0);

  [a, b, bad] = (await allStarted([
    startGrpcServer('a'),
    startGrpcServer('b'),
    startGrpcServer('bad', { failWith: 'UNAVAILABLE' }),
  ])) as [GrpcServer, GrpcServer, GrpcServer];
  servers.push(a, b, bad);
  const [noApp] = (await freePorts(1)) as [number];
  [web, echoV1, echoV2] = (await allStarted([
    meshSidecar('web', 'web', noApp, {}),
    meshSidecar('echo-v1', 'echo', a.port, { version: 'v1', flaky: 'yes' }),
    meshSidecar('echo-v2', 'echo', b.port, { version: 'v2' }),
    meshSidecar('bad', 'flaky', bad.port, { flaky: 'yes' }),
  ])) as [MeshSidecar, MeshSidecar, MeshSidecar, MeshSidecar];
  // Endpoints register after web's first snapshot: wait until web knows all of them.
  await pollUntil(
    'web to know the echo-v1, echo-v2 and flaky endpoints',
    async () => {
      const counts = await Promise.all([
        endpointCount('outbound|50051|echo-v1.default'),
        endpointCount('outbound|50051|echo-v2.default'),
        endpointCount(FLAKY_CLUSTER),
      ]);
      return counts[0] === 1 && counts[1] === 1 && counts[2] === 2 ? true : undefined;
    },
    { timeoutMs: 20_000 },
  );
}, 60_000);

afterAll(async () => {
  await stopAll(sidecars);
  await cp?.stop();
  await Promise.all(servers.map((s) => s.stop()));
  if (root !== '') await rm(root, { recursive: true, force: true });
}, 30_000);

describe('gRPC through two sidecars with mTLS (python grpcio client and servers)', () => {
  it('carries unary, server-streaming, client-streaming and bidi calls', async () => {
    const [unary, serverStream, clientStream, bidi] = await through('echo', [
      { kind: 'unary', method: `${ECHO}/Unary`, request: { hello: 'world' } },
      { kind: 'server_stream', method: `${ECHO}/ServerStream`, request: { count: 5 } },
      { kind: 'client_stream', method: `${ECHO}/ClientStream`, requests: [{ n: 1 }, { n: 2 }, { n: 3 }] },
      { kind: 'bidi', method: `${ECHO}/Bidi`, requests: [{ n: 'x' }, { n: 'y' }] },
    ]);
    expect(unary).toMatchObject({ code: 'OK', responses: [{ echo: { hello: 'world' } }] });
    expect(serverStream?.code).toBe('OK');
    expect(serverStream?.responses.map((r) => r.i)).toEqual([0, 1, 2, 3, 4]);
    expect(clientStream).toMatchObject({
      code: 'OK',
      responses: [{ count: 3, echo: [{ n: 1 }, { n: 2 }, { n: 3 }] }],
    });
    expect(bidi?.code).toBe('OK');
    expect(bidi?.responses.map((r) => r.echo)).toEqual([{ n: 'x' }, { n: 'y' }]);
    // The servers' sidecars saw these calls as gRPC over mTLS.
    const dest = await Promise.all([echoV1.metrics(), echoV2.metrics()]);
    const mtlsGrpc = dest
      .map((m) =>
        sample(m, 'weft_requests_total', {
          reporter: 'destination',
          request_protocol: 'grpc',
          connection_security_policy: 'mutual_tls',
        }),
      )
      .reduce((x, y) => x + y, 0);
    expect(mtlsGrpc).toBeGreaterThanOrEqual(4);
  });

  it('delivers statuses and custom trailing metadata intact, Trailers-Only or after messages', async () => {
    const [trailersOnly, afterMessages] = await through('echo', [
      {
        kind: 'unary',
        method: `${ECHO}/Fail`,
        request: { code: 'NOT_FOUND', message: 'no such thing ☕ 100%', trailers: { 'x-detail': 'abc' } },
      },
      {
        kind: 'server_stream',
        method: `${ECHO}/StreamFail`,
        request: { count: 2, code: 'DATA_LOSS', message: 'lost it', trailers: { 'x-detail': 'xyz' } },
      },
    ]);
    expect(trailersOnly).toMatchObject({ code: 'NOT_FOUND', details: 'no such thing ☕ 100%' });
    expect(trailersOnly?.trailing['x-detail']).toBe('abc');
    expect(afterMessages).toMatchObject({ code: 'DATA_LOSS', details: 'lost it' });
    expect(afterMessages?.responses).toHaveLength(2);
    expect(afterMessages?.trailing['x-detail']).toBe('xyz');
    // Both ways of carrying a status count alike in grpc_response_status.
    const metrics = await web.metrics();
    const labels = { reporter: 'source', request_protocol: 'grpc', response_code: '200' };
    expect(
      sample(metrics, 'weft_requests_total', { ...labels, grpc_response_status: '5' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(metrics, 'weft_requests_total', { ...labels, grpc_response_status: '15' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('enforces the client deadline (the server sees the cancellation) and passes the time left on', async () => {
    const [slow, quick] = await through('echo', [
      { kind: 'unary', method: `${ECHO}/Sleep`, request: { ms: 5000 }, timeout: 0.5 },
      { kind: 'unary', method: `${ECHO}/Unary`, request: {}, timeout: 5 },
    ]);
    const seen = JSON.stringify({ slow, quick });
    expect(slow?.code, seen).toBe('DEADLINE_EXCEEDED');
    expect(slow?.elapsedMs, seen).toBeGreaterThanOrEqual(450);
    expect(slow?.elapsedMs, seen).toBeLessThan(2000);
    await pollUntil(
      'the sleeping server to see its call cancelled',
      async () => (a.events.concat(b.events).some((e) => e.event === 'cancelled') ? true : undefined),
      { timeoutMs: 4000 },
    );
    // The server got a deadline. Not an exact one: grpc-core computes the grpc-timeout it sends
    // from a cached clock and rounds it up (to 10 ms here).
    expect(quick?.code, seen).toBe('OK');
    expect(quick?.responses[0]?.deadline_ms, seen).toBeGreaterThan(3000);
    expect(quick?.responses[0]?.deadline_ms, seen).toBeLessThanOrEqual(5100);
    // An exact `grpc-timeout: 3000m` (node:http2 as the client) reaches the server as the time left
    // after both sidecars: never more than asked (each hop counts whole milliseconds, so two hops
    // within the same millisecond pass 3000 on).
    const left = await deadlineSeenByServer('3000m');
    expect(left).toBeLessThanOrEqual(3000);
    expect(left).toBeGreaterThan(2500);
  });

  it('retries UNAVAILABLE from one endpoint on another: every call succeeds', async () => {
    const badBefore = bad.calls();
    const retriesBefore = sample(await web.metrics(), 'weft_retries_total', {
      cluster: FLAKY_CLUSTER,
      reason: 'grpc_unavailable',
    });
    const results = await through('flaky', [
      { kind: 'unary', method: `${ECHO}/Unary`, request: { k: 1 }, repeat: 20 },
    ]);
    expect(results.map((r) => r.code)).toEqual(Array(20).fill('OK'));
    expect(new Set(results.map((r) => r.responses[0]?.server))).toEqual(new Set(['a']));
    const badCalls = bad.calls() - badBefore;
    expect(badCalls).toBeGreaterThanOrEqual(1);
    const retries =
      sample(await web.metrics(), 'weft_retries_total', {
        cluster: FLAKY_CLUSTER,
        reason: 'grpc_unavailable',
      }) - retriesBefore;
    expect(retries).toBe(badCalls);
  });

  it('routes by GRPCRoute method and header match, and splits the rest 3:1 by weight', async () => {
    const results = await through('echo', [
      { kind: 'unary', method: `${ECHO}/Unary`, request: {}, metadata: { 'x-canary': 'true' }, repeat: 10 },
      { kind: 'unary', method: `${ECHO}/Unary`, request: {}, repeat: 80 },
    ]);
    expect(results.every((r) => r.code === 'OK')).toBe(true);
    const canary = results.slice(0, 10).map((r) => r.responses[0]?.server);
    expect(new Set(canary)).toEqual(new Set(['b']));
    const split = results.slice(10).map((r) => r.responses[0]?.server);
    const toA = split.filter((s) => s === 'a').length;
    // 3:1 over 80 calls: 60 expected on v1; [44, 76] is beyond four standard deviations.
    expect(toA).toBeGreaterThanOrEqual(44);
    expect(toA).toBeLessThanOrEqual(76);
    expect(split.filter((s) => s === 'b').length).toBe(80 - toA);
  });

  it('answers mesh errors as gRPC statuses with x-weft-error in the trailing metadata', async () => {
    const [noRoute] = await through('echo', [
      { kind: 'unary', method: '/weft.test.Other/Unary', request: {} },
    ]);
    expect(noRoute?.code).toBe('UNIMPLEMENTED');
    expect(noRoute?.trailing['x-weft-error']).toBe('NO_ROUTE');
    const [noEndpoint] = await through('nobody', [{ kind: 'unary', method: `${ECHO}/Unary`, request: {} }]);
    expect(noEndpoint?.code).toBe('UNAVAILABLE');
    expect(noEndpoint?.trailing['x-weft-error']).toBe('NO_HEALTHY_UPSTREAM');
    expect(noEndpoint?.details).toContain('no healthy endpoint');
  });
});
