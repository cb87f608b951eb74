/**
 * The edge gateway end to end, real processes on loopback (issue 7, gateway base):
 * control plane with the mesh CA + `weft gateway --gateway edge` (its own join token, so its
 * SPIFFE ID is .../sa/edge) + a `web` sidecar in STRICT mTLS + the web app.
 *
 * The Gateway `edge` has an HTTP listener (port 80) and two HTTPS listeners on port 443 with
 * hostnames a.example.test and b.example.test, each with its own certificate from `--cert-dir`
 * (made by `openssl` under a test CA). Ports 80 and 443 bind to free ports (`--port 80=0`).
 * Checks:
 * - SNI: `openssl s_client -servername a.example.test` / `b.example.test` each get their own
 *   certificate (subject CN), curl verifies both with `--cacert` and `--resolve`;
 * - TLS 1.1 is refused (protocol_version alert), TLS 1.2 and 1.3 accepted;
 * - HTTP → HTTPS: the HTTP listener's RequestRedirect route answers 301 with an https Location;
 * - a request through the gateway reaches the app behind its sidecar over mTLS, and the inbound
 *   sidecar reports the gateway's SPIFFE ID as source principal;
 * - with the control plane killed, the gateway keeps serving its last good config.
 * Every process is stopped by pid in `afterAll` and the temp dir removed.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl } from '../support/curl.ts';
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
  weft,
} from '../support/mesh.ts';

/** a and b: certificates from `--cert-dir` files; c: from a `Secret` in the store. */
const HOSTS = ['a.example.test', 'b.example.test', 'c.example.test'] as const;
const certName = (host: string): string => `${host.split('.')[0]}-example`;

const resources = (secretCrt: string, secretKey: string): string => `apiVersion: weft.dev/v1alpha1
kind: Secret
metadata: { name: c-example }
spec:
  type: kubernetes.io/tls
  stringData:
    tls.crt: ${JSON.stringify(secretCrt)}
    tls.key: ${JSON.stringify(secretKey)}
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: web }
spec:
  ports: [{ port: 8080 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: edge }
spec:
  gatewayClassName: weft
  listeners:
    - { name: http, port: 80, protocol: HTTP }
    - name: https-a
      port: 443
      protocol: HTTPS
      hostname: a.example.test
      tls: { certificateRefs: [{ name: a-example }] }
    - name: https-b
      port: 443
      protocol: HTTPS
      hostname: b.example.test
      tls: { certificateRefs: [{ name: b-example }] }
    - name: https-c
      port: 443
      protocol: HTTPS
      hostname: c.example.test
      tls: { certificateRefs: [{ name: c-example }] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: to-https }
spec:
  parentRefs: [{ name: edge, sectionName: http }]
  rules:
    - filters:
        - type: RequestRedirect
          requestRedirect: { scheme: https, statusCode: 301 }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: web }
spec:
  parentRefs: [{ name: edge, port: 443 }]
  hostnames: [a.example.test, b.example.test, c.example.test]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /web } }]
      backendRefs: [{ name: web, port: 8080 }]
`;

function run(cmd: string, args: readonly string[], input?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, out: `${stdout}${stderr}` });
    });
    child.stdin?.end(input ?? '');
  });
}

/**
 * A test CA and one server certificate per host (`<dir>/<name>.crt|.key`, made by openssl), the
 * store's one (c) in `<dir>/store/` where the gateway does not look.
 */
