/**
 * Invalid RouteConfigurations are rejected at compile time with a RouteConfigError that names the
 * route configuration, virtual host, route and field (so the config is NACKed, never half-served).
 */
import { describe, expect, it } from 'vitest';
import type { Route, RouteConfiguration, VirtualHost } from '../../../sidecar/proxy/config/types.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';
import { RouteConfigError } from '../../../sidecar/proxy/router/config-error.ts';

const to = { route: { clusters: [{ name: 'c' }] } } as const;
const prefix = (value: string) => ({ path: { type: 'PATH_PREFIX' as const, value } });

function compileError(config: RouteConfiguration): RouteConfigError {
  try {
    compileRouteTable(config);
  } catch (err) {
    if (err instanceof RouteConfigError) return err;
    throw err;
  }
  throw new Error('expected compileRouteTable to throw');
}

function withRoute(route: Omit<Route, 'name'>): RouteConfiguration {
  return { name: 'rc', virtualHosts: [{ name: 'vh', domains: ['*'], routes: [{ name: 'r', ...route }] }] };
}

describe('route errors name the route and the field', () => {
  it.each<[string, Omit<Route, 'name'>, string, RegExp]>([
    [
      'an invalid path regex',
      { ...to, matches: [{ path: { type: 'REGULAR_EXPRESSION', value: '(' } }] },
      'matches[0].path.value',
      /invalid regular expression "\("/,
    ],
    [
      'a regex that would escape its anchors',
      { ...to, matches: [{ path: { type: 'REGULAR_EXPRESSION', value: 'a)|(b' } }] },
      'matches[0].path.value',
      /invalid regular expression/,
    ],
    [
      'an invalid header regex',
      { ...to, matches: [{ headers: [{ name: 'x', type: 'REGULAR_EXPRESSION', value: '[' }] }] },
      'matches[0].headers[0].value',
      /invalid regular expression/,
    ],
    [
      'an invalid query regex',
      { ...to, matches: [{}, { queryParams: [{ name: 'q', type: 'REGULAR_EXPRESSION', value: '*' }] }] },
      'matches[1].queryParams[0].value',
      /invalid regular expression/,
    ],
    [
      'a header name that is not a token',
      { ...to, matches: [{ headers: [{ name: 'x y', value: '1' }] }] },
      'matches[0].headers[0].name',
      /not a valid header name/,
    ],
    [
      'a PATH_PREFIX header match',
      { ...to, matches: [{ headers: [{ name: 'x', type: 'PATH_PREFIX', value: '/' }] }] },
      'matches[0].headers[0].type',
      /not supported/,
    ],
    [
      'a query parameter without a name',
      { ...to, matches: [{ queryParams: [{ name: '', value: '1' }] }] },
      'matches[0].queryParams[0].name',
      /required/,
    ],
    ['a relative path', { ...to, matches: [prefix('api')] }, 'matches[0].path.value', /must start with "\/"/],
    [
      'a path with //',
      { ...to, matches: [{ path: { type: 'EXACT', value: '/a//b' } }] },
      'matches[0].path.value',
      /must not contain "\/\/"/,
    ],
    ['a path with an encoded slash', { ...to, matches: [prefix('/a%2fb')] }, 'matches[0].path.value', /%2f/],
    [
      'a path ending in a dot segment',
      { ...to, matches: [prefix('/a/..')] },
      'matches[0].path.value',
      /dot segment/,
    ],
    ['a path with a space', { ...to, matches: [prefix('/a b')] }, 'matches[0].path.value', /not allowed/],
    [
      'an unknown path type',
      { ...to, matches: [{ path: { type: 'GLOB' as 'EXACT', value: '/' } }] },
      'matches[0].path.type',
      /unknown path match type GLOB/,
    ],
    [
      'a method that is not a token',
      { ...to, matches: [{ method: 'GE T' }] },
      'matches[0].method',
      /not a valid method/,
    ],
    ['two actions', { ...to, directResponse: { status: 200 } }, 'route', /only one of/],
    [
      'a redirect with a URL rewrite',
      { redirect: {}, urlRewrite: { hostname: 'a' } },
      'urlRewrite',
      /must not also rewrite/,
    ],
    ['a redirect scheme other than http/https', { redirect: { scheme: 'ftp' } }, 'redirect.scheme', /"ftp"/],
    [
      'a redirect status that is not a redirect',
      { redirect: { statusCode: 200 } },
      'redirect.statusCode',
      /301, 302, 303, 307, 308/,
    ],
    ['a redirect port out of range', { redirect: { port: 70000 } }, 'redirect.port', /\[1, 65535\]/],
    [
      'a redirect host name with a space',
      { redirect: { hostname: 'bad host' } },
      'redirect.hostname',
      /not a valid host name/,
    ],
    [
      'a rewrite host name with a port',
      { ...to, urlRewrite: { hostname: 'a.example:8080' } },
      'urlRewrite.hostname',
      /not a valid host name/,
    ],
    [
      'REPLACE_PREFIX_MATCH rewrite on an Exact match',
      {
        ...to,
        matches: [prefix('/a'), { path: { type: 'EXACT', value: '/b' } }],
        urlRewrite: { path: { type: 'REPLACE_PREFIX_MATCH', value: '/x' } },
      },
      'urlRewrite.path.type',
      /matches\[1\] is EXACT/,
    ],
    [
      'REPLACE_PREFIX_MATCH redirect on a regex match',
      {
        matches: [{ path: { type: 'REGULAR_EXPRESSION', value: '/.*' } }],
        redirect: { path: { type: 'REPLACE_PREFIX_MATCH', value: '/x' } },
      },
      'redirect.path.type',
      /REGULAR_EXPRESSION/,
    ],
    [
      'an unspecified path modifier type',
      { ...to, urlRewrite: { path: { type: 'PATH_MODIFIER_TYPE_UNSPECIFIED', value: '/x' } } },
      'urlRewrite.path.type',
      /unknown path modifier type/,
    ],
    [
      'a relative full-path replacement',
      { ...to, urlRewrite: { path: { type: 'REPLACE_FULL_PATH', value: 'x' } } },
      'urlRewrite.path.value',
      /must start with "\/"/,
    ],
    [
      'a negative weight',
      { route: { clusters: [{ name: 'a', weight: -1 }] } },
      'route.clusters[0].weight',
      /integer/,
    ],
    [
      'a fractional weight',
      { route: { clusters: [{ name: 'a' }, { name: 'b', weight: 0.5 }] } },
      'route.clusters[1].weight',
      /integer/,
    ],
    [
      'a cluster without a name',
      { route: { clusters: [{ name: '' }] } },
      'route.clusters[0].name',
      /required/,
    ],
    [
      'a header modifier name that is not a token',
      { ...to, requestHeaderModifier: { set: [{ name: 'bad:name', value: 'v' }] } },
      'requestHeaderModifier.set[0].name',
      /not a valid header name/,
    ],
    [
      'a header value with CRLF',
      { ...to, responseHeaderModifier: { add: [{ name: 'x', value: 'a\r\nInjected: 1' }] } },
      'responseHeaderModifier.add[0].value',
      /control characters/,
    ],
    [
      'a bad name in a backend modifier',
      { route: { clusters: [{ name: 'a', requestHeaderModifier: { remove: ['a b'] } }] } },
      'route.clusters[0].requestHeaderModifier.remove[0]',
      /not a valid header name/,
    ],
    [
      'backendRequestMs above requestMs',
      { ...to, timeouts: { requestMs: 1000, backendRequestMs: 2000 } },
      'timeouts.backendRequestMs',
      /must not exceed/,
    ],
    [
      'a negative timeout',
      { ...to, timeouts: { requestMs: -1 } },
      'timeouts.requestMs',
      /non-negative integer/,
    ],
    [
      'a direct response status below 200',
      { directResponse: { status: 99 } },
      'directResponse.status',
      /\[200, 599\]/,
    ],
  ])('rejects %s', (_, route, field, reason) => {
    const err = compileError(withRoute(route));
    expect(err.route).toBe('r');
    expect(err.virtualHost).toBe('vh');
    expect(err.routeConfig).toBe('rc');
    expect(err.field).toBe(field);
    expect(err.message).toContain(`route config "rc": virtual host "vh", route "r": ${field}: `);
    expect(err.message).toMatch(reason);
  });

  it('an unnamed route is named after its virtual host and position', () => {
    const err = compileError({
      name: 'rc',
      virtualHosts: [
        { name: 'vh', routes: [{ ...to }, { matches: [{ method: '' }, { method: 'A B' }], ...to }] },
      ],
    });
    expect(err.route).toBe('vh/routes[1]');
    expect(err.field).toBe('matches[1].method');
  });
});

