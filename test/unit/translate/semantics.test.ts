/**
 * Translator semantics beyond the golden files: DNS names per client namespace, GAMMA producer
 * and consumer routes, rule merge order, what happens to rules Weft cannot express, and the
 * defensive choices that keep a snapshot acceptable to the proxy.
 */
import { describe, expect, it } from 'vitest';
import type { Resource } from '../../../control-plane/resources/types.ts';
import { grpcPath } from '../../../control-plane/translate/grpc.ts';
import { translate } from '../../../control-plane/translate/translate.ts';
import type { EndpointRegistration, ProxyIdentity } from '../../../control-plane/translate/types.ts';
import type { ProxyConfig } from '../../../sidecar/proxy/config/model.ts';
import type { Route, VirtualHost } from '../../../sidecar/proxy/config/types.ts';
import { proxyProblems, registration, resource, service, sidecar } from './helpers.ts';

function configOf(
  resources: Resource[],
  proxy: ProxyIdentity = sidecar('web'),
  endpoints: EndpointRegistration[] = [],
): ProxyConfig {
  const { config } = translate({ revision: 1, resources, endpoints }, proxy);
  expect(proxyProblems(config)).toEqual([]);
  return config;
}

function vhost(config: ProxyConfig, name: string): VirtualHost {
  const vh = config.routes.find((r) => r.name === 'outbound')?.virtualHosts?.find((v) => v.name === name);
  if (vh === undefined) throw new Error(`no virtual host ${name}`);
  return vh;
}

function routeNames(config: ProxyConfig, vh: string): string[] {
  return (vhost(config, vh).routes ?? []).map((r: Route) => r.name ?? '');
}

function httpRoute(
  name: string,
  spec: Record<string, unknown>,
  meta: { namespace?: string; creationTimestamp?: string } = {},
): Resource {
  return resource('HTTPRoute', name, spec, meta);
}

const parent = (name: string, namespace?: string) => ({
  parentRefs: [{ group: '', kind: 'Service', name, ...(namespace && { namespace }) }],
});

describe('virtual hosts', () => {
  it('a Service is reachable by its short name only from its own namespace (DNS search path)', () => {
    const resources = [service('api', 'shop')];
    expect(vhost(configOf(resources, sidecar('web', 'shop')), 'api.shop:8080').domains).toContain('api');
    expect(vhost(configOf(resources, sidecar('web', 'default')), 'api.shop:8080').domains).toEqual([
      'api.shop',
      'api.shop.svc',
      'api.shop.svc.cluster.local',
    ]);
  });

  it('two Services with one short name in different namespaces never share a domain', () => {
    const config = configOf([service('api', 'default'), service('api', 'shop')]);
    expect(vhost(config, 'api.default:8080').domains).toContain('api');
    expect(vhost(config, 'api.shop:8080').domains).not.toContain('api');
  });

  it('a domain is never served by two virtual hosts: the first Service in namespace/name order keeps it', () => {
    const config = configOf([service('x', 'default'), service('x.default', 'svc')]);
    const all = (config.routes.find((r) => r.name === 'outbound')?.virtualHosts ?? []).flatMap(
      (v) => v.domains ?? [],
    );
    expect(new Set(all).size).toBe(all.length);
    expect(vhost(config, 'x.default:8080').domains).toContain('x.default.svc');
  });

  it('a Service with only tcp ports gets no virtual host and no cluster', () => {
    const config = configOf([resource('Service', 'db', { ports: [{ port: 5432, appProtocol: 'tcp' }] })]);
    expect(config.routes.find((r) => r.name === 'outbound')?.virtualHosts).toEqual([]);
    expect(config.clusters.map((c) => c.name)).toEqual(['inbound|8080']);
  });
});