async function makeCertificates(dir: string): Promise<string> {
  await mkdir(join(dir, 'store'), { recursive: true });
  await mkdir(dir, { recursive: true });
  const ca = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  const made = await run('openssl', [
    ...`req -x509 -newkey rsa:2048 -nodes -subj /CN=WeftEdgeTestCA -days 2`.split(' '),
    ...['-keyout', caKey, '-out', ca],
  ]);
  if (made.code !== 0) throw new Error(made.out);
  for (const host of HOSTS) {
    const name = host === 'c.example.test' ? join('store', certName(host)) : certName(host);
    const leaf = await run('openssl', [
      ...`req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=${host}`.split(' '),
      ...['-addext', `subjectAltName=DNS:${host}`, '-addext', 'basicConstraints=critical,CA:FALSE'],
      ...['-addext', 'extendedKeyUsage=serverAuth', '-CA', ca, '-CAkey', caKey],
      ...['-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`)],
    ]);
    if (leaf.code !== 0) throw new Error(leaf.out);
  }
  return ca;
}

let root = '';
let cp: ControlPlane | undefined;
let gateway: WeftProcess | undefined;
let sidecar: MeshSidecar | undefined;
let app: Server | undefined;
const seen: { url: string; headers: Record<string, unknown> }[] = [];
let caFile = '';
let httpPort = 0;
let httpsPort = 0;
let gatewayAdmin = '';

let gatewayArgs: string[] = [];
let env: NodeJS.ProcessEnv = {};

/** Starts `weft gateway` with `gatewayArgs`; learns its admin and listener ports from its logs. */
async function startGateway(): Promise<void> {
  const proc = new WeftProcess('gateway edge', gatewayArgs);
  gateway = proc;
  const admin = await proc.waitForLog('"admin ready"', (e) => e.msg === 'admin ready');
  gatewayAdmin = `http://127.0.0.1:${admin.port as number}`;
  await proc.waitForLog('"gateway ready"', (e) => e.msg === 'gateway ready', 20_000);
  const portOf = (name: string): number =>
    proc.logs.find((e) => e.msg === 'listener ready' && e.name === name)?.port as number;
  httpPort = portOf('gateway-80');
  httpsPort = portOf('gateway-443');
  expect(httpPort, proc.describe()).toBeGreaterThan(0);
  expect(httpsPort, proc.describe()).toBeGreaterThan(0);
}

async function gatewayDump(): Promise<{ identity: { spiffeId: string } | null; version: string }> {
  const res = await request(`${gatewayAdmin}/config_dump`);
  return (await res.body.json()) as { identity: { spiffeId: string } | null; version: string };
}

/** curl through the gateway's HTTPS listener to `host`, verifying with the test CA. */
function curlHttps(host: string, path: string, extra: readonly string[] = []) {
  return curl([
    '--resolve',
    `${host}:${httpsPort}:127.0.0.1`,
    '--cacert',
    caFile,
    ...extra,
    `https://${host}:${httpsPort}${path}`,
  ]);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'weft-gateway-'));
  const certDir = join(root, 'certs');
  caFile = await makeCertificates(certDir);
  cp = await startControlPlane({ dataDir: join(root, 'control-plane'), tls: true });
  env = { WEFT_SERVER: cp.server, WEFT_TOKEN: cp.token };
  const stored = (ext: string) => readFile(join(certDir, 'store', `c-example.${ext}`), 'utf8');
  await writeFile(join(root, 'edge.yaml'), resources(await stored('crt'), await stored('key')));
  const applied = await weft(['apply', '-f', join(root, 'edge.yaml')], { env });
  expect(applied.code, applied.stderr).toBe(0);

  app = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`web saw ${req.url}\n`);
  });
  await new Promise<void>((resolve) => app?.listen(0, '127.0.0.1', resolve));
  const appPort = (app.address() as AddressInfo).port;
  const [outboundPort, inboundPort] = (await freePorts(2)) as [number, number];
  sidecar = await startMeshSidecar({
    controlPlane: cp.discoveryAddress,
    service: 'web',
    workload: 'web-v1',
    appPort,
    outboundPort,
    inboundPort,
    dataDir: join(root, 'sidecars'),
    caBundle: cp.caBundle as string,
    token: await joinToken(cp, 'web'),
  });

  gatewayArgs = [
    'gateway',
    '--control-plane',
    cp.discoveryAddress,
    '--gateway',
    'edge',
    '--port',
    '80=0',
    '--port',
    '443=0',
    '--cert-dir',
    certDir,
    '--admin-port',
    '0',
    '--data-dir',
    join(root, 'gateways'),
    '--drain-delay',
    '0',
    '--ca-bundle',
    cp.caBundle as string,
    '--token',
    await joinToken(cp, 'edge'),
  ];
  await startGateway();
  // web's endpoint may reach the gateway a snapshot after its first one: wait for a 200.
  await pollUntil(
    'the gateway to reach web',
    async () => ((await curlHttps('a.example.test', '/web/warmup')).status === 200 ? true : undefined),
    { timeoutMs: 20_000 },
  );
}, 60_000);

afterAll(async () => {
  await stopAll([gateway, sidecar].filter((p) => p !== undefined));
  await cp?.stop();
  await new Promise<void>((resolve) => (app ? app.close(() => resolve()) : resolve()));
  if (root !== '') await rm(root, { recursive: true, force: true });
}, 30_000);

