/**
 * Keeps sidecar/proxy/config/types.ts and proto/weft/v1/config.proto in step: `FULL` is typed
 * as `Bootstrap` (so tsc rejects a field the TypeScript types lack) and must set every field
 * the proto declares (checked by walking the proto schema), and pass the proto schema check.
 */
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { checkAgainstProto, configSchema } from '../../../sidecar/proxy/config/schema.ts';
import type { AuthPolicy, Bootstrap, HeaderModifier } from '../../../sidecar/proxy/config/types.ts';

const mod: HeaderModifier = {
  set: [{ name: 'a', value: '1' }],
  add: [{ name: 'b', value: '2' }],
  remove: ['c'],
};

const AUTH: AuthPolicy = {
  name: 'ns/edge',
  jwt: { providers: ['idp'], optional: true },
  apiKey: { keySet: 'keys', optional: true, forwardClientIdHeader: 'x-client', sanitize: true },
  defaultAction: 'AUTH_DENY',
  rules: [
    {
      name: 'r',
      action: 'AUTH_ALLOW',
      clientCidrs: ['10.0.0.0/8'],
      methods: ['GET'],
      jwtProvider: 'idp',
      jwtScopes: ['read'],
      jwtClaims: [{ name: 'tier', values: ['gold'] }],
      apiKey: true,
      apiKeyScopes: ['write'],
      apiKeyClients: ['acme'],
      plans: ['pro'],
    },
  ],
  cors: {
    allowOrigins: ['https://*.example.com'],
    allowMethods: ['GET'],
    allowHeaders: ['x-a'],
    exposeHeaders: ['x-b'],
    maxAgeSeconds: 600,
    allowCredentials: true,
  },
};

