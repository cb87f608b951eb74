/**
 * TCP services through the mesh (issue 6): a real `weft control-plane --tls` and real sidecars;
 * Services with `appProtocol: tcp`; the client sidecar declares Consul-style upstream binds
 * (`--upstream echo:<port>=<local>`, `--upstream store-db:<port>=<local>`), gets one TCP listener per
 * bind from the control plane, and pipes each connection over mTLS (ALPN `weft-tcp`, port in SNI)
 * to the peer sidecar, which pipes it to its app on 127.0.0.1:<port>.
 *
 * - an echo (256 KiB) with half-close: the app answers only after the client's FIN;
 * - a real Redis session (Debian `redis-server`, `redis-cli`): SET/GET/INCR through the mesh;
 * - `weft_tcp_*` metrics on both sides with the SPIFFE identities and `mutual_tls`;
 * - the idle timeout from a BackendTrafficPolicy (`timeout.tcp.idleTimeout: 1s`);
 * - AuthorizationPolicy on a TCP Service: an ALLOW policy naming another principal closes web's
 *   connections (RBAC_DENIED at the destination).
 * Every process is stopped by pid in `afterAll`; ports are allocated dynamically.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ControlPlane,
  freePorts,
  joinToken,
  type MeshSidecar,
  pollUntil,
  startControlPlane,
  startMeshSidecar,
  stopAll,
  type WeftResult,
  weft,
} from '../support/mesh.ts';
import { type EchoServer, pattern, startEchoServer, tcpExchange } from '../support/tcp.ts';

const spiffeIdOf = (service: string): string => `spiffe://cluster.local/ns/default/sa/${service}`;

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

/** Runs `redis-cli -p port` with `commands` on stdin (one connection); resolves with its output. */
function redisCli(port: number, commands: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      'redis-cli',
      ['-h', '127.0.0.1', '-p', String(port)],
      { timeout: 10_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(commands);
  });
}

