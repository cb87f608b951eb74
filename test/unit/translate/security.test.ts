/**
 * SecurityPolicy → edge auth config (control-plane/translate/security.ts): attachment (Gateway vs
 * route, oldest wins), the field mapping, and that what comes out is a config the proxy accepts
 * (proto schema and the edge auth compiler).
 */
import { describe, expect, it } from 'vitest';
import { discoveryService } from '../../../control-plane/discovery/proto.ts';
import { parseDocuments } from '../../../control-plane/resources/parse.ts';
import type { Resource, SecurityPolicySpec } from '../../../control-plane/resources/types.ts';
import { validateResources } from '../../../control-plane/resources/validate.ts';
import {
  attachEdgeAuth,
  type GatewayEdgeAuth,
  translateSecurityPolicies,
} from '../../../control-plane/translate/security.ts';
import { createEdgeAuthFilter } from '../../../gateway/filters/auth/filter.ts';
import { JwksRegistry } from '../../../gateway/filters/auth/jwks.ts';
import { checkAgainstProto } from '../../../sidecar/proxy/config/schema.ts';
import type { Bootstrap, Listener, Route } from '../../../sidecar/proxy/config/types.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';

const DIGEST = 'ab'.repeat(32);

function policies(yaml: string): Resource<SecurityPolicySpec>[] {
  const { resources, errors } = validateResources(parseDocuments(yaml, 'test.yaml'));
  expect(errors).toEqual([]);
  return resources as unknown as Resource<SecurityPolicySpec>[];
}

const EDGE = `
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: edge, namespace: gw, creationTimestamp: "2026-11-30T10:00:00Z" }
spec:
  targetRefs: [{ kind: Gateway, name: public }]
  authorization:
    rules:
      - { name: blocked, action: Deny, principal: { clientCIDRs: [198.51.100.0/24] } }
    defaultAction: Allow
  cors: { allowOrigins: ["https://*.example.com"], allowMethods: [GET], maxAge: 10m, allowCredentials: true }
`;

const ORDERS = `
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: orders-auth, namespace: shop, creationTimestamp: "2026-11-30T10:00:00Z" }
spec:
  targetRefs: [{ kind: HTTPRoute, name: orders }]
  jwt:
    providers:
      - name: idp
        issuer: https://idp.example/
        audiences: [orders]
        remoteJWKS: { uri: https://idp.example/jwks.json }
        claimToHeaders: [{ header: x-user, claim: email }]
        extractFrom: { headers: [{ name: Authorization, valuePrefix: "Bearer " }], cookies: [session] }
        clockSkew: 45s
  apiKeyAuth:
    clients:
      - id: acme
        plan: pro
        keys: [{ id: k1, sha256: ${DIGEST}, expiresAt: "2030-01-01T00:00:00Z", scopes: [read, write] }]
    extractFrom: [{ headers: [x-api-key] }]
    forwardClientIDHeader: x-client-id
    sanitize: true
    optional: true
  authorization:
    rules:
      - name: readers
        action: Allow
        operation: { methods: [GET] }
        principal: { jwt: { provider: idp, scopes: [orders:read], claims: [{ name: tier, values: [gold] }] } }
      - name: partners
        action: Allow
        principal: { apiKey: { plans: [pro], scopes: [write] } }
`;

const LATE = `
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: orders-late, namespace: shop, creationTimestamp: "2026-11-30T11:00:00Z" }
spec:
  targetRefs: [{ kind: HTTPRoute, name: orders }, { kind: HTTPRoute, name: other }]
  cors: { allowOrigins: ["*"] }
`;

const gateway = { namespace: 'gw', name: 'public' };
const routes = [
  { kind: 'HTTPRoute', namespace: 'shop', name: 'orders' },
  { kind: 'HTTPRoute', namespace: 'shop', name: 'catalog' },
] as const;

/** What the proxy would find wrong with a listener and routes carrying `auth`. */
function proxyAccepts(auth: GatewayEdgeAuth): void {
  const listener: Listener = { name: 'gw', port: 8080, direction: 'GATEWAY', routeConfigName: 'rc' };
  const made: Route[] = [
    { name: 'shop/orders/rule-0', route: { clusters: [{ name: 'c' }] } },
    { name: 'shop/catalog/rule-0', route: { clusters: [{ name: 'c' }] } },
  ];
  const attached = attachEdgeAuth(
    auth,
    listener,
    made,
    (r) => `HTTPRoute/${r.name?.split('/').slice(0, 2).join('/')}`,
  );
  const rc = { name: 'rc', virtualHosts: [{ name: 'vh', domains: ['*'], routes: attached.routes }] };
  const bootstrap: Bootstrap = { listeners: [attached.listener], routes: [rc] };
  expect(checkAgainstProto('weft.v1.Bootstrap', bootstrap)).toEqual([]);
  expect(() =>
    createEdgeAuthFilter(attached.listener, rc, compileRouteTable(rc), new JwksRegistry({ prefetch: false })),
  ).not.toThrow();
  expect(attached.routes[0]?.auth).toEqual(auth.routeAuth.get('HTTPRoute/shop/orders'));
  expect(attached.routes[1]?.auth).toBeUndefined();
  // And it crosses the discovery wire unchanged.
  const stream = discoveryService().Stream;
  if (stream === undefined) throw new Error('weft.v1.Discovery has no Stream method');
  const message = { snapshot: { version: '1', nonce: 'n', listeners: [attached.listener], routes: [rc] } };
  const decoded = stream.responseDeserialize(stream.responseSerialize(message)) as typeof message;
  expect(decoded.snapshot.listeners).toEqual([attached.listener]);
  expect(decoded.snapshot.routes).toEqual([rc]);
}