const FULL: Bootstrap = {
  node: { id: 'web-1', service: 'web', namespace: 'default', workload: 'web-v1' },
  admin: { address: '127.0.0.1', port: 15000 },
  listeners: [
    {
      name: 'outbound',
      address: '127.0.0.1',
      port: 15001,
      direction: 'OUTBOUND',
      routeConfigName: 'r',
      limits: {
        maxRequestHeadersBytes: 16384,
        maxRequestHeadersCount: 100,
        requestHeadersTimeoutMs: 10000,
        idleTimeoutMs: 60000,
        maxConnections: 1000,
        requestTimeoutMs: 0,
        maxRequestUrlBytes: 8192,
        http2MaxConcurrentStreams: 100,
        http2InitialStreamWindowBytes: 262144,
        http2InitialConnectionWindowBytes: 1048576,
        http2MaxResetsPerWindow: 200,
        http2ResetWindowMs: 10000,
        http2MaxInvalidFrames: 100,
        maxActiveRequests: 4096,
        maxEventLoopDelayMs: 200,
        streamIdleTimeoutMs: 300000,
      },
      xffNumTrustedHops: 1,
      drainTimeoutMs: 5000,
      tls: { mode: 'STRICT', maxConnectionAgeMs: 3600000 },
      serverTls: {
        certificates: [{ serverNames: ['a.example.test'], certificateName: 'a' }],
        minVersion: 'TLSv1.2',
        ciphers: 'ECDHE-RSA-AES128-GCM-SHA256',
      },
      rbac: {
        deny: [{ name: 'd', from: [{ notNamespaces: ['a'] }] }],
        allow: [
          {
            name: 'a',
            from: [
              { principals: ['td/ns/a/sa/b'], notPrincipals: ['x'], namespaces: ['a'], notNamespaces: ['b'] },
            ],
            to: [{ methods: ['GET'], notMethods: ['POST'], paths: ['/a/*'], notPaths: ['/a/admin'] }],
            when: [{ header: 'x-tenant', values: ['acme'], notValues: ['evil'] }],
          },
        ],
        allowEnforced: true,
      },
      authProviders: {
        jwtProviders: [
          {
            name: 'idp',
            issuer: 'https://idp.example',
            audiences: ['api'],
            remoteJwksUri: 'https://idp.example/jwks.json',
            localJwks: '{"keys":[]}',
            algorithms: ['RS256'],
            clockSkewMs: 30000,
            jwksCacheMs: 300000,
            jwksCooldownMs: 10000,
            jwksTimeoutMs: 5000,
            claimToHeaders: [{ claim: 'sub', header: 'x-user' }],
            sources: [{ header: 'authorization', valuePrefix: 'Bearer ', queryParam: 'q', cookie: 'c' }],
          },
        ],
        apiKeySets: [
          {
            name: 'keys',
            clients: [
              {
                id: 'acme',
                plan: 'pro',
                keys: [{ id: 'k1', sha256: 'ab', expiresAt: '2030-01-01T00:00:00Z', scopes: ['read'] }],
              },
            ],
            sources: [{ header: 'x-api-key' }],
          },
        ],
      },
      auth: AUTH,
      rateLimits: [
        {
          name: 'default/edge/limit-0',
          selectors: [{ source: 'SOURCE_HEADER', name: 'x-user', match: 'EQUALS', value: 'a', invert: true }],
          requests: 10,
          unit: 'PER_SECOND',
          burst: 5,
          plan: 'gold',
          global: true,
        },
      ],
      maxRequestBodyBytes: 1048576,
      responseCacheMaxBytes: 67108864,
      tcpProxy: { cluster: 'c', idleTimeoutMs: 3600000, maxConnections: 100, destinationPort: 6379 },
      inboundTcp: { ports: [6379], idleTimeoutMs: 3600000 },
    },
  ],
  routes: [
    {
      name: 'r',
      virtualHosts: [
        {
          name: 'vh',
          domains: ['svc'],
          routes: [
            {
              name: 'a',
              matches: [
                {
                  path: { type: 'PATH_PREFIX', value: '/a' },
                  headers: [{ name: 'x', type: 'EXACT', value: '1' }],
                  queryParams: [{ name: 'q', type: 'REGULAR_EXPRESSION', value: '.*' }],
                  method: 'GET',
                },
              ],
              route: {
                clusters: [
                  {
                    name: 'c',
                    weight: 1,
                    invalidReason: '',
                    requestHeaderModifier: mod,
                    responseHeaderModifier: mod,
                  },
                ],
              },
              requestHeaderModifier: mod,
              responseHeaderModifier: mod,
              urlRewrite: { hostname: 'h', path: { type: 'REPLACE_PREFIX_MATCH', value: '/b' } },
              timeouts: { requestMs: 1000, backendRequestMs: 500 },
              retry: {
                numRetries: 2,
                retryOnStatus: [503],
                retryOnConnectFailure: true,
                retryOnReset: true,
                perTryTimeoutMs: 200,
                backoffBaseMs: 25,
                backoffMaxMs: 250,
                retryMethods: ['GET'],
                maxBufferedBodyBytes: 65536,
                retryOnGrpcStatus: [14, 4],
              },
              fault: { delayMs: 100, delayPercent: 10, abortStatus: 503, abortPercent: 5 },
              mirrors: [{ cluster: 'c', percent: 50 }],
              auth: AUTH,
              rateLimits: [{ requests: 100, unit: 'PER_DAY' }],
              cache: { maxEntryBytes: 65536 },
              maxRequestBodyBytes: 4096,
            },
            {
              name: 'b',
              redirect: {
                scheme: 'https',
                hostname: 'h',
                port: 443,
                path: { type: 'REPLACE_FULL_PATH', value: '/' },
                statusCode: 301,
              },
            },
            { name: 'c', directResponse: { status: 200, body: 'ok', contentType: 'text/plain' } },
          ],
        },
      ],
    },
  ],
  clusters: [
    {
      name: 'c',
      lbPolicy: 'CONSISTENT_HASH',
      hashHeader: 'x-user',
      connectionPool: {
        maxConnectionsPerEndpoint: 10,
        connectTimeoutMs: 1000,
        idleTimeoutMs: 4000,
        maxRequestsPerConnection: 100,
      },
      tls: { enabled: true },
      circuitBreakers: {
        maxConnections: 10,
        maxPendingRequests: 10,
        maxRequests: 10,
        maxRetries: 3,
        errorThresholdPercent: 50,
        volumeThreshold: 20,
        resetTimeoutMs: 10000,
        windowMs: 10000,
      },
      outlierDetection: {
        consecutiveServerErrors: 5,
        consecutiveGatewayErrors: 3,
        intervalMs: 10000,
        baseEjectionTimeMs: 30000,
        maxEjectionPercent: 10,
        successRateMinimumHosts: 5,
        successRateRequestVolume: 100,
        successRateStdevFactor: 1900,
        panicThresholdPercent: 50,
      },
      healthCheck: {
        path: '/healthz',
        intervalMs: 5000,
        timeoutMs: 1000,
        healthyThreshold: 1,
        unhealthyThreshold: 3,
      },
      retryBudget: { percent: 20, minRetriesPerSecond: 10, windowMs: 10000 },
      protocol: 'HTTP2',
    },
  ],
  endpoints: [
    {
      clusterName: 'c',
      endpoints: [
        {
          address: '127.0.0.1',
          port: 8080,
          weight: 1,
          labels: { version: 'v1' },
          health: 'HEALTHY',
          identity: 'spiffe://td/ns/default/sa/c',
        },
      ],
    },
  ],
  trustBundle: { trustDomain: 'cluster.local', rootsPem: ['-----BEGIN CERTIFICATE-----'] },
  rateLimitService: { redisUrl: 'redis://127.0.0.1:6379', failMode: 'FAIL_CLOSED', timeoutMs: 100 },
  certificates: [
    {
      name: 'a',
      certChainPem: '-----BEGIN CERTIFICATE-----',
      privateKeyPem: '-----BEGIN PRIVATE KEY-----',
      certChainFile: '/etc/weft/a.crt',
      privateKeyFile: '/etc/weft/a.key',
    },
  ],
};

