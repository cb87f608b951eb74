/**
 * The north-south translator (control-plane/translate/gateway.ts): hostname intersection, bind
 * port mapping, route attachment (sectionName, port, allowedRoutes namespaces and kinds), the
 * listener per port, certificates, and that every result is a config the proxy accepts.
 */
import { describe, expect, it } from 'vitest';
import type { Resource } from '../../../control-plane/resources/types.ts';
import { bindPort, intersectHostnames } from '../../../control-plane/translate/gateway.ts';
import { translate } from '../../../control-plane/translate/translate.ts';
import type { ProxyIdentity } from '../../../control-plane/translate/types.ts';
import { proxyProblems, registration, resource, service } from './helpers.ts';

function gatewayProxy(name = 'edge', namespace = 'default'): ProxyIdentity {
  return {
    proxyId: `gateway-${name}.${namespace}`,
    kind: 'gateway',
    service: name,
    namespace,
    workload: name,
    labels: {},
    outboundPort: 15001,
    inboundPort: 15006,
    appPort: 0,
    listenAddress: '127.0.0.1',
  };
}

const listeners = [
  { name: 'http', port: 8080, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'Same' } } },
  { name: 'public', port: 9090, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'All' } } },
  {
    name: 'grpc-only',
    port: 9191,
    protocol: 'HTTP',
    allowedRoutes: {
      namespaces: { from: 'Same' },
      kinds: [{ group: 'gateway.networking.k8s.io', kind: 'GRPCRoute' }],
    },
  },
  {
    name: 'tls',
    port: 443,
    protocol: 'HTTPS',
    hostname: '*.example.test',
    tls: { mode: 'Terminate', certificateRefs: [{ group: '', kind: 'Secret', name: 'wild' }] },
    allowedRoutes: { namespaces: { from: 'Same' } },
  },
  {
    name: 'elsewhere',
    port: 8443,
    protocol: 'HTTPS',
    tls: {
      mode: 'Terminate',
      certificateRefs: [{ group: '', kind: 'Secret', name: 'x', namespace: 'other' }],
    },
    allowedRoutes: { namespaces: { from: 'Same' } },
  },
];

function httpRoute(name: string, parentRefs: object[], extra: object = {}, namespace = 'default'): Resource {
  return resource(
    'HTTPRoute',
    name,
    { parentRefs, rules: [{ backendRefs: [{ name: 'web', namespace: 'default', port: 8080 }] }], ...extra },
    { namespace },
  );
}

function translateWith(routes: Resource[], proxy = gatewayProxy()) {
  const state = {
    revision: 7,
    resources: [
      service('web'),
      resource('Gateway', 'edge', { gatewayClassName: 'weft', listeners }),
      ...routes,
    ],
    endpoints: [registration('web', '127.0.0.9')],
  };
  return translate(state, proxy).config;
}

function domainsOf(config: ReturnType<typeof translateWith>, listener: string): Record<string, string[]> {
  const rc = config.routes.find((r) => r.name === listener);
  const out: Record<string, string[]> = {};
  for (const vh of rc?.virtualHosts ?? []) {
    for (const d of vh.domains ?? []) out[d] = (vh.routes ?? []).map((r) => r.name ?? '');
  }
  return out;
}

describe('Gateway API hostname intersection', () => {
  it.each([
    [undefined, [], ['*']],
    [undefined, ['a.test'], ['a.test']],
    ['a.test', [], ['a.test']],
    ['a.test', ['a.test', 'b.test'], ['a.test']],
    [
      '*.example.test',
      ['www.example.test', 'example.test', 'a.b.example.test'],
      ['www.example.test', 'a.b.example.test'],
    ],
    ['www.example.test', ['*.example.test'], ['www.example.test']],
    ['*.example.test', ['*.a.example.test'], ['*.a.example.test']],
    ['a.test', ['b.test'], []],
  ] as const)('listener %s × route %j → %j', (listener, route, expected) => {
    expect(intersectHostnames(listener, route)).toEqual(expected);
  });
});

describe('bind ports', () => {
  it('keeps unprivileged ports, maps privileged ones to +10000, honours overrides', () => {
    expect(bindPort(8080)).toBe(8080);
    expect(bindPort(1024)).toBe(1024);
    expect(bindPort(80)).toBe(10080);
    expect(bindPort(443)).toBe(10443);
    expect(bindPort(443, { '443': 0 })).toBe(0);
    expect(bindPort(80, { '443': 8443 })).toBe(10080);
  });
});

