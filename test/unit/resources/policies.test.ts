/**
 * Weft's policies (BackendTrafficPolicy, AuthorizationPolicy, SecurityPolicy, RateLimitPolicy):
 * targetRefs, defaults and invalid specs, each case naming resource, field and reason.
 */
import { describe, expect, it } from 'vitest';
import { doc, errorsOf, fixtureDoc, specOf } from './helpers.ts';

const svcTarget = [{ kind: 'Service', name: 'reviews' }];
const routeTarget = [{ kind: 'HTTPRoute', name: 'api' }];
const btp = (spec: Record<string, unknown>) =>
  doc('BackendTrafficPolicy', { targetRefs: svcTarget, ...spec }, 'p');
const authz = (spec: Record<string, unknown>) => doc('AuthorizationPolicy', spec, 'p');
const sec = (spec: Record<string, unknown>) =>
  doc('SecurityPolicy', { targetRefs: routeTarget, ...spec }, 'p');
const rl = (spec: Record<string, unknown>) =>
  doc('RateLimitPolicy', { targetRefs: routeTarget, ...spec }, 'p');
const limit = { limit: { requests: 10, unit: 'Second' } };

describe('targetRefs', () => {
  it('defaults the group by kind and stores core as ""', () => {
    const spec = specOf(
      doc('AuthorizationPolicy', {
        targetRefs: [
          { kind: 'Service', name: 'a' },
          { group: 'core', kind: 'Service', name: 'b' },
          { kind: 'Gateway', name: 'edge' },
        ],
      }),
    ) as { targetRefs: unknown };
    expect(spec.targetRefs).toEqual([
      { group: '', kind: 'Service', name: 'a' },
      { group: '', kind: 'Service', name: 'b' },
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'edge' },
    ]);
  });

  it.each([
    [
      'a kind the policy cannot target',
      btp({ targetRefs: [{ kind: 'HTTPRoute', name: 'api' }] }),
      ['BackendTrafficPolicy default/p: spec.targetRefs[0].kind: must be one of Service (got "HTTPRoute")'],
    ],
    [
      'a wrong group for the kind',
      btp({ targetRefs: [{ group: 'weft.dev', kind: 'Service', name: 'reviews' }] }),
      [
        'BackendTrafficPolicy default/p: spec.targetRefs[0].group: must be "" for kind Service (or "core") (got "weft.dev")',
      ],
    ],
    [
      'no targets',
      btp({ targetRefs: [] }),
      ['BackendTrafficPolicy default/p: spec.targetRefs: must not be empty'],
    ],
    [
      'missing targets',
      doc('RateLimitPolicy', { limits: [limit] }, 'p'),
      ['RateLimitPolicy default/p: spec.targetRefs: is required'],
    ],
    [
      'a duplicate target',
      sec({
        targetRefs: [...routeTarget, { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'api' }],
        cors: {},
      }),
      [
        'SecurityPolicy default/p: spec.targetRefs[1]: duplicate target HTTPRoute/api (also at spec.targetRefs[0])',
      ],
    ],
    [
      '17 targets',
      btp({ targetRefs: Array.from({ length: 17 }, (_, i) => ({ kind: 'Service', name: `s${i}` })) }),
      ['BackendTrafficPolicy default/p: spec.targetRefs: must have at most 16 items (got 17)'],
    ],
  ])('rejects %s', (_name, input, expected) => {
    expect(errorsOf(input)).toEqual(expected);
  });
});

