/**
 * Route matching: path types, headers, query parameters, method, ORed matches and ANDed
 * conditions (Gateway API HTTPRouteMatch), including the conformance cases HTTPRouteMatching and
 * (Mesh)HTTPRouteQueryParamMatching.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { Route, RouteMatch } from '../../../sidecar/proxy/config/types.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';
import type { RouteRequest, RouteTable } from '../../../sidecar/proxy/router/types.ts';

function request(target: string, headers: IncomingHttpHeaders = {}, method = 'GET'): RouteRequest {
  const q = target.indexOf('?');
  return {
    host: 'echo',
    path: q === -1 ? target : target.slice(0, q),
    query: q === -1 ? '' : target.slice(q + 1),
    method,
    headers,
  };
}

function to(cluster: string, ...matches: RouteMatch[]): Route {
  return { name: `to-${cluster}`, matches, route: { clusters: [{ name: cluster }] } };
}

function table(...routes: Route[]): RouteTable {
  return compileRouteTable({ name: 'test', virtualHosts: [{ name: 'echo', domains: ['echo'], routes }] });
}

/** The cluster a request goes to, or 404 when no route matches. */
function backendOf(t: RouteTable, req: RouteRequest): string | 404 {
  const result = t.match(req);
  if (result === undefined) return 404;
  if (result.action.kind !== 'forward')
    throw new Error(`expected a forward action, got ${result.action.kind}`);
  return result.action.pickBackend(0).cluster;
}

describe('path matching', () => {
  const prefix = (value: string) => table(to('hit', { path: { type: 'PATH_PREFIX', value } }));

  it.each([
    ['/abc', '/abc', true],
    ['/abc', '/abc/', true],
    ['/abc', '/abc/def', true],
    ['/abc', '/abcd', false],
    ['/abc', '/ab', false],
    ['/abc', '/', false],
    ['/abc/', '/abc', true],
    ['/abc/', '/abc/', true],
    ['/abc/', '/abc/x', true],
    ['/abc/', '/abcd', false],
    ['/a/b', '/a/b/c', true],
    ['/a/b', '/a/bc', false],
    ['/', '/', true],
    ['/', '/anything/at/all', true],
  ])('PathPrefix %s matching %s is %s (element-wise)', (value, path, expected) => {
    expect(backendOf(prefix(value), request(path))).toBe(expected ? 'hit' : 404);
  });

  it('PathPrefix matching ignores the query string', () => {
    expect(backendOf(prefix('/abc'), request('/abc?x=/abcd'))).toBe('hit');
  });

  it.each([
    ['/abc', '/abc', true],
    ['/abc', '/abc/', false],
    ['/abc', '/ABC', false],
    ['/abc', '/abc/def', false],
  ])('Exact %s matching %s is %s (string equality)', (value, path, expected) => {
    const t = table(to('hit', { path: { type: 'EXACT', value } }));
    expect(backendOf(t, request(path))).toBe(expected ? 'hit' : 404);
  });

  it.each([
    ['/v[0-9]+/items', '/v2/items', true],
    ['/v[0-9]+/items', '/v2/items/extra', false],
    ['/v[0-9]+/items', '/api/v2/items', false],
    ['/a|/b', '/b', true],
    ['/a|/b', '/b/c', false],
    ['.*\\.png', '/img/logo.png', true],
  ])('RegularExpression %s matching %s is %s (anchored full match)', (value, path, expected) => {
    const t = table(to('hit', { path: { type: 'REGULAR_EXPRESSION', value } }));
    expect(backendOf(t, request(path))).toBe(expected ? 'hit' : 404);
  });

  it('a rule without matches matches every request, like PathPrefix /', () => {
    const t = table({ name: 'all', route: { clusters: [{ name: 'all' }] } });
    expect(backendOf(t, request('/'))).toBe('all');
    expect(backendOf(t, request('/x/y?z=1', {}, 'DELETE'))).toBe('all');
  });

  it('a match without a path defaults to PathPrefix /', () => {
    const t = table(to('v', { method: 'GET' }));
    expect(backendOf(t, request('/deep/path'))).toBe('v');
  });
});