/** `redis-server` on 127.0.0.1:`port`, no persistence; resolves once it accepts connections. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server not ready:\n${output}`)), 10_000);
    child.stdout?.on('data', (c: Buffer) => {
      output += c.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}):\n${output}`));
    });
  });
  return child;
}

let root = '';
let cp: ControlPlane | undefined;
let env: NodeJS.ProcessEnv = {};
let echo: EchoServer | undefined;
let redis: ChildProcess | undefined;
const sidecars: MeshSidecar[] = [];
let web: MeshSidecar;
let echoSidecar: MeshSidecar;
let storeSidecar: MeshSidecar;
let echoLocal = 0;
let redisLocal = 0;

function cli(args: readonly string[]): Promise<WeftResult> {
  return weft(args, { env, cwd: root });
}

async function meshSidecar(service: string, appPort: number, extraArgs: string[] = []): Promise<MeshSidecar> {
  const plane = cp as ControlPlane;
  const [outboundPort, inboundPort] = (await freePorts(2)) as [number, number];
  const started = await startMeshSidecar({
    controlPlane: plane.discoveryAddress,
    service,
    workload: `${service}-v1`,
    appPort,
    outboundPort,
    inboundPort,
    dataDir: join(root, 'sidecars', service),
    caBundle: plane.caBundle as string,
    token: await joinToken(plane, service),
    extraArgs,
  });
  sidecars.push(started);
  return started;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'weft-tcp-mesh-'));
  const [redisPort, webApp, l1, l2] = (await freePorts(4)) as [number, number, number, number];
  echoLocal = l1;
  redisLocal = l2;
  echo = await startEchoServer('after-end');
  redis = await startRedis(redisPort);
  cp = await startControlPlane({ dataDir: join(root, 'control-plane'), tls: true });
  env = { WEFT_SERVER: cp.server, WEFT_TOKEN: cp.token };
  await writeFile(
    join(root, 'services.yaml'),
    `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: echo }
spec:
  ports: [{ name: echo, port: ${echo.port}, appProtocol: tcp }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: store-db }
spec:
  ports: [{ name: redis, port: ${redisPort}, appProtocol: tcp }]
`,
  );
  const applied = await cli(['apply', '-f', join(root, 'services.yaml')]);
  expect(applied.code, applied.stderr).toBe(0);
  const started = await Promise.allSettled([
    meshSidecar('web', webApp, [
      '--upstream',
      `echo:${echo.port}=${echoLocal}`,
      '--upstream',
      `store-db.default:${redisPort}=${redisLocal}`,
    ]),
    meshSidecar('echo', echo.port),
    meshSidecar('store-db', redisPort),
  ]);
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  [web, echoSidecar, storeSidecar] = started.map((r) => (r as PromiseFulfilledResult<MeshSidecar>).value) as [
    MeshSidecar,
    MeshSidecar,
    MeshSidecar,
  ];
  // The peers' endpoints reach web after its first snapshot: wait until both binds answer.
  await pollUntil(
    'the echo bind to answer through the mesh',
    async () =>
      (await tcpExchange(echoLocal, Buffer.from('warmup'))).data.toString() === 'warmup' ? true : undefined,
    { timeoutMs: 20_000 },
  );
  await pollUntil(
    'the store-db bind to answer PONG',
    async () => ((await redisCli(redisLocal, 'PING\n')).stdout.trim() === 'PONG' ? true : undefined),
    { timeoutMs: 20_000 },
  );
}, 60_000);

afterAll(async () => {
  await stopAll(sidecars);
  await cp?.stop();
  await echo?.close();
  if (redis !== undefined && redis.exitCode === null) {
    const exited = new Promise((resolve) => redis?.once('exit', resolve));
    redis.kill('SIGTERM');
    await exited;
  }
  if (root !== '') await rm(root, { recursive: true, force: true });
}, 30_000);

describe('TCP services through two sidecars with mTLS', () => {
  it('echoes 256 KiB after the client half-closed: the FIN crosses both sidecars, the reply still flows', async () => {
    const payload = pattern(256 * 1024);
    const got = await tcpExchange(echoLocal, payload);
    expect(got.ended).toBe(true);
    expect(got.data.length).toBe(payload.length);
    expect(got.data.equals(payload)).toBe(true);
  });

  it('carries a real Redis session (SET, GET, INCR) through the mesh', async () => {
    const session = await redisCli(
      redisLocal,
      'SET greeting hello\nGET greeting\nDEL n\nINCR n\nINCR n\nINCR n\n',
    );
    expect(session.code, session.stderr).toBe(0);
    expect(session.stdout.trim().split('\n')).toEqual([
      'OK',
      'hello',
      expect.stringMatching(/^[01]$/),
      '1',
      '2',
      '3',
    ]);
  });

  it('counts connections and bytes on both sides with the SPIFFE identities (weft_tcp_*)', async () => {
    const payload = pattern(10_000);
    const destination = `outbound|${echo?.port}|echo.default`;
    const before = sample(await web.metrics(), 'weft_tcp_received_bytes_total', {
      destination_service: destination,
    });
    const got = await tcpExchange(echoLocal, payload);
    expect(got.data.equals(payload)).toBe(true);
    const source = await pollUntil('the source side to count the bytes', async () => {
      const m = await web.metrics();
      const n = sample(m, 'weft_tcp_received_bytes_total', { destination_service: destination });
      return n - before === payload.length ? m : undefined;
    });
    const sourceLabels = {
      reporter: 'source',
      source_workload: 'web-v1',
      destination_service: destination,
      destination_principal: spiffeIdOf('echo'),
      connection_security_policy: 'mutual_tls',
      response_flags: '-',
    };
    expect(sample(source, 'weft_tcp_connections_opened_total', sourceLabels)).toBeGreaterThanOrEqual(3);
    expect(sample(source, 'weft_tcp_connections_closed_total', sourceLabels)).toBeGreaterThanOrEqual(3);
    expect(sample(source, 'weft_tcp_sent_bytes_total', sourceLabels)).toBeGreaterThanOrEqual(
      256 * 1024 + payload.length,
    );
    const dest = await pollUntil('the destination side to count the connection', async () => {
      const m = await echoSidecar.metrics();
      const labels = { reporter: 'destination', source_principal: spiffeIdOf('web') };
      return sample(m, 'weft_tcp_connections_closed_total', labels) >= 3 ? m : undefined;
    });
    const destLabels = {
      reporter: 'destination',
      source_principal: spiffeIdOf('web'),
      destination_service: 'echo',
      destination_workload: 'echo-v1',
      connection_security_policy: 'mutual_tls',
    };
    expect(sample(dest, 'weft_tcp_connections_opened_total', destLabels)).toBeGreaterThanOrEqual(3);
    expect(sample(dest, 'weft_tcp_received_bytes_total', destLabels)).toBeGreaterThanOrEqual(
      256 * 1024 + payload.length,
    );
  });

  it('closes an idle connection after the BackendTrafficPolicy timeout.tcp.idleTimeout', async () => {
    await writeFile(
      join(root, 'idle.yaml'),
      `
apiVersion: weft.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: { name: echo-idle }
spec:
  targetRefs: [{ group: "", kind: Service, name: echo }]
  timeout: { tcp: { idleTimeout: 1s } }
`,
    );
    const applied = await cli(['apply', '-f', join(root, 'idle.yaml'), '--wait']);
    expect(applied.code, applied.stderr).toBe(0);
    await pollUntil('web to take the idle timeout', async () => {
      const dump = (await web.configDump()) as unknown as {
        config: { listeners: { name: string; tcpProxy?: { idleTimeoutMs?: number } }[] };
      };
      const l = dump.config.listeners.find((x) => x.name === `outbound-tcp|${echoLocal}`);
      return l?.tcpProxy?.idleTimeoutMs === 1000 ? true : undefined;
    });
    // The connection says something, then stays open and silent: both sidecars let it go after 1 s.
    const got = await tcpExchange(echoLocal, Buffer.from('hello'), { end: false, timeoutMs: 10_000 });
    expect(got.data.length).toBe(0); // the echo app answers only after a FIN, which never came
    expect(got.elapsedMs).toBeGreaterThanOrEqual(950);
    expect(got.elapsedMs).toBeLessThan(8000);
  });

  it('applies AuthorizationPolicy principals to TCP connections (RBAC_DENIED closes them)', async () => {
    await writeFile(
      join(root, 'policy.yaml'),
      `
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: store-db-allow-batch }
spec:
  targetRefs: [{ kind: Service, name: store-db }]
  action: ALLOW
  rules:
    - from: [{ source: { principals: [cluster.local/ns/default/sa/batch] } }]
`,
    );
    const applied = await cli(['apply', '-f', join(root, 'policy.yaml'), '--wait']);
    expect(applied.code, applied.stderr).toBe(0);
    await pollUntil(
      'web to be refused by store-db',
      async () => ((await redisCli(redisLocal, 'PING\n')).stdout.trim() === 'PONG' ? undefined : true),
      { timeoutMs: 15_000 },
    );
    const denied = await redisCli(redisLocal, 'GET greeting\n');
    expect(denied.stdout.trim()).not.toBe('hello');
    const m = await storeSidecar.metrics();
    expect(
      sample(m, 'weft_tcp_connections_closed_total', {
        reporter: 'destination',
        source_principal: spiffeIdOf('web'),
        response_flags: 'RBAC_DENIED',
      }),
    ).toBeGreaterThanOrEqual(1);
  });
});