describe('virtual host and configuration errors', () => {
  const vh = (name: string, domains: string[]): VirtualHost => ({
    name,
    domains,
    routes: [{ name: 'r', ...to }],
  });

  it.each<[string, string[], RegExp]>([
    ['a wildcard that is not a whole leading label', ['foo.*.com'], /wildcard must be a whole leading label/],
    ['a partial-label wildcard', ['*foo.com'], /invalid domain/],
    ['a bare "*." wildcard', ['*.'], /invalid wildcard domain/],
    ['a domain with a port', ['api.example.com:8080'], /invalid domain/],
    ['an empty domain', [''], /must not be empty/],
  ])('rejects %s', (_, domains, reason) => {
    const err = compileError({ name: 'rc', virtualHosts: [vh('a', domains)] });
    expect(err.virtualHost).toBe('a');
    expect(err.route).toBeUndefined();
    expect(err.field).toBe('domains[0]');
    expect(err.message).toMatch(reason);
  });

  it('rejects a domain served by two virtual hosts, naming both', () => {
    const err = compileError({
      name: 'rc',
      virtualHosts: [vh('a', ['x.test']), vh('b', ['y.test', 'X.TEST'])],
    });
    expect(err.virtualHost).toBe('b');
    expect(err.field).toBe('domains[1]');
    expect(err.message).toMatch(/"x.test" is already served by virtual host "a"/);
  });

  it('rejects two virtual hosts that both serve any host', () => {
    const err = compileError({ name: 'rc', virtualHosts: [vh('a', ['*']), { name: 'b', routes: [] }] });
    expect(err.virtualHost).toBe('b');
    expect(err.message).toMatch(/"\*" is already served by virtual host "a"/);
  });

  it('rejects a configuration without a name', () => {
    expect(() => compileRouteTable({ name: '' })).toThrow(/route config "": name: is required/);
  });

  it('accepts an empty configuration, which routes nothing', () => {
    const t = compileRouteTable({ name: 'empty' });
    expect(t.match({ host: 'a', path: '/', query: '', method: 'GET', headers: {} })).toBeUndefined();
  });
});