describe('route attachment (GAMMA)', () => {
  const echo = [service('echo', 'mesh'), service('echo-v2', 'mesh')];
  const producer = httpRoute(
    'p',
    { ...parent('echo'), rules: [{ backendRefs: [{ name: 'echo', port: 8080 }] }] },
    { namespace: 'mesh' },
  );
  const consumer = httpRoute(
    'c',
    {
      ...parent('echo', 'mesh'),
      rules: [{ backendRefs: [{ name: 'echo-v2', namespace: 'mesh', port: 8080 }] }],
    },
    { namespace: 'team' },
  );

  it('clients in the Service namespace get the producer route even when consumer routes exist elsewhere', () => {
    expect(
      routeNames(configOf([...echo, producer, consumer], sidecar('a', 'mesh')), 'echo.mesh:8080'),
    ).toEqual(['mesh/p/rule-0']);
  });

  it('clients in the consumer route namespace get only the consumer route', () => {
    expect(
      routeNames(configOf([...echo, producer, consumer], sidecar('a', 'team')), 'echo.mesh:8080'),
    ).toEqual(['team/c/rule-0']);
  });

  it('a consumer route alone does not change traffic from other namespaces (default forwarding)', () => {
    expect(routeNames(configOf([...echo, consumer], sidecar('a', 'other')), 'echo.mesh:8080')).toEqual([
      'default',
    ]);
  });

  it('a route naming the Service twice in parentRefs attaches once', () => {
    const r = httpRoute(
      'twice',
      {
        parentRefs: [
          { kind: 'Service', name: 'echo', namespace: 'mesh' },
          { kind: 'Service', name: 'echo', namespace: 'mesh', port: 8080 },
        ],
        rules: [{}],
      },
      { namespace: 'mesh' },
    );
    expect(routeNames(configOf([...echo, r], sidecar('a', 'mesh')), 'echo.mesh:8080')).toEqual([
      'mesh/twice/rule-0',
    ]);
  });

  it('a parentRef without kind (a Gateway) does not attach to the mesh', () => {
    const r = httpRoute(
      'edge',
      { parentRefs: [{ name: 'echo', namespace: 'mesh' }], rules: [{}] },
      { namespace: 'mesh' },
    );
    expect(routeNames(configOf([...echo, r], sidecar('a', 'mesh')), 'echo.mesh:8080')).toEqual(['default']);
  });

  it('rules merge oldest route first, then namespace/name, then rule index', () => {
    const rules = [
      { matches: [{ path: { type: 'PathPrefix', value: '/a' } }] },
      { matches: [{ path: { type: 'PathPrefix', value: '/b' } }] },
    ];
    const config = configOf([
      service('api'),
      httpRoute('zeta', { ...parent('api'), rules }, { creationTimestamp: '2026-11-30T09:00:00Z' }),
      httpRoute('beta', { ...parent('api'), rules }, { creationTimestamp: '2026-11-30T10:00:00Z' }),
      httpRoute('alpha', { ...parent('api'), rules }, { creationTimestamp: '2026-11-30T10:00:00Z' }),
    ]);
    expect(routeNames(config, 'api.default:8080')).toEqual([
      'default/zeta/rule-0',
      'default/zeta/rule-1',
      'default/alpha/rule-0',
      'default/alpha/rule-1',
      'default/beta/rule-0',
      'default/beta/rule-1',
    ]);
  });
});

describe('rules', () => {
  it('a rule with a value Weft cannot express is left out whole; the other rules stay', () => {
    const config = configOf([
      service('api'),
      httpRoute('r', {
        ...parent('api'),
        rules: [
          { matches: [{ path: { type: 'RegularExpression', value: '([' } }] },
          { matches: [{ headers: [{ name: 'x', type: 'Fuzzy', value: 'y' }] }] },
          { timeouts: { request: '1s', backendRequest: '2s' } },
          { timeouts: { request: 'soon' } },
          { filters: [{ type: 'Teleport' }] },
          { matches: [{ path: { type: 'Exact', value: '/ok' } }] },
        ],
      }),
    ]);
    expect(routeNames(config, 'api.default:8080')).toEqual(['default/r/rule-5']);
  });

  it('a Service whose routes were all left out answers 404 (no default route once routes attach)', () => {
    const config = configOf([
      service('api'),
      httpRoute('r', { ...parent('api'), rules: [{ filters: [{ type: 'Teleport' }] }] }),
    ]);
    expect(vhost(config, 'api.default:8080').routes).toEqual([]);
  });

  it('a redirect rule forwards nowhere, even with backendRefs, and drops a URL rewrite', () => {
    const config = configOf([
      service('api'),
      service('other'),
      httpRoute('r', {
        ...parent('api'),
        rules: [
          {
            filters: [
              { type: 'RequestRedirect', requestRedirect: { scheme: 'https' } },
              { type: 'URLRewrite', urlRewrite: { hostname: 'x' } },
            ],
            backendRefs: [{ name: 'other', port: 8080 }],
          },
        ],
      }),
    ]);
    const [route] = vhost(config, 'api.default:8080').routes ?? [];
    expect(route).toEqual({ name: 'default/r/rule-0', redirect: { scheme: 'https' } });
    expect(config.clusters.map((c) => c.name)).toEqual(['inbound|8080', 'outbound|8080|other.default']);
  });

  it('RequestMirror becomes a mirror; CORS, ExtensionRef and ExternalAuth are accepted and ignored for now', () => {
    const config = configOf([
      service('api'),
      httpRoute('r', {
        ...parent('api'),
        rules: [
          {
            filters: [
              { type: 'RequestMirror', requestMirror: { backendRef: { name: 'api', port: 8080 } } },
              { type: 'CORS', cors: { allowOrigins: ['*'] } },
              { type: 'ExtensionRef', extensionRef: { group: 'x', kind: 'y', name: 'z' } },
              { type: 'ExternalAuth', externalAuth: {} },
            ],
            backendRefs: [{ name: 'api', port: 8080 }],
          },
        ],
      }),
    ]);
    expect(vhost(config, 'api.default:8080').routes).toEqual([
      {
        name: 'default/r/rule-0',
        route: { clusters: [{ name: 'outbound|8080|api.default', weight: 1 }] },
        mirrors: [{ cluster: 'outbound|8080|api.default' }],
      },
    ]);
  });

  it('weight 0 is kept (no traffic) and a missing weight defaults to 1', () => {
    const config = configOf([
      service('api'),
      service('b'),
      httpRoute('r', {
        ...parent('api'),
        rules: [
          {
            backendRefs: [
              { name: 'api', port: 8080, weight: 0 },
              { name: 'b', port: 8080 },
            ],
          },
        ],
      }),
    ]);
    expect(vhost(config, 'api.default:8080').routes?.[0]?.route?.clusters?.map((c) => c.weight)).toEqual([
      0, 1,
    ]);
  });
});

