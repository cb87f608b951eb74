/**
 * The mesh most fault scenarios run on: `weft control-plane` (embedded store in a temp dir, or
 * the etcd cluster given, with `--tls` unless asked otherwise), Services `web` and `api`, and two
 * dynamic sidecars joined with join tokens: `web` (the test process is its app's client and sends
 * `Host: api` to web's outbound listener) ══mTLS══▶ `api` ─▶ the api app (200 with a small JSON
 * body). With `gateway: true` an edge gateway is in front (the soak's path): `weft gateway
 * --gateway edge` with an HTTP listener whose HTTPRoute sends everything to web, and the web app
 * calls api through web's outbound listener for every request, so a request crosses
 * gateway ══mTLS══▶ web sidecar ─▶ web app ─▶ web sidecar ══mTLS══▶ api sidecar ─▶ api app.
 * Everything is a real process on loopback, stopped by pid in `stop()`; the temp dir is removed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import {
  type ControlPlane,
  freePorts,
  joinToken,
  type MeshSidecar,
  pollUntil,
  startControlPlane,
  startMeshSidecar,
  stopAll,
  WeftProcess,
  type WeftResult,
  weft,
} from '../../support/mesh.ts';

export const SERVICES_YAML = `
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
  ports: [{ name: http, port: 80 }]
`;

/** The edge Gateway of the `gateway: true` mesh: HTTP on port 80, every path to web. */
export const GATEWAY_YAML = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: edge }
spec:
  gatewayClassName: weft
  listeners:
    - { name: http, port: 80, protocol: HTTP }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: edge-to-web }
spec:
  parentRefs: [{ name: edge, sectionName: http }]
  rules:
    - backendRefs: [{ name: web, port: 80 }]
`;

/** An HTTPRoute on Service api whose request timeout is `n` seconds: a real change per `n`. */
export function apiRoute(n: number): string {
  return `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: api-route }
spec:
  parentRefs: [{ group: "", kind: Service, name: api, port: 80 }]
  rules:
    - backendRefs: [{ name: api, port: 80 }]
      timeouts: { request: ${n}s }
`;
}

/** A local app answering 200 `{"service": name}`; counts requests (nothing else is kept). */
export interface App {
  readonly port: number;
  readonly server: Server;
  count: number;
  close(): Promise<void>;
}

/**
 * Starts an app. With `next`, every request is first sent on to `next.host` through the local
 * sidecar's outbound listener (`next.port`) and answered with that call's
 * status; without, it answers 200 at once.
 */
export async function startApp(name: string, next?: { host: string; port: number }): Promise<App> {
  const body = JSON.stringify({ service: name });
  const app = { count: 0 } as { count: number };
  const agent = new Agent({ connections: 64 });
  const server = createServer((req, res) => {
    app.count++;
    req.resume();
    req.on('end', () => {
      const answer = (status: number) => {
        res.writeHead(status, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
      };
      if (next === undefined) return answer(200);
      request(`http://127.0.0.1:${next.port}${req.url ?? '/'}`, {
        headers: { host: next.host },
        dispatcher: agent,
      })
        .then(async (r) => {
          await r.body.dump();
          answer(r.statusCode);
        })
        .catch(() => answer(502));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(app, {
    port: (server.address() as AddressInfo).port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }).then(() => agent.close()),
  });
}

export interface TwoSidecarMesh {
  readonly root: string;
  cp: ControlPlane;
  readonly web: MeshSidecar;
  readonly api: MeshSidecar;
  readonly apiApp: App;
  /** With `gateway: true`: the `weft gateway` process and `http://127.0.0.1:<port>` of its HTTP listener. */
  readonly gateway?: { readonly process: WeftProcess; readonly url: string; readonly adminUrl: string };
  /** `weft args` against the control plane (server and admin token in the environment). */
  cli(args: readonly string[]): Promise<WeftResult>;
  /** Writes `yaml` to a file and runs `weft apply -f` on it; the new store revision. */
  apply(yaml: string): Promise<number>;
  /** Restarts the control plane on the same data dir and ports (after a kill). */
  restartControlPlane(): Promise<ControlPlane>;
  stop(): Promise<void>;
}

export interface MeshOptions {
  /** `--tls` (default true): mTLS between the sidecars, certificates from the mesh CA. */
  readonly tls?: boolean;
  /** More control-plane flags (e.g. `--store etcd --etcd-endpoints ...`). */
  readonly controlPlaneArgs?: readonly string[];
  /** An edge gateway in front of web, and web's app calling api (default false). */
  readonly gateway?: boolean;
}