/** Gathers, per message type, every value of that type found anywhere under `values`. */
function collect(
  type: protobuf.Type,
  values: readonly unknown[],
  byType: Map<protobuf.Type, unknown[]>,
): void {
  const list = byType.get(type) ?? [];
  byType.set(type, list);
  list.push(...values);
  for (const field of type.fieldsArray) {
    if (!(field.resolvedType instanceof protobuf.Type) || field instanceof protobuf.MapField) continue;
    const present = values
      .map((v) => (v as Record<string, unknown>)[field.name])
      .filter((v) => v !== undefined)
      .flatMap((v) => (field.repeated && Array.isArray(v) ? v : [v]));
    if (present.length > 0) collect(field.resolvedType, present, byType);
  }
}

/** `Type.field` names that no value of that type sets, anywhere in the document. */
function unsetFields(root: protobuf.Type, doc: unknown): string[] {
  const byType = new Map<protobuf.Type, unknown[]>();
  collect(root, [doc], byType);
  const missing: string[] = [];
  for (const [type, values] of byType) {
    for (const field of type.fieldsArray) {
      if (!values.some((v) => (v as Record<string, unknown>)[field.name] !== undefined)) {
        missing.push(`${type.name}.${field.name}`);
      }
    }
  }
  return missing;
}

describe('proxy config types and proto', () => {
  it('a bootstrap that sets every TypeScript field passes the proto schema check', () => {
    expect(checkAgainstProto('weft.v1.Bootstrap', FULL)).toEqual([]);
  });

  it('every proto field has a TypeScript counterpart', () => {
    expect(unsetFields(configSchema().lookupType('weft.v1.Bootstrap'), FULL)).toEqual([]);
  });
});
