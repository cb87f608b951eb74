/**
 * mTLS between real `weft sidecar --config … --cert … --key …` processes on loopback, checked with
 * clients no one here wrote: `openssl s_client` and curl.
 *
 *   test ─▶ web (outbound, plain) ══mTLS══▶ api (inbound STRICT) ─▶ app
 *                                 ══mTLS══▶ billing (inbound STRICT, wrong identity for "api")
 *   curl / s_client ─▶ api (STRICT), perm (PERMISSIVE) ─▶ app
 *
 * Certificates: test/support/pki.ts (a mesh root and leaves with spiffe:// URI SANs, plus an
 * unrelated CA). Rotation is triggered the static-mode way: new cert/key files, then SIGHUP.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bootstrap, Listener } from '../../sidecar/proxy/config/types.ts';
import { curl } from '../support/curl.ts';
import { createCa, spiffeIdOf, type TestCa, writeCertKey } from '../support/pki.ts';
import { type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';
import { configFor, RawProxy, startServer } from './discovery-helpers.ts';

const TD = 'test.local';
const ID = {
  api: spiffeIdOf(TD, 'api'),
  web: spiffeIdOf(TD, 'web'),
  perm: spiffeIdOf(TD, 'perm'),
  billing: spiffeIdOf(TD, 'billing'),
  curl: spiffeIdOf(TD, 'curl'),
};

let dir = '';
let mesh: TestCa;
let other: TestCa;
let app: Upstream;
let rootFile = '';
const files: Record<string, { cert: string; key: string }> = {};
const running: RunningSidecar[] = [];
let api: RunningSidecar;
let perm: RunningSidecar;
let billing: RunningSidecar;
let web: RunningSidecar;

/** An inbound-only sidecar in `mode` forwarding everything to the app. */
function inboundBootstrap(service: string, mode: 'STRICT' | 'PERMISSIVE'): Bootstrap {
  const listener: Listener = {
    name: 'inbound',
    address: '127.0.0.1',
    port: 0,
    direction: 'INBOUND',
    routeConfigName: 'inbound',
    tls: { mode },
  };
  return {
    node: { id: `${service}-1`, service, namespace: 'default', workload: `${service}-v1` },
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [listener],
    routes: [
      {
        name: 'inbound',
        virtualHosts: [
          { name: 'in', domains: ['*'], routes: [{ name: 'in', route: { clusters: [{ name: 'app' }] } }] },
        ],
      },
    ],
    clusters: [{ name: 'app' }],
    endpoints: [{ clusterName: 'app', endpoints: [{ address: '127.0.0.1', port: app.port }] }],
    trustBundle: { trustDomain: TD, rootsPem: [mesh.certPem] },
  };
}

/** The client sidecar: host `api` → api's inbound, host `imposter` → billing's inbound, both expecting `api`. */
function outboundBootstrap(apiPort: number, imposterPort: number): Bootstrap {
  // Default pool settings: idle upstream connections close after 4 s, before the peer's 5 s drain.
  const cluster = (name: string) => ({ name, tls: { enabled: true } });
  return {
    node: { id: 'web-1', service: 'web', namespace: 'default', workload: 'web-v1' },
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [
      { name: 'outbound', address: '127.0.0.1', port: 0, direction: 'OUTBOUND', routeConfigName: 'out' },
    ],
    routes: [
      {
        name: 'out',
        virtualHosts: [
          {
            name: 'api',
            domains: ['api'],
            routes: [{ name: 'api', route: { clusters: [{ name: 'api' }] } }],
          },
          {
            name: 'imposter',
            domains: ['imposter'],
            routes: [{ name: 'imposter', route: { clusters: [{ name: 'imposter' }] } }],
          },
        ],
      },
    ],
    clusters: [cluster('api'), cluster('imposter')],
    endpoints: [
      { clusterName: 'api', endpoints: [{ address: '127.0.0.1', port: apiPort, identity: ID.api }] },
      {
        clusterName: 'imposter',
        endpoints: [{ address: '127.0.0.1', port: imposterPort, identity: ID.api }],
      },
    ],
    trustBundle: { trustDomain: TD, rootsPem: [mesh.certPem] },
  };
}

/** Writes a fresh leaf for `spiffeId` to the `name` files (same paths each time). */
async function issue(
  name: string,
  spiffeId: string,
  ca: TestCa = mesh,
): Promise<{ cert: string; key: string }> {
  files[name] = await writeCertKey(dir, name, ca.leaf(spiffeId));
  return files[name];
}

function sidecarArgs(name: string): string[] {
  const f = files[name];
  if (f === undefined) throw new Error(`no certificate files for ${name}`);
  return ['--cert', f.cert, '--key', f.key];
}