export async function startTwoSidecarMesh(options: MeshOptions = {}): Promise<TwoSidecarMesh> {
  const root = await mkdtemp(join(tmpdir(), 'weft-faults-'));
  const tls = options.tls ?? true;
  const started: { stop(): Promise<unknown> }[] = [];
  const apps: App[] = [];
  let gateway: { process: WeftProcess; url: string; adminUrl: string } | undefined;
  let cp: ControlPlane | undefined;
  const cpOptions = {
    dataDir: join(root, 'control-plane'),
    tls,
    ...(options.controlPlaneArgs !== undefined && { extraArgs: options.controlPlaneArgs }),
  };
  let files = 0;
  const mesh = {
    root,
    cli: (args: readonly string[]) =>
      weft(args, {
        env: { WEFT_SERVER: (cp as ControlPlane).server, WEFT_TOKEN: (cp as ControlPlane).token },
        cwd: root,
      }),
    async apply(yaml: string): Promise<number> {
      const file = join(root, `apply-${++files}.yaml`);
      await writeFile(file, yaml);
      const result = await mesh.cli(['apply', '-f', file]);
      if (result.code !== 0) throw new Error(`weft apply failed (${result.code}): ${result.stderr}`);
      return Number(/^revision (\d+)$/m.exec(result.stdout)?.[1] ?? Number.NaN);
    },
    async restartControlPlane(): Promise<ControlPlane> {
      const old = cp as ControlPlane;
      cp = await startControlPlane({
        ...cpOptions,
        grpcPort: old.grpcPort,
        adminPort: old.adminPort,
        monitoringPort: old.monitoringPort,
      });
      (mesh as unknown as { cp: ControlPlane }).cp = cp;
      return cp;
    },
    async stop(): Promise<void> {
      await gateway?.process.stop();
      await stopAll(started);
      await cp?.stop();
      await Promise.all(apps.map((a) => a.close()));
      await rm(root, { recursive: true, force: true });
    },
  };
  try {
    cp = await startControlPlane(cpOptions);
    (mesh as unknown as { cp: ControlPlane }).cp = cp;
    await mesh.apply(options.gateway === true ? `${SERVICES_YAML}---${GATEWAY_YAML}` : SERVICES_YAML);
    const [webOutboundPort, webInboundPort, apiOutboundPort, apiInboundPort] = (await freePorts(4)) as [
      number,
      number,
      number,
      number,
    ];
    const [webApp, apiApp] = await Promise.all([
      startApp('web', options.gateway === true ? { host: 'api', port: webOutboundPort } : undefined),
      startApp('api'),
    ]);
    apps.push(webApp, apiApp);
    const sidecar = async (service: string, appPort: number): Promise<MeshSidecar> => {
      const plane = cp as ControlPlane;
      const [outboundPort, inboundPort] =
        service === 'web' ? [webOutboundPort, webInboundPort] : [apiOutboundPort, apiInboundPort];
      const s = await startMeshSidecar({
        controlPlane: plane.discoveryAddress,
        service,
        workload: `${service}-v1`,
        labels: { version: 'v1' },
        appPort,
        outboundPort,
        inboundPort,
        dataDir: join(root, 'sidecars', service),
        ...(tls && { caBundle: plane.caBundle as string, token: await joinToken(plane, service) }),
      });
      started.push(s);
      return s;
    };
    const [web, api] = await Promise.all([sidecar('web', webApp.port), sidecar('api', apiApp.port)]);
    await pollUntil(
      'web → api to answer 200',
      async () => {
        const res = await request(`${web.outboundUrl}/warmup`, { headers: { host: 'api' } });
        await res.body.dump();
        return res.statusCode === 200 ? true : undefined;
      },
      { timeoutMs: 30_000 },
    );
    if (options.gateway === true) gateway = await startGateway(cp, root);
    return Object.assign(mesh, { cp, web, api, apiApp, gateway }) as TwoSidecarMesh;
  } catch (err) {
    await mesh.stop();
    throw err;
  }
}

/**
 * Starts `weft gateway --gateway edge` (its own join token: SPIFFE ID .../sa/edge), learns its
 * HTTP listener's port from its `listener ready` log line, and waits until a request through it
 * answers 200 (web's endpoint can reach the gateway a snapshot after its first).
 */
async function startGateway(
  cp: ControlPlane,
  root: string,
): Promise<{ process: WeftProcess; url: string; adminUrl: string }> {
  const proc = new WeftProcess('gateway edge', [
    ...['gateway', '--control-plane', cp.discoveryAddress, '--gateway', 'edge', '--port', '80=0'],
    ...['--admin-port', '0', '--data-dir', join(root, 'gateways'), '--drain-delay', '0'],
    ...['--ca-bundle', cp.caBundle as string, '--token', await joinToken(cp, 'edge')],
  ]);
  try {
    const admin = await proc.waitForLog('"admin ready"', (e) => e.msg === 'admin ready');
    await proc.waitForLog('"gateway ready"', (e) => e.msg === 'gateway ready', 20_000);
    const port = proc.logs.find((e) => e.msg === 'listener ready' && e.name === 'gateway-80')?.port;
    if (typeof port !== 'number') throw new Error(`no gateway-80 listener\n${proc.describe()}`);
    const url = `http://127.0.0.1:${port}`;
    await pollUntil(
      'gateway → web → api to answer 200',
      async () => {
        const res = await request(`${url}/warmup`);
        await res.body.dump();
        return res.statusCode === 200 ? true : undefined;
      },
      { timeoutMs: 30_000 },
    );
    return { process: proc, url, adminUrl: `http://127.0.0.1:${admin.port as number}` };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/** The `version` each proxy runs (admin /config_dump). */
export async function runningVersion(s: MeshSidecar): Promise<string> {
  return (await s.configDump()).version;
}