describe('translateSecurityPolicies', () => {
  it('maps a Gateway policy to the listener and a route policy to its routes, with qualified provider names', () => {
    const auth = translateSecurityPolicies(policies(`${EDGE}---${ORDERS}`), gateway, routes);
    expect(auth.conflicts).toEqual([]);
    expect(auth.listenerAuth).toEqual({
      name: 'gw/edge',
      defaultAction: 'AUTH_ALLOW',
      rules: [{ name: 'gw/edge/blocked', action: 'AUTH_DENY', clientCidrs: ['198.51.100.0/24'] }],
      cors: {
        allowOrigins: ['https://*.example.com'],
        allowMethods: ['GET'],
        maxAgeSeconds: 600,
        allowCredentials: true,
      },
    });
    expect([...auth.routeAuth.keys()]).toEqual(['HTTPRoute/shop/orders']);
    expect(auth.routeAuth.get('HTTPRoute/shop/orders')).toEqual({
      name: 'shop/orders-auth',
      jwt: { providers: ['shop/orders-auth/idp'] },
      apiKey: {
        keySet: 'shop/orders-auth',
        optional: true,
        forwardClientIdHeader: 'x-client-id',
        sanitize: true,
      },
      defaultAction: 'AUTH_DENY',
      rules: [
        {
          name: 'shop/orders-auth/readers',
          action: 'AUTH_ALLOW',
          methods: ['GET'],
          jwtProvider: 'shop/orders-auth/idp',
          jwtScopes: ['orders:read'],
          jwtClaims: [{ name: 'tier', values: ['gold'] }],
        },
        {
          name: 'shop/orders-auth/partners',
          action: 'AUTH_ALLOW',
          apiKey: true,
          apiKeyScopes: ['write'],
          plans: ['pro'],
        },
      ],
    });
    expect(auth.providers).toEqual({
      jwtProviders: [
        {
          name: 'shop/orders-auth/idp',
          issuer: 'https://idp.example/',
          audiences: ['orders'],
          remoteJwksUri: 'https://idp.example/jwks.json',
          clockSkewMs: 45000,
          claimToHeaders: [{ claim: 'email', header: 'x-user' }],
          sources: [{ header: 'Authorization', valuePrefix: 'Bearer ' }, { cookie: 'session' }],
        },
      ],
      apiKeySets: [
        {
          name: 'shop/orders-auth',
          clients: [
            {
              id: 'acme',
              plan: 'pro',
              keys: [
                { id: 'k1', sha256: DIGEST, expiresAt: '2030-01-01T00:00:00Z', scopes: ['read', 'write'] },
              ],
            },
          ],
          sources: [{ header: 'x-api-key' }],
        },
      ],
    });
    proxyAccepts(auth);
  });

  it('lets the oldest of two policies on one route win and reports the other', () => {
    const auth = translateSecurityPolicies(policies(`${LATE}---${ORDERS}`), gateway, routes);
    expect(auth.routeAuth.get('HTTPRoute/shop/orders')?.name).toBe('shop/orders-auth');
    expect(auth.conflicts).toEqual([
      'shop/orders-late: HTTPRoute shop/orders already has SecurityPolicy shop/orders-auth',
    ]);
  });

  it('ignores policies for other gateways, other namespaces and routes not attached', () => {
    const elsewhere = ORDERS.replace('namespace: shop', 'namespace: other');
    const auth = translateSecurityPolicies(
      policies(`${EDGE}---${elsewhere}---${LATE}`),
      { namespace: 'gw', name: 'private' },
      [{ kind: 'HTTPRoute', namespace: 'shop', name: 'catalog' }],
    );
    expect(auth).toEqual({
      providers: undefined,
      listenerAuth: undefined,
      routeAuth: new Map(),
      conflicts: [],
    });
  });

  it('turns a policy without authorization into allow-after-authentication', () => {
    const yaml = `
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: keys, namespace: gw }
spec:
  targetRefs: [{ kind: Gateway, name: public }]
  apiKeyAuth:
    clients: [{ id: c, keys: [{ id: k, sha256: ${DIGEST} }] }]
`;
    const auth = translateSecurityPolicies(policies(yaml), gateway, []);
    expect(auth.listenerAuth).toEqual({
      name: 'gw/keys',
      apiKey: { keySet: 'gw/keys' },
      defaultAction: 'AUTH_ALLOW',
    });
    expect(auth.providers).toEqual({
      apiKeySets: [{ name: 'gw/keys', clients: [{ id: 'c', keys: [{ id: 'k', sha256: DIGEST }] }] }],
    });
    proxyAccepts(auth);
  });
});
