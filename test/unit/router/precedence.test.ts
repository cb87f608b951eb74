/**
 * Match precedence across all routes of a virtual host (Gateway API HTTPRoute, CONVENTIONS B1):
 * Exact path, longest PathPrefix, (regex last), method, most headers, most query params, list order.
 * Each case lists the routes in the "wrong" order so that only precedence can pick the winner.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { PathMatch, Route, RouteMatch } from '../../../sidecar/proxy/config/types.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';

function route(name: string, ...matches: RouteMatch[]): Route {
  return { name, matches, route: { clusters: [{ name }] } };
}

function winner(
  routes: Route[],
  target: string,
  headers: IncomingHttpHeaders = {},
  method = 'GET',
): string | undefined {
  const t = compileRouteTable({ name: 'p', virtualHosts: [{ name: 'vh', domains: ['*'], routes }] });
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q + 1);
  return t.match({ host: 'h', path, query, method, headers })?.routeName;
}

const prefix = (value: string): PathMatch => ({ type: 'PATH_PREFIX', value });
const exact = (value: string): PathMatch => ({ type: 'EXACT', value });
const regex = (value: string): PathMatch => ({ type: 'REGULAR_EXPRESSION', value });
const header = (name: string, value: string) => ({ name, value });

describe('match precedence', () => {
  it('an Exact path beats a longer PathPrefix', () => {
    const routes = [
      route('prefix', { path: prefix('/foo/bar/baz') }),
      route('exact', { path: exact('/foo/bar/baz') }),
    ];
    expect(winner(routes, '/foo/bar/baz')).toBe('exact');
  });

  it('an Exact path beats a PathPrefix with more headers and a method', () => {
    const routes = [
      route('prefix', { path: prefix('/a'), method: 'GET', headers: [header('x', '1'), header('y', '2')] }),
      route('exact', { path: exact('/a') }),
    ];
    expect(winner(routes, '/a', { x: '1', y: '2' })).toBe('exact');
  });

  it('the longest PathPrefix wins by character count', () => {
    const routes = [
      route('short', { path: prefix('/') }),
      route('mid', { path: prefix('/api') }),
      route('long', { path: prefix('/api/v1') }),
    ];
    expect(winner(routes, '/api/v1/items')).toBe('long');
    expect(winner(routes, '/api/v2')).toBe('mid');
    expect(winner(routes, '/other')).toBe('short');
  });

  it('a longer PathPrefix beats a shorter one with a method and headers', () => {
    const routes = [
      route('short', { path: prefix('/a'), method: 'GET', headers: [header('x', '1')] }),
      route('long', { path: prefix('/a/b') }),
    ];
    expect(winner(routes, '/a/b', { x: '1' })).toBe('long');
  });

  it('a RegularExpression path ranks above every PathPrefix, so a catch-all / never hides it', () => {
    const routes = [route('root', { path: prefix('/a/b') }), route('regex', { path: regex('/a/.*') })];
    expect(winner(routes, '/a/b')).toBe('regex');
    expect(winner(routes, '/x')).toBeUndefined();
    expect(
      winner([route('regex', { path: regex('/a/.*') }), route('exact', { path: exact('/zzz') })], '/a/b'),
    ).toBe('regex');
  });

  it('the longer RegularExpression is tried first', () => {
    const routes = [
      route('first', { path: regex('/.*') }),
      route('second', { path: regex('/items/[0-9]+') }),
    ];
    expect(winner(routes, '/items/42')).toBe('second');
    expect(winner(routes, '/other')).toBe('first');
  });

  it('with equal paths, a method match beats more header matches', () => {
    const routes = [
      route('headers', { path: prefix('/'), headers: [header('x', '1'), header('y', '2')] }),
      route('method', { path: prefix('/'), method: 'GET' }),
    ];
    expect(winner(routes, '/', { x: '1', y: '2' })).toBe('method');
  });

  it('with equal paths and methods, more header matches win', () => {
    const routes = [
      route('one', { headers: [header('x', '1')] }),
      route('two', { headers: [header('x', '1'), header('y', '2')] }),
    ];
    expect(winner(routes, '/', { x: '1', y: '2' })).toBe('two');
  });

  it('with equal headers, more query-parameter matches win', () => {
    const routes = [
      route('one', { queryParams: [{ name: 'a', value: '1' }] }),
      route('two', {
        queryParams: [
          { name: 'a', value: '1' },
          { name: 'b', value: '2' },
        ],
      }),
    ];
    expect(winner(routes, '/?a=1&b=2')).toBe('two');
    expect(winner(routes, '/?a=1')).toBe('one');
  });

  it('header matches outrank query-parameter matches', () => {
    const routes = [
      route('query', {
        queryParams: [
          { name: 'a', value: '1' },
          { name: 'b', value: '2' },
        ],
      }),
      route('header', { headers: [header('x', '1')] }),
    ];
    expect(winner(routes, '/?a=1&b=2', { x: '1' })).toBe('header');
  });

  it('remaining ties keep list order', () => {
    const routes = [route('first', { path: prefix('/a') }), route('second', { path: prefix('/a') })];
    expect(winner(routes, '/a')).toBe('first');
  });

  it('a prefix with a trailing slash counts its configured characters', () => {
    const routes = [route('bare', { path: prefix('/abc') }), route('slash', { path: prefix('/abc/') })];
    expect(winner(routes, '/abc/x')).toBe('slash');
    expect(winner(routes, '/abc')).toBe('slash');
  });

  it('precedence applies per match: the matches of one route interleave with other routes', () => {
    const routes = [
      route('multi', { path: prefix('/') }, { path: exact('/login') }),
      route('api', { path: prefix('/api') }),
    ];
    expect(winner(routes, '/login')).toBe('multi');
    expect(winner(routes, '/api/x')).toBe('api');
    expect(winner(routes, '/x')).toBe('multi');
  });

  it('a candidate whose conditions fail falls through to the next in precedence order', () => {
    const routes = [
      route('fallback', { path: prefix('/') }),
      route('canary', { path: prefix('/'), headers: [header('x-canary', 'true')] }),
    ];
    expect(winner(routes, '/', { 'x-canary': 'true' })).toBe('canary');
    expect(winner(routes, '/', { 'x-canary': 'false' })).toBe('fallback');
  });
});