describe('header, query parameter and method matching', () => {
  it('header names are case-insensitive and values are compared exactly', () => {
    const t = table(to('hit', { headers: [{ name: 'X-Version', value: 'Two' }] }));
    expect(backendOf(t, request('/', { 'x-version': 'Two' }))).toBe('hit');
    expect(backendOf(t, request('/', { 'x-version': 'two' }))).toBe(404);
    expect(backendOf(t, request('/'))).toBe(404);
  });

  it('a RegularExpression header match is anchored to the whole value', () => {
    const t = table(
      to('hit', { headers: [{ name: 'user-agent', type: 'REGULAR_EXPRESSION', value: 'curl/.*' }] }),
    );
    expect(backendOf(t, request('/', { 'user-agent': 'curl/8.5.0' }))).toBe('hit');
    expect(backendOf(t, request('/', { 'user-agent': 'x curl/8.5.0' }))).toBe(404);
  });

  it('a repeated header is matched on its values joined with ", "', () => {
    const t = table(to('hit', { headers: [{ name: 'x-tag', value: 'a, b' }] }));
    expect(backendOf(t, request('/', { 'x-tag': ['a', 'b'] }))).toBe('hit');
  });

  it('only the first entry for a header name counts; later duplicates are ignored', () => {
    const t = table(
      to('hit', {
        headers: [
          { name: 'version', value: 'one' },
          { name: 'Version', value: 'two' },
        ],
      }),
    );
    expect(backendOf(t, request('/', { version: 'one' }))).toBe('hit');
    expect(backendOf(t, request('/', { version: 'two' }))).toBe(404);
  });

  it('query parameter names are case-sensitive, values are form-decoded, the first value wins', () => {
    const t = table(to('hit', { queryParams: [{ name: 'q', value: 'a b' }] }));
    expect(backendOf(t, request('/?q=a%20b'))).toBe('hit');
    expect(backendOf(t, request('/?q=a+b'))).toBe('hit');
    expect(backendOf(t, request('/?Q=a%20b'))).toBe(404);
    expect(backendOf(t, request('/?q=a%20b&q=c'))).toBe('hit');
    expect(backendOf(t, request('/?q=c&q=a%20b'))).toBe(404);
  });

  it('a RegularExpression query parameter match is anchored', () => {
    const t = table(
      to('hit', { queryParams: [{ name: 'id', type: 'REGULAR_EXPRESSION', value: '[0-9]+' }] }),
    );
    expect(backendOf(t, request('/?id=42'))).toBe('hit');
    expect(backendOf(t, request('/?id=42a'))).toBe(404);
  });

  it('the method is matched exactly (methods are case-sensitive)', () => {
    const t = table(to('hit', { method: 'POST' }));
    expect(backendOf(t, request('/', {}, 'POST'))).toBe('hit');
    expect(backendOf(t, request('/', {}, 'post'))).toBe(404);
    expect(backendOf(t, request('/', {}, 'GET'))).toBe(404);
  });

  it('conditions inside one match are ANDed, matches are ORed', () => {
    const t = table(
      to(
        'hit',
        { path: { type: 'PATH_PREFIX', value: '/a' }, method: 'PUT', headers: [{ name: 'h', value: '1' }] },
        { path: { type: 'EXACT', value: '/b' } },
      ),
    );
    expect(backendOf(t, request('/a', { h: '1' }, 'PUT'))).toBe('hit');
    expect(backendOf(t, request('/a', { h: '1' }, 'GET'))).toBe(404);
    expect(backendOf(t, request('/a', {}, 'PUT'))).toBe(404);
    expect(backendOf(t, request('/b', {}, 'GET'))).toBe('hit');
  });
});

describe('conformance: HTTPRouteMatching', () => {
  const t = table(
    to(
      'infra-backend-v1',
      { path: { type: 'PATH_PREFIX', value: '/' } },
      { headers: [{ name: 'version', value: 'one' }] },
    ),
    to(
      'infra-backend-v2',
      { path: { type: 'PATH_PREFIX', value: '/v2' } },
      { headers: [{ name: 'version', value: 'two' }] },
    ),
  );
  it.each([
    ['/', {}, 'infra-backend-v1'],
    ['/example', {}, 'infra-backend-v1'],
    ['/', { version: 'one' }, 'infra-backend-v1'],
    ['/v2', {}, 'infra-backend-v2'],
    ['/v2/example', {}, 'infra-backend-v2'],
    ['/', { version: 'two' }, 'infra-backend-v2'],
    ['/v2example', {}, 'infra-backend-v1'],
  ] as const)('%s with headers %o goes to %s', (path, headers, backend) => {
    expect(backendOf(t, request(path, headers))).toBe(backend);
  });
});

describe('conformance: HTTPRouteQueryParamMatching', () => {
  const q = (name: string, value: string) => ({ name, value });
  const t = table(
    to('v1', { queryParams: [q('animal', 'whale')] }),
    to('v2', { queryParams: [q('animal', 'dolphin')] }),
    to(
      'v3',
      { queryParams: [q('animal', 'dolphin'), q('color', 'blue')] },
      { queryParams: [q('ANIMAL', 'Whale')] },
    ),
    to('v1', { path: { type: 'PATH_PREFIX', value: '/path1' }, queryParams: [q('animal', 'whale')] }),
    to('v2', { headers: [{ name: 'version', value: 'one' }], queryParams: [q('animal', 'whale')] }),
    to(
      'v1',
      { path: { type: 'PATH_PREFIX', value: '/path3' }, queryParams: [q('animal', 'shark')] },
      {
        path: { type: 'PATH_PREFIX', value: '/path4' },
        headers: [{ name: 'version', value: 'three' }],
        queryParams: [q('animal', 'kraken')],
      },
    ),
    to('v1', { path: { type: 'PATH_PREFIX', value: '/path5' }, queryParams: [q('animal', 'hydra')] }),
    to('v2', { queryParams: [q('animal', 'hydra'), q('color', 'green')] }),
  );
  it.each([
    ['/?animal=whale', {}, 'v1'],
    ['/?animal=dolphin', {}, 'v2'],
    ['/?animal=whale&otherparam=irrelevant', {}, 'v1'],
    ['/?animal=dolphin&color=yellow', {}, 'v2'],
    ['/?animal=dolphin&color=blue', {}, 'v3'],
    ['/?ANIMAL=Whale', {}, 'v3'],
    ['/?color=blue', {}, 404],
    ['/?animal=dog', {}, 404],
    ['/?animal=whaledolphin', {}, 404],
    ['/', {}, 404],
    ['/path1?animal=whale', {}, 'v1'],
    ['/?animal=whale', { version: 'one' }, 'v2'],
    ['/path3?animal=shark', {}, 'v1'],
    ['/path4?animal=kraken', { version: 'three' }, 'v1'],
    ['/?animal=shark', {}, 404],
    ['/path4?animal=kraken', {}, 404],
    ['/path5?animal=hydra&color=green', {}, 'v1'],
  ] as const)('%s with headers %o goes to %s', (target, headers, backend) => {
    expect(backendOf(t, request(target, headers))).toBe(backend);
  });
});
