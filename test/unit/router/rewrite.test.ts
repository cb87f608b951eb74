/**
 * URLRewrite: the spec's ReplacePrefixMatch table (apis/v1/httproute_types.go), full-path and
 * host rewrites, and conformance MeshHTTPRouteRewritePath (with its header modifiers).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { HeaderModifier, Route, UrlRewrite } from '../../../sidecar/proxy/config/types.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';
import type { HeaderMap, RouteMatchResult, RouteRequest } from '../../../sidecar/proxy/router/types.ts';

function request(path: string, headers: IncomingHttpHeaders = {}): RouteRequest {
  return { host: 'echo', path, query: 'keep=1', method: 'GET', headers };
}

function matchOne(routes: Route[], path: string): RouteMatchResult {
  const t = compileRouteTable({ name: 'r', virtualHosts: [{ name: 'echo', domains: ['echo'], routes }] });
  const result = t.match(request(path));
  if (result === undefined) throw new Error(`no route for ${path}`);
  return result;
}

function rewriteRoute(prefix: string, urlRewrite: UrlRewrite, requestHeaderModifier?: HeaderModifier): Route {
  return {
    name: prefix,
    matches: [{ path: { type: 'PATH_PREFIX', value: prefix } }],
    route: { clusters: [{ name: 'echo-v1' }] },
    urlRewrite,
    ...(requestHeaderModifier === undefined ? {} : { requestHeaderModifier }),
  };
}

describe('URLRewrite ReplacePrefixMatch (the table in the spec)', () => {
  it.each([
    ['/foo/bar', '/foo', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo', '/xyz/', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz/', '/xyz/bar'],
    ['/foo', '/foo', '/xyz', '/xyz'],
    ['/foo/', '/foo', '/xyz', '/xyz/'],
    ['/foo/bar', '/foo', '', '/bar'],
    ['/foo/', '/foo', '', '/'],
    ['/foo', '/foo', '', '/'],
    ['/foo/', '/foo', '/', '/'],
    ['/foo', '/foo', '/', '/'],
    ['/x/y', '/', '/bar', '/bar/x/y'],
    // Prefix `/` is the empty element list, so the path's own `/` is kept, as `/foo/` → `/xyz/` above.
    ['/', '/', '/bar', '/bar/'],
    ['/', '/', '/', '/'],
  ])('%s with prefix %s replaced by "%s" becomes %s', (path, prefix, value, expected) => {
    const result = matchOne([rewriteRoute(prefix, { path: { type: 'REPLACE_PREFIX_MATCH', value } })], path);
    expect(result.rewrite(request(path))).toEqual({ path: expected, host: undefined });
  });
});

describe('URLRewrite', () => {
  it('ReplaceFullPath replaces the whole path and leaves the query to the caller', () => {
    const result = matchOne(
      [rewriteRoute('/full', { path: { type: 'REPLACE_FULL_PATH', value: '/one' } })],
      '/full/a/b',
    );
    expect(result.rewrite(request('/full/a/b'))).toEqual({ path: '/one', host: undefined });
  });

  it('ReplaceFullPath works with an Exact or RegularExpression match', () => {
    const route: Route = {
      name: 'r',
      matches: [
        { path: { type: 'EXACT', value: '/e' } },
        { path: { type: 'REGULAR_EXPRESSION', value: '/r/.*' } },
      ],
      route: { clusters: [{ name: 'c' }] },
      urlRewrite: { path: { type: 'REPLACE_FULL_PATH', value: '/new' } },
    };
    expect(matchOne([route], '/e').rewrite(request('/e'))?.path).toBe('/new');
    expect(matchOne([route], '/r/x').rewrite(request('/r/x'))?.path).toBe('/new');
  });

  it('a hostname rewrite replaces the host (lower-cased) and keeps the path', () => {
    const result = matchOne([rewriteRoute('/', { hostname: 'Backend.Example.ORG' })], '/a');
    expect(result.rewrite(request('/a'))).toEqual({ path: '/a', host: 'backend.example.org' });
  });

  it('a route without URLRewrite returns undefined', () => {
    const result = matchOne([{ name: 'plain', route: { clusters: [{ name: 'c' }] } }], '/a');
    expect(result.rewrite(request('/a'))).toBeUndefined();
  });

  it('REPLACE_PREFIX_MATCH on a rule without matches replaces the default prefix /', () => {
    const route: Route = {
      name: 'r',
      route: { clusters: [{ name: 'c' }] },
      urlRewrite: { path: { type: 'REPLACE_PREFIX_MATCH', value: '/api' } },
    };
    expect(matchOne([route], '/v1/x').rewrite(request('/v1/x'))?.path).toBe('/api/v1/x');
  });
});

describe('conformance: MeshHTTPRouteRewritePath', () => {
  const modifyHeaders: HeaderModifier = {
    set: [{ name: 'X-Header-Set', value: 'set-overwrites-values' }],
    add: [
      { name: 'X-Header-Add', value: 'header-val-1' },
      { name: 'X-Header-Add-Append', value: 'header-val-2' },
    ],
    remove: ['X-Header-Remove'],
  };
  const routes: Route[] = [
    rewriteRoute('/prefix/one', { path: { type: 'REPLACE_PREFIX_MATCH', value: '/one' } }),
    rewriteRoute('/full/one', { path: { type: 'REPLACE_FULL_PATH', value: '/one' } }),
    rewriteRoute(
      '/full/rewrite-path-and-modify-headers',
      { path: { type: 'REPLACE_FULL_PATH', value: '/test' } },
      modifyHeaders,
    ),
    rewriteRoute(
      '/prefix/rewrite-path-and-modify-headers',
      { path: { type: 'REPLACE_PREFIX_MATCH', value: '/prefix' } },
      modifyHeaders,
    ),
    rewriteRoute('/strip-prefix', { path: { type: 'REPLACE_PREFIX_MATCH', value: '/' } }),
  ];

  it.each([
    ['/prefix/one/two', '/one/two'],
    ['/strip-prefix/three', '/three'],
    ['/strip-prefix', '/'],
    ['/full/one/two', '/one'],
    ['/full/rewrite-path-and-modify-headers/test', '/test'],
    ['/prefix/rewrite-path-and-modify-headers/one', '/prefix/one'],
  ])('%s is forwarded as %s', (path, expected) => {
    expect(matchOne(routes, path).rewrite(request(path))?.path).toBe(expected);
  });

  it('the request header modifier runs alongside the rewrite', () => {
    const result = matchOne(routes, '/full/rewrite-path-and-modify-headers/test');
    const headers: HeaderMap = {
      'x-header-remove': 'remove-val',
      'x-header-add-append': 'append-val-1',
      'x-header-set': 'set-val',
    };
    result.requestHeaderModifier?.apply(headers);
    expect(headers).toEqual({
      'x-header-add': 'header-val-1',
      'x-header-add-append': ['append-val-1', 'header-val-2'],
      'x-header-set': 'set-overwrites-values',
    });
  });
});