/**
 * `openssl s_client` to `port` sending one request on stdin; resolves with its stdout, stderr and
 * exit code once it exits (the server closes after the response, or refuses the connection).
 */
function sClient(
  port: number,
  creds?: { cert: string; key: string },
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', rootFile, '-quiet'];
    if (creds !== undefined) args.push('-cert', creds.cert, '-key', creds.key);
    const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.write('GET /hello HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n');
  });
}

/** The value of a counter sample in Prometheus text whose labels include every `labels` pair. */
function sample(metrics: string, name: string, labels: Readonly<Record<string, string>>): number {
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

async function metricsOf(s: RunningSidecar): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${s.adminPort}/metrics`);
  return res.text();
}

async function handshakes(s: RunningSidecar, side: 'downstream' | 'upstream'): Promise<number> {
  return sample(await metricsOf(s), 'weft_tls_handshakes_total', { side, result: 'ok' });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-mtls-'));
  mesh = createCa('weft test mesh root');
  other = createCa('unrelated root');
  rootFile = (await writeCertKey(dir, 'root', mesh)).cert;
  app = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.end(`app saw ${req.url}`));
  });
  await Promise.all([
    issue('api', ID.api),
    issue('perm', ID.perm),
    issue('billing', ID.billing),
    issue('web', ID.web),
    issue('curl', ID.curl),
    issue('stranger', ID.curl, other),
  ]);
  [api, perm, billing] = await Promise.all([
    startSidecar(inboundBootstrap('api', 'STRICT'), { extraArgs: sidecarArgs('api') }),
    startSidecar(inboundBootstrap('perm', 'PERMISSIVE'), { extraArgs: sidecarArgs('perm') }),
    startSidecar(inboundBootstrap('billing', 'STRICT'), { extraArgs: sidecarArgs('billing') }),
  ]);
  running.push(api, perm, billing);
  web = await startSidecar(outboundBootstrap(api.ports.inbound as number, billing.ports.inbound as number), {
    extraArgs: sidecarArgs('web'),
  });
  running.push(web);
});

afterAll(async () => {
  await Promise.all(running.map((s) => s.stop()));
  await app?.close();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('STRICT inbound, checked with openssl s_client', () => {
  it('refuses a client without a certificate: no HTTP response', async () => {
    const r = await sClient(api.ports.inbound as number);
    expect(r.stdout).not.toContain('HTTP/1.1');
    expect(r.stderr).toContain('alert certificate required'); // TLS 1.3 alert 116
    expect(r.code).not.toBe(0);
  });

  it('refuses a client certificate from another CA: no HTTP response', async () => {
    const r = await sClient(api.ports.inbound as number, files.stranger);
    expect(r.stdout).not.toContain('HTTP/1.1');
    expect(r.code).not.toBe(0); // the proxy closes the connection once the chain fails to verify
  });

  it('accepts a mesh certificate and answers the request sent through it', async () => {
    const r = await sClient(api.ports.inbound as number, files.curl);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(r.stdout).toContain('app saw /hello');
  });

  it('refuses plain text', async () => {
    const r = await curl([`http://127.0.0.1:${api.ports.inbound}/plain`], 5000);
    expect(r.status).toBe(0);
    expect(r.exitCode).not.toBe(0);
  });
});

describe('PERMISSIVE inbound', () => {
  it('serves plain text and mTLS on one port, and labels metrics with which it was', async () => {
    const port = perm.ports.inbound as number;
    const plain = await curl([`http://127.0.0.1:${port}/plain`]);
    expect(plain.status).toBe(200);
    expect(plain.body).toBe('app saw /plain');
    const creds = files.curl as { cert: string; key: string };
    const mutual = await curl([
      '--cert',
      creds.cert,
      '--key',
      creds.key,
      '--cacert',
      rootFile,
      `https://127.0.0.1:${port}/mutual`,
    ]);
    expect(mutual.exitCode).toBe(0);
    expect(mutual.status).toBe(200);
    expect(mutual.body).toBe('app saw /mutual');

    const metrics = await metricsOf(perm);
    expect(
      sample(metrics, 'weft_requests_total', {
        reporter: 'destination',
        connection_security_policy: 'mutual_tls',
        source_principal: ID.curl,
        response_code: '200',
      }),
    ).toBe(1);
    expect(
      sample(metrics, 'weft_requests_total', {
        reporter: 'destination',
        connection_security_policy: 'none',
        source_principal: 'unknown',
        response_code: '200',
      }),
    ).toBe(1);
  });
});

