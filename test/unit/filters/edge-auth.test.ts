/**
 * The edge auth filter (sidecar/proxy/filters/edge/): config errors name the field (table), CORS
 * origin matching, scopes from `scope`/`scp`, API keys (digest lookup, expiry, rotation overlap),
 * the remote JWKS cache (unknown-kid refetch rate limit, last good keys kept while the endpoint
 * fails) against a real loopback JWKS server, and ProxyCore rejecting a bad listener config while
 * keeping its last good one. The request path end to end is in
 * test/integration/edge-auth.test.ts.
 */

import type { webcrypto } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileApiKeySet, hashApiKey } from '../../../gateway/filters/auth/apikey.ts';
import { EdgeAuthConfigError } from '../../../gateway/filters/auth/config-error.ts';
import { compileCors, originAllowed, preflight } from '../../../gateway/filters/auth/cors.ts';
import { createEdgeAuthFilter, EDGE_AUTH_FILTER_NAME } from '../../../gateway/filters/auth/filter.ts';
import { JwksRegistry } from '../../../gateway/filters/auth/jwks.ts';
import { compileJwtProvider, scopesOf } from '../../../gateway/filters/auth/jwt.ts';
import { edgeAuthFactory } from '../../../gateway/filters/index.ts';
import { ConfigError } from '../../../sidecar/proxy/config/errors.ts';
import type { ProxyConfig } from '../../../sidecar/proxy/config/model.ts';
import type { AuthPolicy, AuthProviders, Listener } from '../../../sidecar/proxy/config/types.ts';
import { CONTINUE } from '../../../sidecar/proxy/filters/filter.ts';
import { RequestContext } from '../../../sidecar/proxy/http/context.ts';
import { ProxyCore } from '../../../sidecar/proxy/proxy.ts';

const JWKS = '{"keys":[]}';
const DIGEST = 'ab'.repeat(32);

function listenerWith(authProviders: AuthProviders, auth?: AuthPolicy): Listener {
  return {
    name: 'gw',
    port: 0,
    direction: 'GATEWAY',
    routeConfigName: 'r',
    authProviders,
    ...(auth && { auth }),
  };
}

