/**
 * The `npm start` demo's edge routes, end to end without the demo's fixed ports: a real control
 * plane (`--tls`, temp dir) gets deploy/examples/mesh.yaml and the SecurityPolicies the demo
 * applies (deploy/examples/demo-edge.ts `makeEdgeAuth`), a `weft gateway --gateway edge` serves
 * Gateway `edge` (its port 18080 bound to a free port) and calls web's sidecar over mTLS. With
 * curl, as the demo prints them:
 *
 * - `/jwt/hello` with the demo token: 200 (web answers, `x-user: demo-user` from claimToHeaders); without a
 *   token 401 `WWW-Authenticate: Bearer`; a token with the right claims signed by another key: 401;
 * - `/partner/hello` with the demo API key: 200 (`x-client-id: partner`, the key removed); without
 *   a key or with another one: 401; twelve at once: some 429 (5/s per client).
 *
 * Every process is stopped by its pid in `afterAll`; the temp dir is removed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, SignJWT } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AUDIENCE, DEMO_ISSUER, type EdgeAuth, makeEdgeAuth } from '../../deploy/examples/demo-edge.ts';
import { type CurlResponse, curl } from '../support/curl.ts';
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

const MESH_YAML = new URL('../../deploy/examples/mesh.yaml', import.meta.url);

let root = '';
let cp: ControlPlane | undefined;
let app: Server | undefined;
let sidecar: MeshSidecar | undefined;
let gateway: WeftProcess | undefined;
let edge = '';
let auth: EdgeAuth;
/** What web saw last: its URL and headers. */
let seen: { url: string; headers: IncomingHttpHeaders } | undefined;

function header(res: CurlResponse, name: string): string | undefined {
  return res.headerLines.find(([n]) => n === name)?.[1];
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'weft-demo-edge-'));
  cp = await startControlPlane({ dataDir: join(root, 'control-plane'), tls: true });
  const env = { WEFT_SERVER: cp.server, WEFT_TOKEN: cp.token };
  auth = await makeEdgeAuth();
  await writeFile(join(root, 'edge-auth.yaml'), auth.yaml);
  for (const file of [MESH_YAML.pathname, join(root, 'edge-auth.yaml')]) {
    const applied = await weft(['apply', '-f', file], { env });
    expect(applied.code, applied.stderr).toBe(0);
  }

  app = createServer((req, res) => {
    seen = { url: req.url ?? '', headers: req.headers };
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('web\n');
  });
  await new Promise<void>((resolve) => app?.listen(0, '127.0.0.1', resolve));
  const [outboundPort, inboundPort] = (await freePorts(2)) as [number, number];
  const started = await Promise.allSettled([
    startMeshSidecar({
      controlPlane: cp.discoveryAddress,
      service: 'web',
      workload: 'web-v1',
      appPort: (app.address() as AddressInfo).port,
      outboundPort,
      inboundPort,
      dataDir: join(root, 'sidecars'),
      caBundle: cp.caBundle as string,
      token: await joinToken(cp, 'web'),
    }).then((s) => {
      sidecar = s;
    }),
    (async () => {
      const plane = cp as ControlPlane;
      gateway = new WeftProcess('gateway edge', [
        'gateway',
        '--control-plane',
        plane.discoveryAddress,
        '--gateway',
        'edge',
        '--port',
        '18080=0',
        '--admin-port',
        '0',
        '--data-dir',
        join(root, 'gateways'),
        '--drain-delay',
        '0',
        '--ca-bundle',
        plane.caBundle as string,
        '--token',
        await joinToken(plane, 'edge'),
      ]);
      await gateway.waitForLog('"gateway ready"', (e) => e.msg === 'gateway ready', 20_000);
      const port = gateway.logs.find((e) => e.msg === 'listener ready' && e.name === 'gateway-18080')
        ?.port as number;
      expect(port, gateway.describe()).toBeGreaterThan(0);
      edge = `http://127.0.0.1:${port}`;
    })(),
  ]);
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  // web's endpoint may reach the gateway a snapshot after its first one: wait for a 200.
  await pollUntil(
    'the gateway to reach web',
    async () => ((await curl([`${edge}/`])).status === 200 ? true : undefined),
    { timeoutMs: 20_000 },
  );
}, 60_000);