describe('outbound mTLS', () => {
  it('refuses a peer with a valid mesh certificate of the wrong service: 503 naming expected and presented IDs', async () => {
    const r = await curl(['-H', 'Host: imposter', `${web.url('outbound')}/x`]);
    expect(r.status).toBe(503);
    expect(r.header('x-weft-error')).toBe('UPSTREAM_CONNECT_FAILURE');
    expect(r.body).toContain(`the peer presented ${ID.billing}, expected ${ID.api}`);
  });

  it('reuses connections: 200 requests through two sidecars make few TLS handshakes', async () => {
    const downBefore = await handshakes(api, 'downstream');
    const upBefore = await handshakes(web, 'upstream');
    const agent = new Agent({ connections: 4, keepAliveTimeout: 30_000 });
    const origin = web.url('outbound');
    let ok = 0;
    try {
      const worker = async (n: number): Promise<void> => {
        for (let i = 0; i < n; i++) {
          const res = await request(`${origin}/r${i}`, { headers: { host: 'api' }, dispatcher: agent });
          await res.body.text();
          if (res.statusCode === 200) ok++;
        }
      };
      await Promise.all([worker(50), worker(50), worker(50), worker(50)]);
    } finally {
      await agent.close();
    }
    expect(ok).toBe(200);
    const down = (await handshakes(api, 'downstream')) - downBefore;
    const up = (await handshakes(web, 'upstream')) - upBefore;
    console.log(
      `connection reuse: 200 requests → ${up} upstream handshakes at web, ${down} downstream at api`,
    );
    expect(up).toBeGreaterThanOrEqual(1);
    expect(up).toBeLessThanOrEqual(4);
    expect(down).toBe(up);
    const metrics = await metricsOf(api);
    expect(
      sample(metrics, 'weft_requests_total', {
        connection_security_policy: 'mutual_tls',
        source_principal: ID.web,
      }),
    ).toBeGreaterThanOrEqual(200);
  });

  it('rotates certificates on both sides mid-traffic (SIGHUP) without a failed GET or POST', async () => {
    const agent = new Agent({ connections: 4, keepAliveTimeout: 30_000 });
    const origin = web.url('outbound');
    const failures: string[] = [];
    let done = 0;
    let stop = false;
    const worker = async (post: boolean): Promise<void> => {
      while (!stop) {
        try {
          const res = await request(`${origin}/loop`, {
            method: post ? 'POST' : 'GET',
            ...(post && { body: 'x'.repeat(2048) }),
            headers: { host: 'api' },
            dispatcher: agent,
          });
          const body = await res.body.text();
          if (res.statusCode !== 200) failures.push(`${res.statusCode} ${body.trim()}`);
        } catch (err) {
          failures.push(String(err));
        }
        done++;
      }
    };
    const downBefore = await handshakes(api, 'downstream');
    const loop = Promise.all([worker(false), worker(false), worker(true), worker(true)]);
    const rotations = 6;
    try {
      for (let i = 0; i < rotations; i++) {
        await new Promise((r) => setTimeout(r, 400));
        const side = i % 2 === 0 ? 'api' : 'web';
        await issue(side, ID[side]);
        (side === 'api' ? api : web).child.kill('SIGHUP');
      }
      await new Promise((r) => setTimeout(r, 400));
    } finally {
      stop = true;
      await loop;
      await agent.close();
    }
    const dump = async (s: RunningSidecar) =>
      (await (await fetch(`http://127.0.0.1:${s.adminPort}/config_dump`)).json()) as {
        identity: { generation: number; spiffeId: string };
      };
    const [apiDump, webDump] = await Promise.all([dump(api), dump(web)]);
    const down = (await handshakes(api, 'downstream')) - downBefore;
    console.log(
      `rotation: ${rotations} rotations during ${done} requests → ${failures.length} failed, ${down} new handshakes at api`,
    );
    expect(failures).toEqual([]);
    expect(done).toBeGreaterThan(100);
    expect(apiDump.identity).toMatchObject({ spiffeId: ID.api, generation: 4 });
    expect(webDump.identity).toMatchObject({ spiffeId: ID.web, generation: 4 });
    expect(down).toBeGreaterThanOrEqual(rotations);
  });
});

describe('the discovery stream', () => {
  it('sends the snapshot config trust bundle in Snapshot.trust_bundle', async () => {
    const server = await startServer();
    const proxy = new RawProxy(server.address);
    try {
      const trustBundle = { trustDomain: TD, rootsPem: [mesh.certPem] };
      await server.setConfig('web-1', { ...configFor('hello'), trustBundle });
      proxy.hello('web-1');
      const snapshot = await proxy.snapshot(1);
      expect(snapshot.trustBundle).toEqual(trustBundle);
    } finally {
      await proxy.close();
      await server.stop();
    }
  });
});
