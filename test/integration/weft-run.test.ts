/**
 * `weft run` beside plain processes, live: a real control plane with the mesh CA; a Node service
 * (test/fixtures/run/alpha.mjs) and a Python http.server service (beta.py, Debian's
 * /usr/bin/python3) each started with `weft run`, calling each other by name through their
 * sidecars (HTTP_PROXY → outbound → mTLS → inbound → app). Stopping one deregisters it: its
 * endpoint leaves its peer's config and `weft proxy-status`. A batch command's exit code and
 * stdout pass through.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConfigDump,
  type ControlPlane,
  cleanEnv,
  freePorts,
  joinToken,
  pollUntil,
  startControlPlane,
  WeftProcess,
  weft,
} from '../support/mesh.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/run/', import.meta.url));
const PYTHON = '/usr/bin/python3';

const SERVICES = `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: alpha }
spec: { ports: [{ name: http, port: 80 }] }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: beta }
spec: { ports: [{ name: http, port: 80 }] }
`;

interface Ports {
  app: number;
  inbound: number;
  outbound: number;
  admin: number;
}

let dir: string;
let cp: ControlPlane;
const running: WeftProcess[] = [];

async function tokenFile(service: string): Promise<string> {
  const file = join(dir, `${service}.token`);
  await writeFile(file, `${await joinToken(cp, service)}\n`, { mode: 0o600 });
  return file;
}

function runArgs(service: string, ports: Ports, token: string): string[] {
  return [
    'run',
    '--service',
    service,
    '--app-port',
    String(ports.app),
    '--inbound-port',
    String(ports.inbound),
    '--outbound-port',
    String(ports.outbound),
    '--admin-port',
    String(ports.admin),
    '--control-plane',
    cp.discoveryAddress,
    '--ca-bundle',
    cp.caBundle as string,
    '--token-file',
    token,
    '--data-dir',
    join(dir, 'sidecars'),
    '--drain-delay',
    '200',
  ];
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await request(url);
  return { status: res.statusCode, body: await res.body.text() };
}

async function endpointsOf(adminPort: number, service: string): Promise<number> {
  const res = await request(`http://127.0.0.1:${adminPort}/config_dump`);
  const dump = (await res.body.json()) as ConfigDump;
  const cla = dump.config?.endpoints.find((e) => e.clusterName === `outbound|80|${service}.default`);
  return cla?.endpoints?.length ?? 0;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-run-'));
  cp = await startControlPlane({ dataDir: join(dir, 'cp'), tls: true });
  const manifest = join(dir, 'services.yaml');
  await writeFile(manifest, SERVICES);
  const applied = await weft(['apply', '-f', manifest, '--server', cp.server, '--token', cp.token]);
  expect(applied.code, applied.stderr).toBe(0);
});

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await cp?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('weft run', () => {
  it('runs a Node and a Python service that call each other by name with mTLS; stopping one deregisters it', async () => {
    const [a1, a2, a3, a4, b1, b2, b3, b4] = (await freePorts(8)) as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const alphaPorts = { app: a1, inbound: a2, outbound: a3, admin: a4 };
    const betaPorts = { app: b1, inbound: b2, outbound: b3, admin: b4 };
    const alpha = new WeftProcess(
      'run-alpha',
      [
        ...runArgs('alpha', alphaPorts, await tokenFile('alpha')),
        '--',
        process.execPath,
        join(FIXTURES, 'alpha.mjs'),
        String(a1),
      ],
      { env: cleanEnv() },
    );
    running.push(alpha);
    const beta = new WeftProcess(
      'run-beta',
      [
        ...runArgs('beta', betaPorts, await tokenFile('beta')),
        '--',
        PYTHON,
        join(FIXTURES, 'beta.py'),
        String(b1),
      ],
      { env: cleanEnv() },
    );
    running.push(beta);

    // Node → beta and Python → alpha, by name, through both sidecars.
    const fromAlpha = await pollUntil(
      'alpha to reach beta through the mesh',
      async () => {
        const r = await get(`http://127.0.0.1:${a1}/call?to=beta`).catch(() => undefined);
        return r?.status === 200 ? r : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(fromAlpha.body).toBe('alpha>beta');
    const fromBeta = await pollUntil(
      'beta to reach alpha through the mesh',
      async () => {
        const r = await get(`http://127.0.0.1:${b1}/call?to=alpha`).catch(() => undefined);
        return r?.status === 200 ? r : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(fromBeta.body).toBe('beta>alpha');

    // Both hops were mutual TLS, with the caller's SPIFFE identity.
    const betaMetrics = (await get(`http://127.0.0.1:${b4}/metrics`)).body;
    expect(betaMetrics).toMatch(
      /weft_requests_total\{[^}]*reporter="destination"[^}]*source_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/alpha"[^}]*connection_security_policy="mutual_tls"/,
    );
    const alphaMetrics = (await get(`http://127.0.0.1:${a4}/metrics`)).body;
    expect(alphaMetrics).toMatch(
      /weft_requests_total\{[^}]*reporter="destination"[^}]*source_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/beta"[^}]*connection_security_policy="mutual_tls"/,
    );

    // The proxies are registered; stopping beta's `weft run` deregisters it.
    const listed = async () => {
      const ps = await weft(['proxy-status', '-o', 'json', '--server', cp.server, '--token', cp.token]);
      return (JSON.parse(ps.stdout) as { items: { proxyId: string; connected?: boolean }[] }).items;
    };
    expect((await listed()).map((p) => p.proxyId).sort()).toEqual([
      `alpha-${a2}.default`,
      `beta-${b2}.default`,
    ]);
    expect(await endpointsOf(a4, 'beta')).toBe(1);
    const exit = await beta.stop();
    expect(exit.code).toBe(143); // the app's exit status (SIGTERM → 128 + 15)
    await pollUntil(
      'beta to leave alpha’s endpoints',
      async () => ((await endpointsOf(a4, 'beta')) === 0 ? true : undefined),
      {
        timeoutMs: 15_000,
      },
    );
    await pollUntil(
      'beta to leave proxy-status',
      async () => {
        const items = await listed();
        const b = items.find((p) => p.proxyId === `beta-${b2}.default`);
        return b === undefined || b.connected === false ? true : undefined;
      },
      { timeoutMs: 15_000 },
    );
    // The beta app and its sidecar are gone.
    await expect(request(`http://127.0.0.1:${b1}/hello`)).rejects.toThrow();
    await expect(request(`http://127.0.0.1:${b4}/ready`)).rejects.toThrow();
  });

  it('passes a batch command’s exit code and stdout through', async () => {
    const [app, inbound, outbound, admin] = (await freePorts(4)) as [number, number, number, number];
    // The token given with --token reaches the sidecar but not the app.
    const args = runArgs('alpha', { app, inbound, outbound, admin }, 'unused');
    args.splice(args.indexOf('--token-file'), 2, '--token', await joinToken(cp, 'alpha'));
    const r = await weft(
      [
        ...args,
        '--',
        'sh',
        '-c',
        'echo "proxy=$HTTP_PROXY node=$NODE_USE_ENV_PROXY token=$WEFT_JOIN_TOKEN."; exit 7',
      ],
      { timeoutMs: 30_000 },
    );
    expect(r.code, r.stderr).toBe(7);
    expect(r.stdout).toBe(`proxy=http://127.0.0.1:${outbound} node=1 token=.\n`);
    expect(r.stderr).toContain('"sidecar ready"');
    expect(r.stderr).toContain('"stopped"');
  });

  it('exits 1 when the sidecar cannot become ready', async () => {
    const [app, inbound, outbound, admin, closed] = (await freePorts(5)) as [
      number,
      number,
      number,
      number,
      number,
    ];
    const r = await weft([
      'run',
      '--service',
      'alpha',
      '--app-port',
      String(app),
      '--inbound-port',
      String(inbound),
      '--outbound-port',
      String(outbound),
      '--admin-port',
      String(admin),
      '--control-plane',
      `127.0.0.1:${closed}`,
      '--data-dir',
      join(dir, 'nowhere'),
      '--ready-timeout',
      '1500',
      '--',
      'sh',
      '-c',
      'echo should-not-run',
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('weft run: the sidecar was not ready within 1500 ms');
  });
});