describe('edge auth config errors name the field', () => {
  const jwt = (extra: Record<string, unknown>) => listenerWith({ jwtProviders: [{ name: 'idp', ...extra }] });
  it.each<[string, Listener, string]>([
    [
      'neither JWKS source',
      jwt({}),
      'authProviders.jwtProviders[0]: set exactly one of remoteJwksUri, localJwks',
    ],
    [
      'both JWKS sources',
      jwt({ localJwks: JWKS, remoteJwksUri: 'https://idp/jwks' }),
      'authProviders.jwtProviders[0]: set exactly one of remoteJwksUri, localJwks',
    ],
    [
      'alg none',
      jwt({ localJwks: JWKS, algorithms: ['RS256', 'none'] }),
      'authProviders.jwtProviders[0].algorithms[1]: "none" is never allowed (asymmetric algorithms only)',
    ],
    [
      'an HMAC algorithm',
      jwt({ localJwks: JWKS, algorithms: ['HS256'] }),
      'authProviders.jwtProviders[0].algorithms[0]: "HS256" is never allowed (asymmetric algorithms only)',
    ],
    [
      'a clock skew over 5 minutes',
      jwt({ localJwks: JWKS, clockSkewMs: 600_000 }),
      'authProviders.jwtProviders[0].clockSkewMs: must be an integer in 0..300000 (got 600000)',
    ],
    [
      'a JWKS URI with another scheme',
      jwt({ remoteJwksUri: 'file:///etc/jwks' }),
      'authProviders.jwtProviders[0].remoteJwksUri: must use http or https (got "file:///etc/jwks")',
    ],
    [
      'an inline JWKS that is not one',
      jwt({ localJwks: '{"kty":"RSA"}' }),
      'authProviders.jwtProviders[0].localJwks: not a JSON Web Key Set: JSON Web Key Set malformed',
    ],
    [
      'a key digest that is not SHA-256 hex',
      listenerWith({
        apiKeySets: [{ name: 'k', clients: [{ id: 'c', keys: [{ id: 'k1', sha256: 'secret' }] }] }],
      }),
      'authProviders.apiKeySets[0].clients[0].keys[0].sha256: must be the SHA-256 of the key as 64 hex digits',
    ],
    [
      'an expiry that is not RFC 3339',
      listenerWith({
        apiKeySets: [
          { name: 'k', clients: [{ id: 'c', keys: [{ id: 'k1', sha256: DIGEST, expiresAt: 'soon' }] }] },
        ],
      }),
      'authProviders.apiKeySets[0].clients[0].keys[0].expiresAt: must be an RFC 3339 time such as 2030-01-31T00:00:00Z (got "soon")',
    ],
    [
      'a policy naming an unknown provider',
      listenerWith({}, { jwt: { providers: ['nope'] } }),
      'auth.jwt.providers[0]: no JwtProvider named "nope" in authProviders',
    ],
    [
      'a rule without an action',
      listenerWith({}, { rules: [{ clientCidrs: ['10.0.0.0/8'] }] }),
      'auth.rules[0].action: must be AUTH_ALLOW or AUTH_DENY',
    ],
    [
      'a bad CIDR',
      listenerWith({}, { rules: [{ action: 'AUTH_DENY', clientCidrs: ['10.0.0.0/33'] }] }),
      'auth.rules[0].clientCidrs[0]: must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32 (got "10.0.0.0/33")',
    ],
    [
      'a rule on API keys in a policy without them',
      listenerWith({}, { rules: [{ action: 'AUTH_ALLOW', apiKeyScopes: ['write'] }] }),
      'auth.rules[0]: looks at API keys but the policy has no apiKey',
    ],
    [
      'a CORS origin with a path',
      listenerWith({}, { cors: { allowOrigins: ['https://a.example/app'] } }),
      'auth.cors.allowOrigins[0]: must be an origin such as https://app.example.com or https://*.example.com, or * (got "https://a.example/app")',
    ],
  ])('rejects %s', (_name, listener, message) => {
    let error: unknown;
    try {
      createEdgeAuthFilter(listener, undefined, undefined, new JwksRegistry({ prefetch: false }));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(EdgeAuthConfigError);
    expect((error as Error).message).toBe(message);
  });
});

describe('CORS', () => {
  const cors = compileCors(
    {
      allowOrigins: ['https://*.example.com', 'http://localhost:3000'],
      allowMethods: ['PUT'],
      allowHeaders: ['*'],
    },
    'cors',
  );
  it.each([
    ['https://app.example.com', true],
    ['https://a.b.example.com', true],
    ['HTTPS://APP.EXAMPLE.COM', true],
    ['https://example.com', false],
    ['http://app.example.com', false],
    ['https://app.example.com:8443', false],
    ['https://evil.test/.example.com', false],
    ['http://localhost:3000', true],
    ['http://localhost:3001', false],
  ])('origin %s allowed: %s', (origin, allowed) => {
    expect(originAllowed(cors, origin)).toBe(allowed);
  });

  it('echoes requested headers for a * allowHeaders, and allows safelisted methods', () => {
    expect(
      preflight(cors, {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'X-Trace, Content-Type',
      }),
    ).toEqual({
      status: 204,
      headers: {
        'access-control-allow-origin': 'https://app.example.com',
        'access-control-allow-methods': 'PUT',
        'access-control-allow-headers': 'x-trace, content-type',
        vary: 'Origin',
      },
    });
  });
});

describe('JWT scopes', () => {
  it.each([
    [{ scope: 'a b  c' }, ['a', 'b', 'c']],
    [{ scp: ['a', 'b'] }, ['a', 'b']],
    [{ scp: 'x y' }, ['x', 'y']],
    [{ scope: 7 }, []],
  ])('%j → %j', (claims, scopes) => {
    expect([...scopesOf(claims)]).toEqual(scopes);
  });
});

describe('API keys', () => {
  const set = compileApiKeySet(
    {
      name: 'partners',
      clients: [
        {
          id: 'acme',
          plan: 'pro',
          keys: [
            { id: 'old', sha256: hashApiKey('old-key'), expiresAt: '2030-01-01T00:00:00Z', scopes: ['read'] },
            { id: 'new', sha256: hashApiKey('new-key').toUpperCase(), scopes: ['read', 'write'] },
          ],
        },
      ],
    },
    'apiKeySets[0]',
  );
  const before = Date.parse('2029-12-31T23:59:59Z');
  const after = Date.parse('2030-01-01T00:00:00Z');

  it('accepts both keys of a client during the overlap, each with its own id and scopes', () => {
    const old = set.check('old-key', before);
    const fresh = set.check('new-key', before);
    expect(old.ok && [old.identity.clientId, old.identity.keyId, old.identity.plan]).toEqual([
      'acme',
      'old',
      'pro',
    ]);
    expect(fresh.ok && [...fresh.identity.scopes]).toEqual(['read', 'write']);
  });

  it('refuses a key from its expiry on, and an unknown key', () => {
    expect(set.check('old-key', after)).toEqual({ ok: false, reason: 'expired key' });
    expect(set.check('new-key', after).ok).toBe(true);
    expect(set.check('old-key ', before)).toEqual({ ok: false, reason: 'unknown key' });
  });
});

describe('remote JWKS', () => {
  let server: Server;
  let keys: Record<string, unknown>[] = [];
  let down = false;
  let fetches = 0;
  let uri = '';
  let a: { kid: string; key: webcrypto.CryptoKey };
  let b: { kid: string; key: webcrypto.CryptoKey };
  let aJwk: Record<string, unknown> = {};
  let bJwk: Record<string, unknown> = {};

  beforeAll(async () => {
    const make = async (kid: string) => {
      const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
      return { kid, key: privateKey as webcrypto.CryptoKey, jwk: { ...(await exportJWK(publicKey)), kid } };
    };
    const [ka, kb] = await Promise.all([make('a'), make('b')]);
    a = ka;
    b = kb;
    keys = [ka.jwk];
    server = createServer((_req: IncomingMessage, res: ServerResponse) => {
      fetches++;
      if (down) res.writeHead(500).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
    aJwk = ka.jwk;
    bJwk = kb.jwk;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  const token = (k: { kid: string; key: webcrypto.CryptoKey }) =>
    new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: k.kid }).setExpirationTime('1m').sign(k.key);

  it('refetches for an unknown kid at most once per cooldown, and finds a key published meanwhile', async () => {
    const registry = new JwksRegistry({ prefetch: false });
    const provider = compileJwtProvider(
      { name: 'p', remoteJwksUri: uri, jwksCooldownMs: 60_000, jwksCacheMs: 600_000 },
      'p',
      registry,
    );
    fetches = 0;
    await expect(provider.verify(await token(a))).resolves.toBeDefined();
    expect(fetches).toBe(1);
    const unknown = await token(b);
    // A flood of tokens with an unknown kid: one refetch (single flight), then refused from cache.
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => provider.verify(unknown)));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(fetches).toBe(2);
    await expect(provider.verify(unknown)).rejects.toThrow('unknown signing key');
    expect(fetches).toBe(2);
    // The IdP publishes b: still within the cooldown, no refetch yet.
    keys = [aJwk, bJwk];
    await expect(provider.verify(unknown)).rejects.toThrow('unknown signing key');
    expect(fetches).toBe(2);
    // A set whose last unknown-kid refetch is older than the cooldown finds b on its first b token.
    keys = [aJwk];
    const fresh = compileJwtProvider(
      { name: 'q', remoteJwksUri: `${uri}?fresh`, jwksCooldownMs: 60_000 },
      'q',
      registry,
    );
    await expect(fresh.verify(await token(a))).resolves.toBeDefined();
    keys = [aJwk, bJwk];
    await expect(fresh.verify(unknown)).resolves.toBeDefined();
    expect(fetches).toBe(4);
  });

  it('keeps the last good keys while the endpoint fails, retrying no sooner than the cooldown', async () => {
    keys = [bJwk];
    const provider = compileJwtProvider(
      { name: 'p', remoteJwksUri: `${uri}?down`, jwksCacheMs: 1, jwksCooldownMs: 60_000 },
      'p',
      new JwksRegistry({ prefetch: false }),
    );
    const t = await token(b);
    await expect(provider.verify(t)).resolves.toBeDefined();
    down = true;
    fetches = 0;
    try {
      for (let i = 0; i < 10; i++) await expect(provider.verify(t)).resolves.toBeDefined();
      // Stale after 1 ms: the second verify started one background refresh; the cooldown holds off more.
      expect(fetches).toBeLessThanOrEqual(1);
    } finally {
      down = false;
    }
  });
});

describe('the filter on ProxyCore', () => {
  it('is named weft.filters.http.edge_auth and continues a request no policy covers', () => {
    const filter = createEdgeAuthFilter(
      listenerWith({}),
      undefined,
      undefined,
      new JwksRegistry({ prefetch: false }),
    );
    expect(filter.name).toBe(EDGE_AUTH_FILTER_NAME);
    const req = { method: 'GET', url: '/', headers: {} } as unknown as IncomingMessage;
    const ctx = new RequestContext(
      req,
      {} as unknown as ServerResponse,
      { name: 'gw', direction: 'GATEWAY', port: 1, xffNumTrustedHops: 0 },
      0,
    );
    ctx.upstreamHeaders = { 'x-weft-principal': 'spoof', 'x-weft-plan': 'gold', accept: '*/*' };
    expect(filter.onRequest?.(ctx)).toBe(CONTINUE);
    expect(ctx.upstreamHeaders).toEqual({ accept: '*/*' });
  });

  it('rejects a bad edge auth config with a ConfigError naming the listener and field, keeping the last good config', async () => {
    const config = (algorithms: string[]): ProxyConfig => ({
      listeners: [
        {
          ...listenerWith({ jwtProviders: [{ name: 'idp', localJwks: JWKS, algorithms }] }),
          address: '127.0.0.1',
        },
      ],
      routes: [{ name: 'r', virtualHosts: [] }],
      clusters: [],
      endpoints: [],
    });
    const proxy = new ProxyCore({ listenerFilters: [edgeAuthFactory()] });
    try {
      await proxy.apply(config(['ES256']), '1');
      let error: unknown;
      try {
        await proxy.apply(config(['HS512']), '2');
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toEqual([
        'Listener gw: authProviders.jwtProviders[0].algorithms[0]: "HS512" is never allowed (asymmetric algorithms only)',
      ]);
      expect(proxy.version).toBe('1');
    } finally {
      await proxy.close(0);
    }
  });
});