describe('gateway TLS termination', () => {
  it.each(HOSTS)(
    "SNI %s gets its own certificate (openssl s_client subject; c's from a Secret in the store)",
    async (host) => {
      const r = await run(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${httpsPort}`,
          '-servername',
          host,
          '-CAfile',
          caFile,
          '-verify_return_error',
        ],
        'Q\n',
      );
      expect(r.out).toMatch(new RegExp(`subject=CN ?= ?${host.replace(/\./g, '\\.')}`));
      expect(r.out).toContain('Verify return code: 0 (ok)');
    },
  );

  it.each(HOSTS)('curl verifies %s with --cacert and reaches web through the mesh', async (host) => {
    const res = await curlHttps(host, '/web/hello');
    expect(res.status).toBe(200);
    expect(res.body).toBe('web saw /web/hello\n');
    const last = seen.at(-1);
    expect(last?.headers['x-forwarded-proto']).toBe('https');
    expect(last?.headers.host).toBe(`${host}:${httpsPort}`);
  });

  it("the admin API shows the stored Secret's certificate but never its private key", async () => {
    const got = await weft(['get', 'secret', 'c-example', '-o', 'yaml'], { env });
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout).toContain('BEGIN CERTIFICATE');
    expect(got.stdout).toMatch(/<redacted sha256:[0-9a-f]{16}>/);
    expect(got.stdout).not.toContain('PRIVATE KEY');
    const plane = cp as ControlPlane;
    const res = await request(`${plane.server}/v1/proxies/gateway-edge.default/config`, {
      headers: { authorization: `Bearer ${plane.token}` },
    });
    const text = await res.body.text();
    expect(res.statusCode, text).toBe(200);
    expect(text).toMatch(/"name": ?"default\/c-example"/);
    expect(text).toContain('<redacted>');
    expect(text).not.toContain('PRIVATE KEY');
  });

  it('refuses TLS 1.1 and accepts TLS 1.2 and 1.3', async () => {
    // SECLEVEL=0 lets the client offer TLS 1.1 at all; the gateway must refuse it.
    const old = await run(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${httpsPort}`,
        '-servername',
        'a.example.test',
        '-tls1_1',
        '-cipher',
        'DEFAULT@SECLEVEL=0',
      ],
      'Q\n',
    );
    expect(old.code).not.toBe(0);
    expect(old.out).toMatch(/alert protocol version/);
    for (const flag of ['--tlsv1.2', '--tlsv1.3']) {
      const max = flag === '--tlsv1.2' ? ['--tls-max', '1.2'] : [];
      const res = await curlHttps('a.example.test', '/web/tls', [flag, ...max]);
      expect(res.status, `${flag}: ${res.stderr}`).toBe(200);
    }
  });

  it('a host the Gateway does not serve gets no certificate', async () => {
    const r = await run(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${httpsPort}`, '-servername', 'd.example.test'],
      'Q\n',
    );
    expect(r.out).not.toMatch(/subject=CN ?= ?[abc]\.example\.test/);
    expect(r.out).toContain('no peer certificate available');
  });
});

describe('gateway HTTP listener', () => {
  it('has edge limits on by default: an oversized header block gets 431', async () => {
    const res = await curl([
      '-H',
      'host: a.example.test',
      '-H',
      `x-big: ${'a'.repeat(20_000)}`,
      `http://127.0.0.1:${httpPort}/`,
    ]);
    expect(res.status).toBe(431);
    expect(res.header('x-weft-error')).toBe('REQUEST_HEADERS_TOO_LARGE');
  });

  it('redirects HTTP to HTTPS (RequestRedirect scheme https, 301)', async () => {
    const res = await curl(['-H', 'host: a.example.test', `http://127.0.0.1:${httpPort}/web/x?y=1`]);
    expect(res.status).toBe(301);
    expect(res.header('location')).toBe('https://a.example.test/web/x?y=1');
  });
});