describe('BackendTrafficPolicy', () => {
  it('fills defaults inside present sections only', () => {
    expect(
      specOf(
        btp({
          retry: { budget: {} },
          circuitBreaker: { maxConnections: 10 },
          outlierDetection: {},
          healthCheck: { active: { type: 'HTTP', http: { path: '/healthz' } } },
        }),
      ),
    ).toEqual({
      targetRefs: [{ group: '', kind: 'Service', name: 'reviews' }],
      retry: { numRetries: 2, budget: { percent: 20, minRetriesPerSecond: 3 } },
      circuitBreaker: {
        maxConnections: 10,
        maxPendingRequests: 1024,
        maxParallelRequests: 1024,
        maxParallelRetries: 1024,
      },
      outlierDetection: {
        consecutive5xxErrors: 5,
        consecutiveGatewayErrors: 0,
        interval: '3s',
        baseEjectionTime: '30s',
        maxEjectionPercent: 10,
      },
      healthCheck: {
        active: {
          type: 'HTTP',
          http: { path: '/healthz' },
          interval: '3s',
          timeout: '1s',
          healthyThreshold: 1,
          unhealthyThreshold: 3,
        },
      },
    });
    expect(specOf(btp({}))).toEqual({ targetRefs: [{ group: '', kind: 'Service', name: 'reviews' }] });
  });

  const B = 'BackendTrafficPolicy default/p: spec';
  it.each([
    [
      'an unknown load balancer',
      btp({ loadBalancer: { type: 'Maglev' } }),
      [
        `${B}.loadBalancer.type: must be one of RoundRobin, LeastRequest, Random, ConsistentHash (got "Maglev")`,
      ],
    ],
    [
      'ConsistentHash without its settings',
      btp({ loadBalancer: { type: 'ConsistentHash' } }),
      [`${B}.loadBalancer.consistentHash: is required when type is ConsistentHash`],
    ],
    [
      'consistentHash with RoundRobin',
      btp({
        loadBalancer: { type: 'RoundRobin', consistentHash: { type: 'Header', header: { name: 'x' } } },
      }),
      [`${B}.loadBalancer.consistentHash: must not be set when type is RoundRobin`],
    ],
    [
      'a hash on an unsupported key',
      btp({ loadBalancer: { type: 'ConsistentHash', consistentHash: { type: 'SourceIP' } } }),
      [
        `${B}.loadBalancer.consistentHash.type: must be one of Header (got "SourceIP")`,
        `${B}.loadBalancer.consistentHash.header: is required`,
      ],
    ],
    [
      'negative retries',
      btp({ retry: { numRetries: -1 } }),
      [`${B}.retry.numRetries: must be an integer 0..100 (got -1)`],
    ],
    [
      'an unknown retry trigger',
      btp({ retry: { retryOn: { triggers: ['5xx', 'timeout'] } } }),
      [
        `${B}.retry.retryOn.triggers[1]: must be one of 5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable (got "timeout")`,
      ],
    ],
    [
      'a gRPC trigger spelled with an underscore',
      btp({ retry: { retryOn: { triggers: ['unavailable', 'deadline_exceeded'] } } }),
      [
        `${B}.retry.retryOn.triggers[1]: must be one of 5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable (got "deadline_exceeded")`,
      ],
    ],
    [
      'status codes without their trigger',
      btp({ retry: { retryOn: { triggers: ['reset'], httpStatusCodes: [503] } } }),
      [`${B}.retry.retryOn.triggers: must include retriable-status-codes when httpStatusCodes are set`],
    ],
    [
      'a status code out of range',
      btp({ retry: { retryOn: { httpStatusCodes: [99] } } }),
      [`${B}.retry.retryOn.httpStatusCodes[0]: must be an integer 100..599 (got 99)`],
    ],
    [
      'maxInterval below baseInterval',
      btp({ retry: { perRetry: { backOff: { baseInterval: '1s', maxInterval: '100ms' } } } }),
      [`${B}.retry.perRetry.backOff.maxInterval: must be at least baseInterval (1s) (got 100ms)`],
    ],
    [
      'a zero per-retry timeout',
      btp({ retry: { perRetry: { timeout: '0s' } } }),
      [
        `${B}.retry.perRetry.timeout: must be a duration of at least 1ms such as 10s, 1m30s or 500ms (GEP-2257) (got "0s")`,
      ],
    ],
    [
      'a budget over 100 %',
      btp({ retry: { budget: { percent: 150 } } }),
      [`${B}.retry.budget.percent: must be a number 0..100 (got 150)`],
    ],
    [
      'a connect timeout in seconds as a number',
      btp({ timeout: { tcp: { connectTimeout: 5 } } }),
      [
        `${B}.timeout.tcp.connectTimeout: must be a duration of at least 1ms such as 10s, 1m30s or 500ms (GEP-2257) (got number 5)`,
      ],
    ],
    [
      'a zero TCP idle timeout',
      btp({ timeout: { tcp: { idleTimeout: '0s' } } }),
      [
        `${B}.timeout.tcp.idleTimeout: must be a duration of at least 1ms such as 10s, 1m30s or 500ms (GEP-2257) (got "0s")`,
      ],
    ],
    [
      'a negative circuit breaker limit',
      btp({ circuitBreaker: { maxConnections: -5 } }),
      [`${B}.circuitBreaker.maxConnections: must be an integer >= 0 (got -5)`],
    ],
    [
      'maxEjectionPercent over 100',
      btp({ outlierDetection: { maxEjectionPercent: 101 } }),
      [`${B}.outlierDetection.maxEjectionPercent: must be an integer 0..100 (got 101)`],
    ],
    [
      'Envoy Gateway spelling consecutive5XxErrors',
      btp({ outlierDetection: { consecutive5XxErrors: 3 } }),
      [
        `${B}.outlierDetection.consecutive5XxErrors: unknown field (known: consecutive5xxErrors, consecutiveGatewayErrors, interval, baseEjectionTime, maxEjectionPercent)`,
      ],
    ],
    [
      'an active check without http',
      btp({ healthCheck: { active: { type: 'HTTP' } } }),
      [`${B}.healthCheck.active.http: is required`],
    ],
    [
      'a health check path without /',
      btp({ healthCheck: { active: { type: 'HTTP', http: { path: 'healthz' } } } }),
      [`${B}.healthCheck.active.http.path: must be an absolute path such as /healthz (got "healthz")`],
    ],
    [
      'a health check timeout above its interval',
      btp({ healthCheck: { active: { type: 'HTTP', http: { path: '/' }, interval: '1s', timeout: '2s' } } }),
      [`${B}.healthCheck.active.timeout: must not exceed interval (1s) (got 2s)`],
    ],
    [
      'a TCP health check',
      btp({ healthCheck: { active: { type: 'TCP', http: { path: '/' } } } }),
      [`${B}.healthCheck.active.type: must be one of HTTP (got "TCP")`],
    ],
    [
      'passive health checks under healthCheck (Envoy Gateway layout)',
      btp({ healthCheck: { passive: {} } }),
      [`${B}.healthCheck.passive: unknown field (known: active)`],
    ],
  ])('rejects %s', (_name, input, expected) => {
    expect(errorsOf(input)).toEqual(expected);
  });
});

