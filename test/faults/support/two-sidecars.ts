/**
 * The mesh most fault scenarios run on: `weft control-plane` (embedded store in a temp dir, or
 * the etcd cluster given, with `--tls` unless asked otherwise), Services `web` and `api`, and two
 * dynamic sidecars joined with join tokens: `web` (the test process is its app's client and sends
 * `Host: api` to web's outbound listener) ══mTLS══▶ `api` ─▶ the api app (200 with a small JSON
 * body). Everything is a real process on loopback, stopped by pid in `stop()`; the temp dir is
 * removed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
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

export async function startApp(name: string): Promise<App> {
  const body = JSON.stringify({ service: name });
  const app = { count: 0 } as { count: number };
  const server = createServer((req, res) => {
    app.count++;
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
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
      }),
  });
}

export interface TwoSidecarMesh {
  readonly root: string;
  cp: ControlPlane;
  readonly web: MeshSidecar;
  readonly api: MeshSidecar;
  readonly apiApp: App;
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
}

export async function startTwoSidecarMesh(options: MeshOptions = {}): Promise<TwoSidecarMesh> {
  const root = await mkdtemp(join(tmpdir(), 'weft-faults-'));
  const tls = options.tls ?? true;
  const started: { stop(): Promise<unknown> }[] = [];
  const apps: App[] = [];
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
      await stopAll(started);
      await cp?.stop();
      await Promise.all(apps.map((a) => a.close()));
      await rm(root, { recursive: true, force: true });
    },
  };
  try {
    cp = await startControlPlane(cpOptions);
    (mesh as unknown as { cp: ControlPlane }).cp = cp;
    await mesh.apply(SERVICES_YAML);
    const [webApp, apiApp] = await Promise.all([startApp('web'), startApp('api')]);
    apps.push(webApp, apiApp);
    const sidecar = async (service: string, appPort: number): Promise<MeshSidecar> => {
      const plane = cp as ControlPlane;
      const [outboundPort, inboundPort] = (await freePorts(2)) as [number, number];
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
    return Object.assign(mesh, { cp, web, api, apiApp }) as TwoSidecarMesh;
  } catch (err) {
    await mesh.stop();
    throw err;
  }
}

/** The `version` each proxy runs (admin /config_dump). */
export async function runningVersion(s: MeshSidecar): Promise<string> {
  return (await s.configDump()).version;
}