describe('gateway on a static bootstrap (--config)', () => {
  it('terminates TLS with certificate files, redirects within https, reloads the files on SIGHUP', async () => {
    // Its own copies: this test overwrites them (the mesh gateway keeps reading root/certs).
    const certDir = join(root, 'static-certs');
    await mkdir(certDir, { recursive: true });
    for (const file of ['a-example.crt', 'a-example.key', 'b-example.crt', 'b-example.key']) {
      await writeFile(join(certDir, file), await readFile(join(root, 'certs', file)));
    }
    const bootstrap = join(root, 'gateway-static.yaml');
    await writeFile(
      bootstrap,
      JSON.stringify({
        node: { service: 'edge-static', namespace: 'default' },
        listeners: [
          {
            name: 'https',
            port: 0,
            direction: 'GATEWAY',
            routeConfigName: 'edge',
            serverTls: { certificates: [{ certificateName: 'a' }] },
          },
        ],
        certificates: [
          {
            name: 'a',
            certChainFile: join(certDir, 'a-example.crt'),
            privateKeyFile: join(certDir, 'a-example.key'),
          },
        ],
        routes: [
          {
            name: 'edge',
            virtualHosts: [
              {
                domains: ['*'],
                routes: [
                  {
                    matches: [{ path: { type: 'PATH_PREFIX', value: '/old' } }],
                    redirect: { path: { type: 'REPLACE_PREFIX_MATCH', value: '/new' } },
                  },
                  { directResponse: { status: 200, body: 'static edge\n' } },
                ],
              },
            ],
          },
        ],
      }),
    );
    const proc = new WeftProcess('gateway static', ['gateway', '--config', bootstrap, '--admin-port', '0']);
    try {
      await proc.waitForLog('"gateway ready"', (e) => e.msg === 'gateway ready');
      const port = proc.logs.find((e) => e.msg === 'listener ready' && e.name === 'https')?.port as number;
      const args = ['--resolve', `a.example.test:${port}:127.0.0.1`, '--cacert', caFile];
      const ok = await curl([...args, `https://a.example.test:${port}/`]);
      expect(ok.status, ok.stderr).toBe(200);
      expect(ok.body).toBe('static edge\n');
      const moved = await curl([...args, `https://a.example.test:${port}/old/x`]);
      expect(moved.status).toBe(302);
      expect(moved.header('location')).toBe(`https://a.example.test:${port}/new/x`);

      // SIGHUP re-reads the bootstrap and the files it names: put b's certificate in a's place.
      const subject = async () =>
        (
          await run(
            'openssl',
            ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'a.example.test'],
            'Q\n',
          )
        ).out;
      expect(await subject()).toMatch(/subject=CN ?= ?a\.example\.test/);
      for (const ext of ['crt', 'key']) {
        await writeFile(join(certDir, `a-example.${ext}`), await readFile(join(certDir, `b-example.${ext}`)));
      }
      proc.child.kill('SIGHUP');
      await proc.waitForLog('"config reloaded"', (e) => e.msg === 'config reloaded');
      expect(await subject()).toMatch(/subject=CN ?= ?b\.example\.test/);
    } finally {
      await proc.stop();
    }
  });
});

describe('gateway into the mesh', () => {
  it('calls web over mTLS with its own SPIFFE ID (the inbound sidecar reports it as source principal)', async () => {
    const dump = await gatewayDump();
    const spiffeId = dump.identity?.spiffeId ?? '';
    expect(spiffeId).toMatch(/^spiffe:\/\/[^/]+\/ns\/default\/sa\/edge$/);
    const res = await curlHttps('a.example.test', '/web/principal');
    expect(res.status).toBe(200);
    const metrics = await (sidecar as MeshSidecar).metrics();
    const line = metrics
      .split('\n')
      .find(
        (l) =>
          l.startsWith('weft_requests_total{') &&
          l.includes('reporter="destination"') &&
          l.includes(`source_principal="${spiffeId}"`) &&
          l.includes('connection_security_policy="mutual_tls"'),
      );
    expect(line, metrics).toBeDefined();
  });

  it('keeps serving its last good config after the control plane is killed', async () => {
    const before = (await gatewayDump()).version;
    await (cp as ControlPlane).kill('SIGKILL');
    const res = await curlHttps('b.example.test', '/web/after-cp');
    expect(res.status).toBe(200);
    expect(res.body).toBe('web saw /web/after-cp\n');
    expect((await gatewayDump()).version).toBe(before);
    expect(gateway?.running).toBe(true);
  });

  it('restarted while the control plane is down, serves HTTPS from its cached snapshot and identity', async () => {
    const before = (await gatewayDump()).version;
    await gateway?.stop();
    await startGateway();
    expect((await gatewayDump()).version).toBe(before);
    const res = await curlHttps('a.example.test', '/web/after-restart');
    expect(res.status, res.stderr).toBe(200);
    expect(res.body).toBe('web saw /web/after-restart\n');
  });
});