describe('AuthorizationPolicy', () => {
  it('defaults action to ALLOW; targetRefs are optional (the whole namespace)', () => {
    expect(specOf(authz({}))).toEqual({ action: 'ALLOW' });
  });

  it.each([
    [
      'wildcards at either end',
      authz({
        rules: [
          {
            from: [{ source: { principals: ['*'], namespaces: ['team-*'] } }],
            to: [{ operation: { paths: ['/api/*', '*/info'], methods: ['GET', '*'] } }],
          },
        ],
      }),
    ],
    [
      'principals with spiffe://',
      authz({
        action: 'DENY',
        rules: [{ from: [{ source: { principals: ['spiffe://cluster.local/ns/a/sa/b'] } }] }],
      }),
    ],
    ['a rule with no conditions', authz({ rules: [{}] })],
  ])('accepts %s', (_name, d) => {
    expect(errorsOf(d)).toEqual([]);
  });

  const A = 'AuthorizationPolicy default/p: spec';
  it.each([
    [
      'an unknown action',
      authz({ action: 'AUDIT' }),
      [`${A}.action: must be one of ALLOW, DENY (got "AUDIT")`],
    ],
    [
      'an Istio-style selector',
      authz({ selector: { matchLabels: { app: 'x' } } }),
      [`${A}.selector: unknown field (known: targetRefs, action, rules)`],
    ],
    [
      'an empty source',
      authz({ rules: [{ from: [{ source: {} }] }] }),
      [
        `${A}.rules[0].from[0].source: set at least one of principals, notPrincipals, namespaces, notNamespaces`,
      ],
    ],
    [
      'an empty operation',
      authz({ rules: [{ to: [{ operation: {} }] }] }),
      [`${A}.rules[0].to[0].operation: set at least one of paths, notPaths, methods, notMethods`],
    ],
    [
      'a * in the middle',
      authz({ rules: [{ to: [{ operation: { paths: ['/a/*/b'] } }] }] }),
      [`${A}.rules[0].to[0].operation.paths[0]: may hold "*" only at its start or end (got "/a/*/b")`],
    ],
    [
      'a relative path',
      authz({ rules: [{ to: [{ operation: { paths: ['api'] } }] }] }),
      [`${A}.rules[0].to[0].operation.paths[0]: must be a path starting with "/" (got "api")`],
    ],
    [
      'a method with a space',
      authz({ rules: [{ to: [{ operation: { methods: ['GET POST'] } }] }] }),
      [`${A}.rules[0].to[0].operation.methods[0]: must be an HTTP method such as GET (got "GET POST")`],
    ],
    [
      'an upper-case namespace',
      authz({ rules: [{ from: [{ source: { namespaces: ['Shop'] } }] }] }),
      [`${A}.rules[0].from[0].source.namespaces[0]: must be a namespace name (got "Shop")`],
    ],
    [
      'a HTTPRoute target',
      authz({ targetRefs: routeTarget }),
      [`${A}.targetRefs[0].kind: must be one of Service, Gateway (got "HTTPRoute")`],
    ],
  ])('rejects %s', (_name, input, expected) => {
    expect(errorsOf(input)).toEqual(expected);
  });
});

