/**
 * Edge authentication on the proxy core, with real processes: a static `weft sidecar` whose
 * GATEWAY listeners (`gw` on 127.0.0.1 trusting one X-Forwarded-For hop, `gw6` on ::1 trusting
 * none) carry the edge auth config, a real JWKS server on loopback (node:http) and tokens signed
 * with jose, API keys stored as SHA-256 digests, and an echo upstream that shows what arrived.
 *
 * Routes (one RouteConfiguration, domain `*`):
 * - `/jwt`: JWT from provider `idp`; GET needs scope `orders:read` (else 403 insufficient_scope);
 *   `sub` → x-weft-principal, claim `email` → x-user-email;
 * - `/rot`: JWT from provider `rot` (its own JWKS, 300 ms cache): key rotation;
 * - `/key`: API key (`x-api-key`); GET needs scope `read`, POST `write`; client id also in
 *   x-client-id; the key header is removed before forwarding (sanitize);
 * - `/ip`: DENY 198.51.100.0/24 and 2001:db8::/32, ALLOW 127.0.0.0/8, ::1 and 203.0.113.0/24;
 * - `/cors`: CORS for https://*.example.com and https://app.example.org;
 * - `/open`: no policy (identity headers are still stripped on a GATEWAY listener).
 * Config changes (API-key rotation) are written to the bootstrap file and applied with SIGHUP.
 */