describe('route attachment to a Gateway', () => {
  it('one GATEWAY listener per port with edge limits, HTTPS with its SNI certificate; the cross-namespace certificateRef listener is left out', () => {
    const config = translateWith([]);
    expect(config.listeners.map((l) => [l.name, l.port, l.direction])).toEqual([
      ['gateway-443', 10443, 'GATEWAY'],
      ['gateway-8080', 8080, 'GATEWAY'],
      ['gateway-9090', 9090, 'GATEWAY'],
      ['gateway-9191', 9191, 'GATEWAY'],
    ]);
    const tls = config.listeners.find((l) => l.name === 'gateway-443');
    expect(tls?.serverTls?.certificates).toEqual([
      { serverNames: ['*.example.test'], certificateName: 'default/wild' },
    ]);
    expect(config.certificates).toEqual([{ name: 'default/wild' }]);
    expect(tls?.limits?.requestTimeoutMs).toBeGreaterThan(0);
    expect(tls?.limits?.maxConnections).toBeGreaterThan(0);
    expect(proxyProblems(config)).toEqual([]);
  });

  it('sectionName selects one listener; no sectionName and no port attaches to every listener that allows it', () => {
    const config = translateWith([
      httpRoute('only-http', [{ name: 'edge', sectionName: 'http' }]),
      httpRoute('everywhere', [{ name: 'edge' }], { hostnames: ['www.example.test'] }),
    ]);
    expect(domainsOf(config, 'gateway-8080')).toEqual({
      '*': ['default/only-http/rule-0'],
      'www.example.test': ['default/everywhere/rule-0'],
    });
    expect(domainsOf(config, 'gateway-443')).toEqual({ 'www.example.test': ['default/everywhere/rule-0'] });
    // kinds: GRPCRoute only.
    expect(domainsOf(config, 'gateway-9191')).toEqual({});
    expect(proxyProblems(config)).toEqual([]);
  });

  it('a GRPCRoute attaches where the listener kinds allow it, with its gRPC method matches', () => {
    const grpc = resource('GRPCRoute', 'greeter', {
      parentRefs: [{ name: 'edge', port: 9191 }],
      rules: [
        {
          matches: [{ method: { type: 'Exact', service: 'helloworld.Greeter', method: 'SayHello' } }],
          backendRefs: [{ name: 'web', port: 8080 }],
        },
      ],
    });
    const config = translateWith([grpc]);
    expect(domainsOf(config, 'gateway-9191')).toEqual({ '*': ['default/greeter/rule-0'] });
    const route = config.routes.find((r) => r.name === 'gateway-9191')?.virtualHosts?.[0]?.routes?.[0];
    expect(route?.matches?.[0]?.path).toEqual({ type: 'EXACT', value: '/helloworld.Greeter/SayHello' });
    expect(proxyProblems(config)).toEqual([]);
  });

  it('port and sectionName must both match; a route for another Gateway does not attach', () => {
    const config = translateWith([
      httpRoute('mismatch', [{ name: 'edge', sectionName: 'http', port: 9090 }]),
      httpRoute('by-port', [{ name: 'edge', port: 9090 }]),
      httpRoute('other-gw', [{ name: 'not-edge' }]),
    ]);
    expect(domainsOf(config, 'gateway-8080')).toEqual({});
    expect(domainsOf(config, 'gateway-9090')).toEqual({ '*': ['default/by-port/rule-0'] });
  });

  it('allowedRoutes: a route from another namespace attaches only where from is All', () => {
    const config = translateWith([
      httpRoute('foreign', [{ name: 'edge', namespace: 'default' }], {}, 'team'),
    ]);
    expect(domainsOf(config, 'gateway-8080')).toEqual({});
    expect(domainsOf(config, 'gateway-9090')).toEqual({ '*': ['team/foreign/rule-0'] });
  });

  it('backends are mesh clusters over mTLS with h2 (with the trust bundle), and no inbound cluster', () => {
    const state = {
      revision: 3,
      resources: [
        service('web'),
        resource('Gateway', 'edge', { gatewayClassName: 'weft', listeners }),
        httpRoute('web', [{ name: 'edge', sectionName: 'http' }]),
      ],
      endpoints: [registration('web', '127.0.0.9')],
      trustBundle: { trustDomain: 'td.test', rootsPem: ['-----BEGIN CERTIFICATE-----'] },
    };
    const { config } = translate(state, gatewayProxy());
    expect(config.clusters).toEqual([
      {
        name: 'outbound|8080|web.default',
        lbPolicy: 'LEAST_REQUEST',
        tls: { enabled: true },
        protocol: 'HTTP2',
      },
    ]);
    expect(config.endpoints[0]?.endpoints?.[0]?.identity).toBe('spiffe://td.test/ns/default/sa/web');
    expect(config.trustBundle?.trustDomain).toBe('td.test');
  });

  it('a gateway proxy for a Gateway that does not exist gets an empty config', () => {
    const config = translateWith([], gatewayProxy('missing'));
    expect(config.listeners).toEqual([]);
  });
});

describe('edge policies on one route', () => {
  it('a route with both a SecurityPolicy and a RateLimitPolicy gets its auth and its rate limits', () => {
    const config = translateWith([
      httpRoute('partner', [{ name: 'edge', sectionName: 'http' }]),
      resource('SecurityPolicy', 'partner-auth', {
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'partner' }],
        apiKeyAuth: { clients: [{ id: 'acme', keys: [{ id: 'k1', sha256: 'a'.repeat(64) }] }] },
      }),
      resource('RateLimitPolicy', 'partner-limits', {
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'partner' }],
        type: 'Local',
        limits: [
          { clientSelectors: [{ clientId: { type: 'Distinct' } }], limit: { requests: 5, unit: 'Second' } },
        ],
      }),
    ]);
    const routes = (config.routes ?? []).flatMap((rc) =>
      (rc.virtualHosts ?? []).flatMap((vh) => vh.routes ?? []),
    );
    const partner = routes.filter((r) => r.name?.startsWith('default/partner/'));
    expect(partner.length).toBeGreaterThan(0);
    for (const r of partner) {
      expect(r.auth, r.name).toBeDefined();
      expect(
        r.rateLimits?.map((l) => [l.name, l.requests, l.unit]),
        r.name,
      ).toEqual([['default/partner-limits/limit-0', 5, 'PER_SECOND']]);
    }
    expect(proxyProblems(config)).toEqual([]);
  });
});