describe('SecurityPolicy', () => {
  it('defaults authorization.defaultAction to Deny and localJWKS.type to Inline', () => {
    const spec = specOf(
      sec({
        jwt: { providers: [{ name: 'local', localJWKS: { inline: '{"keys": []}' } }] },
        authorization: {},
      }),
    ) as Record<string, unknown>;
    expect(spec.authorization).toEqual({ defaultAction: 'Deny' });
    expect(spec.jwt).toEqual({
      providers: [{ name: 'local', localJWKS: { type: 'Inline', inline: '{"keys": []}' } }],
    });
  });

  const S = 'SecurityPolicy default/p: spec';
  const client = (key: Record<string, unknown> = {}) => ({
    id: 'a',
    keys: [{ id: 'k1', sha256: 'ab'.repeat(32), ...key }],
  });
  const remote = { remoteJWKS: { uri: 'https://idp.example/jwks.json' } };
  it.each([
    ['nothing to enforce', sec({}), [`${S}: set at least one of jwt, apiKeyAuth, authorization, cors`]],
    [
      'a provider with both JWKS sources',
      sec({ jwt: { providers: [{ name: 'a', ...remote, localJWKS: { inline: '{"keys":[]}' } }] } }),
      [`${S}.jwt.providers[0]: set only one of remoteJWKS, localJWKS (got remoteJWKS and localJWKS)`],
    ],
    [
      'a provider with no JWKS',
      sec({ jwt: { providers: [{ name: 'a' }] } }),
      [`${S}.jwt.providers[0]: set one of remoteJWKS, localJWKS`],
    ],
    [
      'a JWKS URI that is not http(s)',
      sec({ jwt: { providers: [{ name: 'a', remoteJWKS: { uri: 'file:///etc/jwks' } }] } }),
      [`${S}.jwt.providers[0].remoteJWKS.uri: must use http or https (got "file:///etc/jwks")`],
    ],
    [
      'an inline JWKS without keys',
      sec({ jwt: { providers: [{ name: 'a', localJWKS: { inline: '{"kty": "RSA"}' } }] } }),
      [
        `${S}.jwt.providers[0].localJWKS.inline: must be a JSON object with a "keys" list (got "{\\"kty\\": \\"RSA\\"}")`,
      ],
    ],
    [
      'duplicate provider names',
      sec({
        jwt: {
          providers: [
            { name: 'a', ...remote },
            { name: 'a', ...remote },
          ],
        },
      }),
      [`${S}.jwt.providers[1].name: duplicate provider name a (also at spec.jwt.providers[0])`],
    ],
    [
      'five providers',
      sec({ jwt: { providers: Array.from({ length: 5 }, (_, i) => ({ name: `p${i}`, ...remote })) } }),
      [`${S}.jwt.providers: must have at most 4 items (got 5)`],
    ],
    [
      'an authorization rule naming an unknown provider',
      sec({ authorization: { rules: [{ action: 'Allow', principal: { jwt: { provider: 'nope' } } }] } }),
      [
        `${S}.authorization.rules[0].principal.jwt.provider: no JWT provider named "nope" in spec.jwt.providers`,
      ],
    ],
    [
      'a bad CIDR',
      sec({ authorization: { rules: [{ action: 'Allow', principal: { clientCIDRs: ['10.0.0.0/33'] } }] } }),
      [
        `${S}.authorization.rules[0].principal.clientCIDRs[0]: prefix length must be 0..32 (got "10.0.0.0/33")`,
      ],
    ],
    [
      'a CIDR that is not an address',
      sec({ authorization: { rules: [{ action: 'Deny', principal: { clientCIDRs: ['office'] } }] } }),
      [
        `${S}.authorization.rules[0].principal.clientCIDRs[0]: must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32 (got "office")`,
      ],
    ],
    [
      'a rule with an empty principal',
      sec({ authorization: { rules: [{ action: 'Allow', principal: {} }] } }),
      [`${S}.authorization.rules[0].principal: set at least one of clientCIDRs, jwt, apiKey`],
    ],
    [
      'a lower-case action',
      sec({ authorization: { defaultAction: 'allow' } }),
      [`${S}.authorization.defaultAction: must be one of Allow, Deny (got "allow")`],
    ],
    [
      'an API key source with nothing',
      sec({ apiKeyAuth: { clients: [client()], extractFrom: [{}] } }),
      [`${S}.apiKeyAuth.extractFrom[0]: set at least one of headers, params, cookies`],
    ],
    [
      'API keys without clients',
      sec({ apiKeyAuth: { extractFrom: [{ headers: ['x-api-key'] }] } }),
      [`${S}.apiKeyAuth.clients: is required`],
    ],
    [
      'API keys in Secrets (Envoy Gateway credentialRefs)',
      sec({ apiKeyAuth: { credentialRefs: [{ name: 'keys' }] } }),
      [
        `${S}.apiKeyAuth.credentialRefs: Secrets are not supported: list the clients and their hashed keys in clients (weft apikey create)`,
      ],
    ],
    [
      'a key digest that is not SHA-256 hex',
      sec({ apiKeyAuth: { clients: [client({ sha256: 'secret-key' })] } }),
      [
        `${S}.apiKeyAuth.clients[0].keys[0].sha256: must be the SHA-256 of the key, 64 lower-case hex digits (got "secret-key")`,
      ],
    ],
    [
      'the same key for two clients',
      sec({ apiKeyAuth: { clients: [client(), { ...client(), id: 'b' }] } }),
      [
        `${S}.apiKeyAuth.clients[1].keys[0].sha256: the same key is listed twice (also at spec.apiKeyAuth.clients[0].keys[0].sha256)`,
      ],
    ],
    [
      'an expiry that is not RFC 3339',
      sec({ apiKeyAuth: { clients: [client({ expiresAt: 'tomorrow' })] } }),
      [
        `${S}.apiKeyAuth.clients[0].keys[0].expiresAt: must be an RFC 3339 time such as 2030-01-31T00:00:00Z (got "tomorrow")`,
      ],
    ],
    [
      'an apiKey rule without apiKeyAuth',
      sec({ authorization: { rules: [{ action: 'Allow', principal: { apiKey: { scopes: ['write'] } } }] } }),
      [`${S}.authorization.rules[0].principal.apiKey: needs spec.apiKeyAuth`],
    ],
    [
      'HS256 in the algorithm allowlist',
      sec({ jwt: { providers: [{ name: 'a', ...remote, algorithms: ['HS256'] }] } }),
      [
        `${S}.jwt.providers[0].algorithms[0]: must be one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, Ed25519 (got "HS256")`,
      ],
    ],
    [
      'a clock skew over 5m',
      sec({ jwt: { providers: [{ name: 'a', ...remote, clockSkew: '10m' }] } }),
      [
        `${S}.jwt.providers[0].clockSkew: must be a duration of at most 5m such as 10s, 1m30s or 500ms (GEP-2257) (got "10m")`,
      ],
    ],
    [
      'a CORS origin with a path',
      sec({ cors: { allowOrigins: ['https://a.example/app'] } }),
      [
        `${S}.cors.allowOrigins[0]: must be an origin such as https://app.example.com or https://*.example.com, or * (got "https://a.example/app")`,
      ],
    ],
    [
      'CORS maxAge in seconds as a number',
      sec({ cors: { maxAge: 600 } }),
      [`${S}.cors.maxAge: must be a duration such as 10s, 1m30s or 500ms (GEP-2257) (got number 600)`],
    ],
    [
      'basicAuth (not supported)',
      sec({ basicAuth: {} }),
      [`${S}.basicAuth: unknown field (known: targetRefs, jwt, apiKeyAuth, authorization, cors)`],
    ],
  ])('rejects %s', (_name, input, expected) => {
    expect(errorsOf(input)).toEqual(expected);
  });
});