describe('clusters and endpoints', () => {
  it('ConsistentHash without a usable header falls back to LEAST_REQUEST (the proxy would reject it)', () => {
    const config = configOf([
      service('api'),
      resource('BackendTrafficPolicy', 'p', {
        targetRefs: [{ group: '', kind: 'Service', name: 'api' }],
        loadBalancer: { type: 'ConsistentHash' },
      }),
    ]);
    expect(config.clusters.find((c) => c.name === 'outbound|8080|api.default')).toEqual({
      name: 'outbound|8080|api.default',
      lbPolicy: 'LEAST_REQUEST',
    });
  });

  it('the selector defaults to {app: <name>}, and an explicit selector needs every label', () => {
    const endpoints = [
      registration('api', '127.0.0.1'),
      registration('api', '127.0.0.2', { labels: { version: 'v2' } }),
      registration('api', '127.0.0.3', { labels: { version: 'v2' }, namespace: 'other' }),
    ];
    const config = configOf(
      [
        service('api'),
        resource('Service', 'api-v2', { selector: { app: 'api', version: 'v2' }, ports: [{ port: 8080 }] }),
      ],
      sidecar('web'),
      endpoints,
    );
    const addresses = (cluster: string) =>
      config.endpoints.find((e) => e.clusterName === cluster)?.endpoints?.map((e) => e.address);
    expect(addresses('outbound|8080|api.default')).toEqual(['127.0.0.1', '127.0.0.2']);
    expect(addresses('outbound|8080|api-v2.default')).toEqual(['127.0.0.2']);
  });

  it('endpoint weights stay within what the proxy accepts (1..1000000)', () => {
    const endpoints = [
      registration('api', '127.0.0.1', { weight: 0 }),
      registration('api', '127.0.0.2', { weight: 5_000_000 }),
      registration('api', '127.0.0.3', { weight: 2.7 }),
    ];
    const config = configOf([service('api')], sidecar('web'), endpoints);
    const weights = config.endpoints
      .find((e) => e.clusterName === 'outbound|8080|api.default')
      ?.endpoints?.map((e) => e.weight);
    expect(weights).toEqual([1, 1_000_000, 2]);
  });

  it('the inbound route config sends every request to the local app on 127.0.0.1:<appPort>', () => {
    const config = configOf([], { ...sidecar('web'), appPort: 3000 });
    expect(config.routes.find((r) => r.name === 'inbound')?.virtualHosts?.[0]?.routes?.[0]?.route).toEqual({
      clusters: [{ name: 'inbound|3000' }],
    });
    expect(config.endpoints).toEqual([
      { clusterName: 'inbound|3000', endpoints: [{ address: '127.0.0.1', port: 3000, health: 'HEALTHY' }] },
    ]);
  });
});

describe('grpcPath (GRPCMethodMatch → path match)', () => {
  it.each([
    [
      { service: 'pkg.Svc', method: 'Do' },
      { type: 'EXACT', value: '/pkg.Svc/Do' },
    ],
    [
      { type: 'Exact', service: 'pkg.Svc' },
      { type: 'PATH_PREFIX', value: '/pkg.Svc/' },
    ],
    [{ method: 'Do' }, { type: 'REGULAR_EXPRESSION', value: '/[^/]+/Do' }],
    [
      { type: 'RegularExpression', service: 'pkg\\..*' },
      { type: 'REGULAR_EXPRESSION', value: '/(?:pkg\\..*)/(?:[^/]+)' },
    ],
    [
      { type: 'RegularExpression', method: 'Get|List' },
      { type: 'REGULAR_EXPRESSION', value: '/(?:[^/]+)/(?:Get|List)' },
    ],
  ] as const)('%o → %o', (method, path) => {
    expect(grpcPath(method)).toEqual(path);
  });

  it('no method match means any method (no path condition)', () => {
    expect(grpcPath(undefined)).toBeUndefined();
    expect(grpcPath({})).toBeUndefined();
  });
});