import { createPublicKey, randomBytes, type webcrypto } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { hashApiKey } from '../../gateway/filters/auth/apikey.ts';
import type { ApiKey, Bootstrap } from '../../sidecar/proxy/config/types.ts';
import { curl } from '../support/curl.ts';
import { pollUntil } from '../support/mesh.ts';
import { type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';

const ISS = 'https://idp.test/';
const AUD = 'orders-api';

interface TestKey {
  readonly kid: string;
  readonly privateKey: webcrypto.CryptoKey;
  readonly jwk: Record<string, unknown>;
  readonly publicPem: string;
}

async function makeKey(kid: string): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const publicPem = createPublicKey({ key: jwk as never, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' })
    .toString();
  return { kid, privateKey: privateKey as webcrypto.CryptoKey, jwk, publicPem };
}

const now = () => Math.floor(Date.now() / 1000);

function sign(key: TestKey, claims: JWTPayload = {}, iss = ISS): Promise<string> {
  return new SignJWT({ scope: 'orders:read', email: 'alice@example.com', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid })
    .setIssuer(iss)
    .setAudience((claims.aud as string | undefined) ?? AUD)
    .setSubject('alice')
    .setIssuedAt()
    .setExpirationTime((claims.exp as number | undefined) ?? now() + 300)
    .sign(key.privateKey);
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** A JWKS endpoint whose key set and availability the test changes. */
interface JwksEndpoint {
  keys: Record<string, unknown>[];
  down: boolean;
  fetches: number;
  failures: number;
}

function serveJwks(endpoints: Record<string, JwksEndpoint>): Promise<Server> {
  const server = createServer((req, res) => {
    const ep = endpoints[req.url ?? ''];
    if (ep === undefined) {
      res.writeHead(404).end();
      return;
    }
    ep.fetches++;
    if (ep.down) {
      ep.failures++;
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: ep.keys }));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  const res = await request(url, { method: method as 'GET', headers });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body };
}

/** Headers the upstream received (echo body). */
function upstreamSaw(r: Reply): Record<string, string> {
  expect(r.status).toBe(200);
  return (JSON.parse(r.body) as { headers: Record<string, string> }).headers;
}

/** Runs `workers` request loops until `stop()`; counts outcomes. */
function loadLoop(workers: number, send: () => Promise<number>) {
  let running = true;
  const statuses: number[] = [];
  const loops = Array.from({ length: workers }, async () => {
    while (running) statuses.push(await send());
  });
  return {
    statuses,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe('edge authentication on a GATEWAY listener', () => {
  let upstream: Upstream;
  let jwksServer: Server;
  let sidecar: RunningSidecar;
  let gw: string;
  let gw6: string;
  let idpKey: TestKey;
  let otherKey: TestKey;
  let rotOld: TestKey;
  let rotNew: TestKey;
  const idp: JwksEndpoint = { keys: [], down: false, fetches: 0, failures: 0 };
  const rot: JwksEndpoint = { keys: [], down: false, fetches: 0, failures: 0 };
  const oldKey = `wk_${randomBytes(32).toString('base64url')}`;
  const newKey = `wk_${randomBytes(32).toString('base64url')}`;
  const readOnlyKey = `wk_${randomBytes(32).toString('base64url')}`;
  const expiredKey = `wk_${randomBytes(32).toString('base64url')}`;

  function bootstrap(acmeKeys: ApiKey[]): Bootstrap {
    const jwksUri = (path: string) => `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}${path}`;
    const listener = {
      address: '127.0.0.1',
      port: 0,
      direction: 'GATEWAY' as const,
      routeConfigName: 'edge',
      authProviders: {
        jwtProviders: [
          {
            name: 'idp',
            issuer: ISS,
            audiences: [AUD],
            remoteJwksUri: jwksUri('/idp/jwks.json'),
            jwksCooldownMs: 200,
            claimToHeaders: [{ claim: 'email', header: 'x-user-email' }],
          },
          {
            name: 'rot',
            issuer: ISS,
            remoteJwksUri: jwksUri('/rot/jwks.json'),
            jwksCacheMs: 300,
            jwksCooldownMs: 100,
          },
        ],
        apiKeySets: [
          {
            name: 'partners',
            clients: [
              { id: 'acme', plan: 'pro', keys: acmeKeys },
              {
                id: 'globex',
                plan: 'free',
                keys: [
                  { id: 'g1', sha256: hashApiKey(readOnlyKey), scopes: ['read'] },
                  {
                    id: 'g0',
                    sha256: hashApiKey(expiredKey),
                    scopes: ['read'],
                    expiresAt: '2020-01-01T00:00:00Z',
                  },
                ],
              },
            ],
          },
        ],
      },
    };
    const to = { route: { clusters: [{ name: 'echo' }] } };
    const prefix = (value: string) => [{ path: { type: 'PATH_PREFIX' as const, value } }];
    return {
      node: { id: 'gw-1', service: 'gateway', namespace: 'weft-system', workload: 'gateway' },
      admin: { address: '127.0.0.1', port: 0 },
      listeners: [
        { ...listener, name: 'gw', xffNumTrustedHops: 1 },
        { ...listener, name: 'gw6', address: '::1' },
      ],
      routes: [
        {
          name: 'edge',
          virtualHosts: [
            {
              name: 'edge',
              domains: ['*'],
              routes: [
                {
                  name: 'jwt',
                  matches: prefix('/jwt'),
                  ...to,
                  auth: {
                    name: 'shop/jwt',
                    jwt: { providers: ['idp'] },
                    defaultAction: 'AUTH_DENY',
                    rules: [
                      { name: 'readers', action: 'AUTH_ALLOW', methods: ['GET'], jwtScopes: ['orders:read'] },
                    ],
                  },
                },
                {
                  name: 'rot',
                  matches: prefix('/rot'),
                  ...to,
                  auth: { name: 'shop/rot', jwt: { providers: ['rot'] } },
                },
                {
                  name: 'key',
                  matches: prefix('/key'),
                  ...to,
                  auth: {
                    name: 'shop/key',
                    apiKey: { keySet: 'partners', forwardClientIdHeader: 'x-client-id', sanitize: true },
                    defaultAction: 'AUTH_DENY',
                    rules: [
                      { name: 'read', action: 'AUTH_ALLOW', methods: ['GET'], apiKeyScopes: ['read'] },
                      { name: 'write', action: 'AUTH_ALLOW', methods: ['POST'], apiKeyScopes: ['write'] },
                    ],
                  },
                },
                {
                  name: 'ip',
                  matches: prefix('/ip'),
                  ...to,
                  auth: {
                    name: 'shop/ip',
                    defaultAction: 'AUTH_DENY',
                    rules: [
                      {
                        name: 'blocked',
                        action: 'AUTH_DENY',
                        clientCidrs: ['198.51.100.0/24', '2001:db8::/32'],
                      },
                      {
                        name: 'office',
                        action: 'AUTH_ALLOW',
                        clientCidrs: ['127.0.0.0/8', '::1/128', '203.0.113.0/24'],
                      },
                    ],
                  },
                },
                {
                  name: 'cors',
                  matches: prefix('/cors'),
                  ...to,
                  auth: {
                    name: 'shop/cors',
                    cors: {
                      allowOrigins: ['https://*.example.com', 'https://app.example.org'],
                      allowMethods: ['GET', 'PUT'],
                      allowHeaders: ['content-type', 'authorization'],
                      exposeHeaders: ['x-request-id'],
                      maxAgeSeconds: 600,
                      allowCredentials: true,
                    },
                  },
                },
                { name: 'open', matches: prefix('/open'), ...to },
              ],
            },
          ],
        },
      ],
      clusters: [{ name: 'echo' }],
      endpoints: [{ clusterName: 'echo', endpoints: [{ address: '127.0.0.1', port: upstream.port }] }],
    };
  }

  let reloads = 0;
  /** Rewrites the bootstrap and applies it with SIGHUP; resolves once the sidecar logged it. */
  async function reload(acmeKeys: ApiKey[]): Promise<void> {
    await writeFile(sidecar.configPath, stringify(bootstrap(acmeKeys)));
    const version = `static-${++reloads}`;
    sidecar.child.kill('SIGHUP');
    await pollUntil(`config ${version}`, () =>
      sidecar.output.some((l) => l.includes('"config reloaded"') && l.includes(version)) ? true : undefined,
    );
  }

  beforeAll(async () => {
    [idpKey, otherKey, rotOld, rotNew] = await Promise.all([
      makeKey('idp-1'),
      makeKey('stranger'),
      makeKey('rot-old'),
      makeKey('rot-new'),
    ]);
    idp.keys = [idpKey.jwk];
    rot.keys = [rotOld.jwk];
    upstream = await startUpstream();
    jwksServer = await serveJwks({ '/idp/jwks.json': idp, '/rot/jwks.json': rot });
    sidecar = await startSidecar(
      bootstrap([{ id: 'k1', sha256: hashApiKey(oldKey), scopes: ['read', 'write'] }]),
      { extraArgs: ['--access-log'], role: 'gateway' },
    );
    gw = sidecar.url('gw');
    gw6 = `http://[::1]:${sidecar.ports.gw6}`;
  });

  afterAll(async () => {
    await sidecar?.stop();
    await upstream?.close();
    await new Promise((r) => jwksServer?.close(r));
  });

  it('lets a valid token through and forwards sub and claims, replacing spoofed identity headers', async () => {
    const token = await sign(idpKey);
    const seen = upstreamSaw(
      await get(`${gw}/jwt/orders`, {
        authorization: `Bearer ${token}`,
        'x-weft-principal': 'mallory',
        'x-user-email': 'mallory@evil.test',
        'x-weft-plan': 'enterprise',
      }),
    );
    expect(seen['x-weft-principal']).toBe('alice');
    expect(seen['x-user-email']).toBe('alice@example.com');
    expect(seen['x-weft-auth']).toBe('jwt');
    expect(seen['x-weft-plan']).toBeUndefined();
  });

  it.each<[string, () => Promise<string>, number, RegExp]>([
    ['expired', () => sign(idpKey, { exp: now() - 120 }), 401, /error="invalid_token".*token expired/],
    ['not yet valid', () => sign(idpKey, { nbf: now() + 300 }), 401, /error="invalid_token".*not yet valid/],
    [
      'from another issuer',
      () => sign(idpKey, {}, 'https://evil.test/'),
      401,
      /invalid \\"iss\\" claim|"iss"/,
    ],
    ['for another audience', () => sign(idpKey, { aud: 'billing-api' }), 401, /"aud"/],
    [
      'with alg none',
      async () =>
        `${b64({ alg: 'none', kid: 'idp-1' })}.${b64({ iss: ISS, aud: AUD, sub: 'x', exp: now() + 60, scope: 'orders:read' })}.`,
      401,
      /error="invalid_token"/,
    ],
    [
      'HS256-signed with the public key',
      () =>
        new SignJWT({ scope: 'orders:read' })
          .setProtectedHeader({ alg: 'HS256', kid: 'idp-1' })
          .setIssuer(ISS)
          .setAudience(AUD)
          .setSubject('mallory')
          .setExpirationTime(now() + 60)
          .sign(new TextEncoder().encode(idpKey.publicPem)),
      401,
      /algorithm not allowed/,
    ],
    ['signed by an unknown kid', () => sign(otherKey), 401, /unknown signing key/],
    [
      'with a tampered payload',
      async () => {
        const [h, , s] = (await sign(idpKey, { scope: 'profile' })).split('.');
        return `${h}.${b64({ iss: ISS, aud: AUD, sub: 'alice', exp: now() + 60, scope: 'orders:read admin' })}.${s}`;
      },
      401,
      /signature verification failed/,
    ],
    [
      'without the needed scope',
      () => sign(idpKey, { scope: 'profile' }),
      403,
      /error="insufficient_scope", scope="orders:read"/,
    ],
  ])('refuses a token %s', async (_name, token, status, challenge) => {
    const before = upstream.seen.length;
    const r = await get(`${gw}/jwt/orders`, { authorization: `Bearer ${await token()}` });
    expect(r.status).toBe(status);
    expect(r.headers['x-weft-error']).toBe(status === 401 ? 'UNAUTHENTICATED' : 'RBAC_DENIED');
    expect(String(r.headers['www-authenticate'])).toMatch(challenge);
    expect(upstream.seen.length).toBe(before);
  });

  it('asks for a bearer token when there is none (RFC 6750 challenge without error)', async () => {
    const r = await get(`${gw}/jwt/orders`);
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer realm="weft"');
  });

  it('rotates JWKS keys (new key added, old removed) without a failed valid request, and keeps keys while the JWKS is down', async () => {
    let current = rotOld;
    const tokens = new Map<string, string>();
    for (const k of [rotOld, rotNew]) tokens.set(k.kid, await sign(k));
    const loop = loadLoop(
      4,
      async () => (await get(`${gw}/rot/x`, { authorization: `Bearer ${tokens.get(current.kid)}` })).status,
    );
    const waitFor = (n: number) =>
      pollUntil(`${n} requests`, () => (loop.statuses.length >= n ? true : undefined));
    await waitFor(50);
    rot.keys = [rotOld.jwk, rotNew.jwk]; // the IdP publishes the new key, then signs with it
    current = rotNew;
    await waitFor(loop.statuses.length + 100);
    rot.keys = [rotNew.jwk]; // and retires the old one
    const fetched = rot.fetches;
    await pollUntil('a JWKS refresh after the old key left', () =>
      rot.fetches > fetched ? true : undefined,
    );
    await waitFor(loop.statuses.length + 50);
    // The JWKS endpoint goes down: the last good keys stay in use.
    rot.down = true;
    const failed = rot.failures;
    await pollUntil('a failed JWKS refresh', () => (rot.failures > failed + 1 ? true : undefined));
    await waitFor(loop.statuses.length + 50);
    await loop.stop();
    rot.down = false;
    console.info(
      `jwks rotation: ${loop.statuses.length} requests, ${loop.statuses.filter((s) => s !== 200).length} not 200; ` +
        `JWKS fetches ${rot.fetches} (${rot.failures} failed while down)`,
    );
    expect(loop.statuses.length).toBeGreaterThan(250);
    expect(loop.statuses.filter((s) => s !== 200)).toEqual([]);
    // The old key, once the refreshed set left it out, is refused.
    const old = await get(`${gw}/rot/x`, { authorization: `Bearer ${tokens.get(rotOld.kid)}` });
    expect(old.status).toBe(401);
    expect(String(old.headers['www-authenticate'])).toMatch(/unknown signing key/);
  });

  it('checks API keys: scopes per method, expiry, unknown keys; forwards client id and plan, strips the key', async () => {
    const seen = upstreamSaw(
      await get(`${gw}/key/items`, {
        'x-api-key': readOnlyKey,
        'x-weft-client-id': 'acme',
        'x-weft-plan': 'pro',
      }),
    );
    expect(seen['x-weft-client-id']).toBe('globex');
    expect(seen['x-weft-plan']).toBe('free');
    expect(seen['x-weft-principal']).toBe('globex');
    expect(seen['x-client-id']).toBe('globex');
    expect(seen['x-api-key']).toBeUndefined();
    expect((await get(`${gw}/key/items`, { 'x-api-key': readOnlyKey }, 'POST')).status).toBe(403);
    expect((await get(`${gw}/key/items`, { 'x-api-key': oldKey }, 'POST')).status).toBe(200);
    const expired = await get(`${gw}/key/items`, { 'x-api-key': expiredKey });
    expect([expired.status, expired.body]).toEqual([
      401,
      'authentication required: invalid API key: expired key\n',
    ]);
    expect((await get(`${gw}/key/items`, { 'x-api-key': 'wk_guess' })).status).toBe(401);
    expect((await get(`${gw}/key/items`)).status).toBe(401);
  });

  it('rotates an API key under load with no failure during the overlap; the old key is refused after expiry and removal', async () => {
    let current = oldKey;
    const loop = loadLoop(4, async () => (await get(`${gw}/key/items`, { 'x-api-key': current })).status);
    const waitFor = (n: number) =>
      pollUntil(`${n} requests`, () => (loop.statuses.length >= n ? true : undefined));
    await waitFor(50);
    // Overlap: the new key is added, the old one expires in 3 s.
    const expiresAt = new Date(Date.now() + 3000).toISOString();
    await reload([
      { id: 'k1', sha256: hashApiKey(oldKey), scopes: ['read', 'write'], expiresAt },
      { id: 'k2', sha256: hashApiKey(newKey), scopes: ['read', 'write'] },
    ]);
    await waitFor(loop.statuses.length + 50);
    current = newKey; // the client switches during the overlap
    await waitFor(loop.statuses.length + 100);
    await pollUntil('the old key expired', async () =>
      (await get(`${gw}/key/items`, { 'x-api-key': oldKey })).status === 401 ? true : undefined,
    );
    await reload([{ id: 'k2', sha256: hashApiKey(newKey), scopes: ['read', 'write'] }]); // removed
    await waitFor(loop.statuses.length + 50);
    await loop.stop();
    console.info(
      `api-key rotation: ${loop.statuses.length} requests, ${loop.statuses.filter((s) => s !== 200).length} not 200`,
    );
    expect(loop.statuses.length).toBeGreaterThan(250);
    expect(loop.statuses.filter((s) => s !== 200)).toEqual([]);
    const old = await get(`${gw}/key/items`, { 'x-api-key': oldKey });
    expect([old.status, old.body]).toEqual([401, 'authentication required: invalid API key: unknown key\n']);

    const metrics = (await get(`http://127.0.0.1:${sidecar.adminPort}/metrics`)).body;
    const count = (labels: string) =>
      Number(new RegExp(`weft_api_key_requests_total\\{${labels}\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    expect(count('key_set="partners",client_id="acme",key_id="k1",result="ok"')).toBeGreaterThan(50);
    expect(count('key_set="partners",client_id="acme",key_id="k2",result="ok"')).toBeGreaterThan(100);
    expect(count('key_set="partners",client_id="acme",key_id="k1",result="expired"')).toBeGreaterThan(0);
    for (const secret of [oldKey, newKey, readOnlyKey]) {
      expect(metrics).not.toContain(secret);
      expect(sidecar.output.join('\n')).not.toContain(secret);
    }
  });

  it('allows and denies by client address: IPv4 via a trusted X-Forwarded-For hop, IPv6 ::1 directly', async () => {
    expect((await get(`${gw}/ip`)).status).toBe(200); // 127.0.0.1
    expect((await get(`${gw}/ip`, { 'x-forwarded-for': '203.0.113.7' })).status).toBe(200);
    const blocked = await get(`${gw}/ip`, { 'x-forwarded-for': '198.51.100.9' });
    expect([blocked.status, blocked.headers['x-weft-error']]).toEqual([403, 'RBAC_DENIED']);
    expect(blocked.body).toContain('blocked');
    expect((await get(`${gw}/ip`, { 'x-forwarded-for': '192.0.2.1' })).status).toBe(403); // no rule: deny
    expect((await get(`${gw}/ip`, { 'x-forwarded-for': '2001:db8::1' })).status).toBe(403);
    // gw6 trusts no hop: a spoofed X-Forwarded-For is replaced by the peer, ::1.
    expect((await get(`${gw6}/ip`)).status).toBe(200);
    expect((await get(`${gw6}/ip`, { 'x-forwarded-for': '198.51.100.9' })).status).toBe(200);
  });

  it('answers CORS preflights at the gateway and adds CORS headers to allowed origins', async () => {
    const pre = await curl([
      '-X',
      'OPTIONS',
      '-H',
      'Origin: https://shop.example.com',
      '-H',
      'Access-Control-Request-Method: PUT',
      '-H',
      'Access-Control-Request-Headers: Content-Type, Authorization',
      `${gw}/cors/cart`,
    ]);
    expect(pre.status).toBe(204);
    expect(pre.header('access-control-allow-origin')).toBe('https://shop.example.com');
    expect(pre.header('access-control-allow-methods')).toBe('GET, PUT');
    expect(pre.header('access-control-allow-headers')).toBe('content-type, authorization');
    expect(pre.header('access-control-max-age')).toBe('600');
    expect(pre.header('access-control-allow-credentials')).toBe('true');
    expect(pre.header('vary')).toBe('Origin');
    const before = upstream.seen.length;
    const denied = await get(
      `${gw}/cors/cart`,
      { origin: 'https://evil.test', 'access-control-request-method': 'PUT' },
      'OPTIONS',
    );
    expect(denied.status).toBe(403);
    expect(denied.headers['access-control-allow-origin']).toBeUndefined();
    const badMethod = await get(
      `${gw}/cors/cart`,
      { origin: 'https://app.example.org', 'access-control-request-method': 'DELETE' },
      'OPTIONS',
    );
    expect(badMethod.status).toBe(403);
    expect(upstream.seen.length).toBe(before); // preflights never reach the upstream
    const simple = await get(`${gw}/cors/cart`, { origin: 'https://app.example.org' });
    expect(simple.status).toBe(200);
    expect(simple.headers['access-control-allow-origin']).toBe('https://app.example.org');
    expect(simple.headers['access-control-expose-headers']).toBe('x-request-id');
    expect(simple.headers.vary).toBe('Origin');
    const other = await get(`${gw}/cors/cart`, { origin: 'https://example.com.evil.test' });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('strips spoofed identity headers on routes without a policy', async () => {
    const seen = upstreamSaw(
      await get(`${gw}/open`, {
        'x-weft-principal': 'admin',
        'x-weft-client-id': 'acme',
        'x-weft-plan': 'enterprise',
        'x-weft-auth': 'jwt',
        'x-user-email': 'root@evil.test',
        'x-client-id': 'acme',
      }),
    );
    for (const h of [
      'x-weft-principal',
      'x-weft-client-id',
      'x-weft-plan',
      'x-weft-auth',
      'x-user-email',
      'x-client-id',
    ]) {
      expect(seen[h]).toBeUndefined();
    }
  });
});