describe('RateLimitPolicy', () => {
  it('defaults selector types to Exact', () => {
    const spec = specOf(
      rl({
        limits: [
          {
            clientSelectors: [
              { headers: [{ name: 'x-user', value: 'bob' }], sourceCIDR: { value: '10.0.0.0/8' } },
            ],
            ...limit,
          },
        ],
      }),
    ) as { limits: unknown };
    expect(spec.limits).toEqual([
      {
        clientSelectors: [
          {
            headers: [{ name: 'x-user', type: 'Exact', value: 'bob' }],
            sourceCIDR: { type: 'Exact', value: '10.0.0.0/8' },
          },
        ],
        ...limit,
      },
    ]);
  });

  it('accepts the fixture unchanged but for defaults', () => {
    expect(errorsOf(fixtureDoc('ratelimitpolicy'))).toEqual([]);
  });

  const R = 'RateLimitPolicy default/p: spec';
  it.each([
    ['no limits', rl({ limits: [] }), [`${R}.limits: must not be empty`]],
    [
      'zero requests',
      rl({ limits: [{ limit: { requests: 0, unit: 'Second' } }] }),
      [`${R}.limits[0].limit.requests: must be an integer >= 1 (got 0)`],
    ],
    [
      'a unit of weeks',
      rl({ limits: [{ limit: { requests: 1, unit: 'Week' } }] }),
      [`${R}.limits[0].limit.unit: must be one of Second, Minute, Hour, Day, Month (got "Week")`],
    ],
    [
      'a Distinct header with a value',
      rl({
        limits: [{ clientSelectors: [{ headers: [{ name: 'x', type: 'Distinct', value: 'a' }] }], ...limit }],
      }),
      [`${R}.limits[0].clientSelectors[0].headers[0].value: must not be set when type is Distinct`],
    ],
    [
      'an Exact header without a value',
      rl({ limits: [{ clientSelectors: [{ headers: [{ name: 'x' }] }], ...limit }] }),
      [`${R}.limits[0].clientSelectors[0].headers[0].value: is required when type is Exact`],
    ],
    [
      'a regular expression that does not compile',
      rl({
        limits: [
          {
            clientSelectors: [{ headers: [{ name: 'x', type: 'RegularExpression', value: '[' }] }],
            ...limit,
          },
        ],
      }),
      [
        expect.stringMatching(
          /^RateLimitPolicy default\/p: spec\.limits\[0\]\.clientSelectors\[0\]\.headers\[0\]\.value: invalid regular expression/,
        ),
      ],
    ],
    [
      'an empty selector',
      rl({ limits: [{ clientSelectors: [{}], ...limit }] }),
      [`${R}.limits[0].clientSelectors[0]: set at least one of headers, sourceCIDR, clientId, jwtClaim`],
    ],
    [
      'a plan that is not a DNS label',
      rl({ limits: [{ plan: 'Gold Plan', ...limit }] }),
      [
        `${R}.limits[0].plan: must be a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters) (got "Gold Plan")`,
      ],
    ],
    [
      'a limit without its unit',
      rl({ limits: [{ limit: { requests: 5 } }] }),
      [`${R}.limits[0].limit.unit: is required`],
    ],
    [
      'a Service target',
      rl({ targetRefs: svcTarget, limits: [limit] }),
      [`${R}.targetRefs[0].kind: must be one of Gateway, HTTPRoute, GRPCRoute (got "Service")`],
    ],
    [
      'an Exact clientId without a value',
      rl({ limits: [{ clientSelectors: [{ clientId: {} }], ...limit }] }),
      [`${R}.limits[0].clientSelectors[0].clientId.value: is required when type is Exact`],
    ],
    [
      'a Distinct JWT claim with invert',
      rl({
        limits: [
          { clientSelectors: [{ jwtClaim: { name: 'sub', type: 'Distinct', invert: true } }], ...limit },
        ],
      }),
      [`${R}.limits[0].clientSelectors[0].jwtClaim.invert: must not be true when type is Distinct`],
    ],
    [
      'a negative burst',
      rl({ limits: [{ limit: { requests: 5, unit: 'Second', burst: -1 } }] }),
      [`${R}.limits[0].limit.burst: must be an integer >= 0 (got -1)`],
    ],
    [
      'an unknown type',
      rl({ type: 'Cluster', limits: [limit] }),
      [`${R}.type: must be one of Local, Global (got "Cluster")`],
    ],
  ])('rejects %s', (_name, input, expected) => {
    expect(errorsOf(input)).toEqual(expected);
  });
});