afterAll(async () => {
  await stopAll([gateway, sidecar].filter((p) => p !== undefined));
  await cp?.stop();
  app?.closeAllConnections();
  await new Promise<void>((resolve) => (app ? app.close(() => resolve()) : resolve()));
  if (root !== '') await rm(root, { recursive: true, force: true });
}, 30_000);

describe('the demo JWT route (/jwt/...)', () => {
  it('200 with the demo token, the subject forwarded; 401 without a token', async () => {
    const ok = await curl(['-H', `Authorization: Bearer ${auth.token}`, `${edge}/jwt/hello`]);
    expect(ok.status, ok.body).toBe(200);
    expect(seen?.url).toBe('/jwt/hello');
    expect(seen?.headers['x-user']).toBe('demo-user');

    const none = await curl([`${edge}/jwt/hello`]);
    expect(none.status).toBe(401);
    expect(header(none, 'www-authenticate')).toBe('Bearer realm="weft"');
  });

  it('401 invalid_token for a token with the right claims signed by another key', async () => {
    const other = await generateKeyPair('ES256');
    const forged = await new SignJWT({ scope: 'demo:read' })
      .setProtectedHeader({ alg: 'ES256', kid: 'demo-1' })
      .setIssuer(DEMO_ISSUER)
      .setAudience(DEMO_AUDIENCE)
      .setExpirationTime('1h')
      .sign(other.privateKey);
    const bad = await curl(['-H', `Authorization: Bearer ${forged}`, `${edge}/jwt/hello`]);
    expect(bad.status).toBe(401);
    expect(header(bad, 'www-authenticate')).toContain('error="invalid_token"');
  });
});

describe('the demo API-key route (/partner/...)', () => {
  it('200 with the demo key (client id forwarded, key removed); 401 without or with another key', async () => {
    const ok = await curl(['-H', `x-api-key: ${auth.apiKey}`, `${edge}/partner/hello`]);
    expect(ok.status, ok.body).toBe(200);
    expect(seen?.url).toBe('/partner/hello');
    expect(seen?.headers['x-client-id']).toBe('partner');
    // The gateway's forwarded identity crosses the mTLS hop into the app behind web's sidecar.
    expect(seen?.headers['x-weft-client-id']).toBe('partner');
    expect(seen?.headers['x-weft-principal']).toBe('partner');
    expect(seen?.headers['x-api-key']).toBeUndefined();
    // A client cannot claim an identity: the gateway drops x-weft-* from its input.
    const spoofed = await curl(['-H', 'x-weft-client-id: admin', `${edge}/partner/hello`]);
    expect(spoofed.status).toBe(401);
    expect((await curl([`${edge}/partner/hello`])).status).toBe(401);
    expect((await curl(['-H', 'x-api-key: not-the-key', `${edge}/partner/hello`])).status).toBe(401);
  });

  it('5 requests per second per client, then 429 with RateLimit headers', async () => {
    // Twelve at once: a fixed window (from its first request) holds at least six of them, even
    // when a window boundary falls among them, so at least one is a 429.
    const answers = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const res = await request(`${edge}/partner/hello`, { headers: { 'x-api-key': auth.apiKey } });
        await res.body.text();
        return { status: res.statusCode, headers: res.headers };
      }),
    );
    const statuses = answers.map((a) => a.status).join(' ');
    expect(
      answers.every((a) => a.status === 200 || a.status === 429),
      statuses,
    ).toBe(true);
    const limited = answers.find((a) => a.status === 429);
    expect(limited, statuses).toBeDefined();
    expect(answers.filter((a) => a.status === 200).length, statuses).toBeLessThanOrEqual(10);
    expect(limited?.headers['ratelimit-limit']).toBe('5');
    expect(limited?.headers['x-weft-error']).toBe('RATE_LIMITED');
  });
});
