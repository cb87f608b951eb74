/**
 * Routing integration: which upstream answers (Gateway API v1 HTTPRoute matching, CONVENTIONS B1).
 *
 * A real `weft sidecar` routes curl requests to real upstreams on loopback. Every route points to
 * its own upstream, which answers with its name, so each assertion is "this upstream answered".
 * Routes are listed in the least helpful order (the loser first) so only precedence can pick the
 * winner.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HeaderMatch, PathMatch, Route, RouteMatch } from '../../sidecar/proxy/config/types.ts';
import { curl } from '../support/curl.ts';
import { clustersFor, echoOf, namedUpstream } from '../support/routing.ts';
import { outboundBootstrap, type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import type { Upstream } from '../support/upstream.ts';

const exact = (value: string): PathMatch => ({ type: 'EXACT', value });
const prefix = (value: string): PathMatch => ({ type: 'PATH_PREFIX', value });
const regex = (value: string): PathMatch => ({ type: 'REGULAR_EXPRESSION', value });
const header = (name: string, value: string, type?: HeaderMatch['type']): HeaderMatch =>
  type === undefined ? { name, value } : { name, value, type };

/** A route named like its cluster (and upstream). */
function to(cluster: string, ...matches: RouteMatch[]): Route {
  return { name: cluster, matches, route: { clusters: [{ name: cluster }] } };
}

const UPSTREAMS = [
  'root',
  'abc',
  'abc-def',
  'exact-abc-def',
  'm-any',
  'm-post',
  'h-one',
  'h-two',
  'q-none',
  'q-v2',
  'ci',
  'mh-method',
  'mh-headers',
  'hq-headers',
  'hq-query',
  'tie-first',
  'tie-second',
  'items-regex',
  'hdr-regex',
  'only',
  'svc-b',
  'wild',
  'api',
] as const;

describe('routing: match precedence, hosts and request targets', () => {
  const upstreams: Record<string, Upstream> = {};
  let sidecar: RunningSidecar;
  let base: string;

  beforeAll(async () => {
    for (const name of UPSTREAMS) upstreams[name] = await namedUpstream(name);
    sidecar = await startSidecar(
      outboundBootstrap({
        virtualHosts: [
          {
            name: 'precedence',
            domains: ['prec'],
            routes: [
              to('root', { path: prefix('/') }),
              to('abc', { path: prefix('/abc') }),
              to('abc-def', { path: prefix('/abc/def') }),
              to('exact-abc-def', { path: exact('/abc/def') }),
              to('m-any', { path: prefix('/m') }),
              to('m-post', { path: prefix('/m'), method: 'POST' }),
              to('h-one', { path: prefix('/h'), headers: [header('x-a', '1')] }),
              to('h-two', { path: prefix('/h'), headers: [header('x-a', '1'), header('x-b', '2')] }),
              to('q-none', { path: prefix('/q') }),
              to('q-v2', { path: prefix('/q'), queryParams: [{ name: 'v', value: '2' }] }),
              to('ci', { path: prefix('/ci'), headers: [header('X-Env', 'Canary')] }),
              to('mh-headers', { path: prefix('/mh'), headers: [header('x-a', '1'), header('x-b', '2')] }),
              to('mh-method', { path: prefix('/mh'), method: 'GET' }),
              to('hq-query', {
                path: prefix('/hq'),
                queryParams: [
                  { name: 'v', value: '1' },
                  { name: 'w', value: '2' },
                ],
              }),
              to('hq-headers', { path: prefix('/hq'), headers: [header('x-a', '1')] }),
              to('tie-first', { path: prefix('/tie'), headers: [header('x-a', '1')] }),
              to('tie-second', { path: prefix('/tie'), headers: [header('x-b', '2')] }),
            ],
          },
          {
            name: 'regex',
            domains: ['regex'],
            routes: [
              to('items-regex', { path: regex('/items/[0-9]+') }),
              to('hdr-regex', {
                path: prefix('/hdr'),
                headers: [header('x-version', 'v[12]', 'REGULAR_EXPRESSION')],
              }),
            ],
          },
          { name: 'strict', domains: ['strict'], routes: [to('only', { path: exact('/only') })] },
          { name: 'svc-b', domains: ['svc-b', 'svc-b.default.svc.cluster.local'], routes: [to('svc-b')] },
          { name: 'wild', domains: ['*.example.com'], routes: [to('wild')] },
          { name: 'api', domains: ['api.example.com'], routes: [to('api')] },
        ],
        ...clustersFor(upstreams),
      }),
    );
    base = sidecar.url('outbound');
  });

  afterAll(async () => {
    await sidecar?.stop();
    await Promise.all(Object.values(upstreams).map((u) => u.close()));
  });

  /** Name of the upstream that answered `path` on virtual host `host` (fails on a non-200). */
  async function answeredBy(host: string, path: string, args: readonly string[] = []): Promise<string> {
    const res = await curl(['--path-as-is', '-H', `Host: ${host}`, ...args, `${base}${path}`]);
    expect(res.status, `${host}${path}: ${res.body}`).toBe(200);
    const echo = echoOf(res);
    expect(res.header('x-upstream')).toBe(echo.name);
    return echo.name;
  }

  describe('path precedence', () => {
    it('an Exact path match beats a PathPrefix match of the same path', async () => {
      expect(await answeredBy('prec', '/abc/def')).toBe('exact-abc-def');
    });

    it('the longest matching PathPrefix wins', async () => {
      expect(await answeredBy('prec', '/abc/def/ghi')).toBe('abc-def');
      expect(await answeredBy('prec', '/abc/x')).toBe('abc');
      expect(await answeredBy('prec', '/zzz')).toBe('root');
    });

    it('PathPrefix compares element by element: /abc matches /abc, /abc/ and /abc/x but not /abcd', async () => {
      expect(await answeredBy('prec', '/abc')).toBe('abc');
      expect(await answeredBy('prec', '/abc/')).toBe('abc');
      expect(await answeredBy('prec', '/abc/x')).toBe('abc');
      expect(await answeredBy('prec', '/abcd')).toBe('root');
      expect(await answeredBy('prec', '/abc/defg')).toBe('abc');
    });

    it('an Exact path does not match a longer path or one with a trailing slash', async () => {
      expect(await answeredBy('prec', '/abc/def/')).toBe('abc-def');
      expect(await answeredBy('prec', '/abc/def?x=1')).toBe('exact-abc-def');
    });
  });

  describe('conditions beyond the path', () => {
    it('a match with a method beats one without, and only for that method', async () => {
      expect(await answeredBy('prec', '/m', ['-X', 'POST'])).toBe('m-post');
      expect(await answeredBy('prec', '/m')).toBe('m-any');
      expect(await answeredBy('prec', '/m', ['-X', 'PUT'])).toBe('m-any');
    });

    it('the match with more header conditions wins when all of them hold', async () => {
      expect(await answeredBy('prec', '/h', ['-H', 'x-a: 1', '-H', 'x-b: 2'])).toBe('h-two');
      expect(await answeredBy('prec', '/h', ['-H', 'x-a: 1'])).toBe('h-one');
      expect(await answeredBy('prec', '/h', ['-H', 'x-a: 1', '-H', 'x-b: 3'])).toBe('h-one');
      expect(await answeredBy('prec', '/h', ['-H', 'x-b: 2'])).toBe('root');
    });

    it('a query parameter match wins over the same path without one, and needs the exact value', async () => {
      expect(await answeredBy('prec', '/q?v=2')).toBe('q-v2');
      expect(await answeredBy('prec', '/q?a=1&v=2&z=3')).toBe('q-v2');
      expect(await answeredBy('prec', '/q?v=3')).toBe('q-none');
      expect(await answeredBy('prec', '/q?V=2')).toBe('q-none');
      expect(await answeredBy('prec', '/q')).toBe('q-none');
    });

    it('a method match outranks any number of header matches', async () => {
      expect(await answeredBy('prec', '/mh', ['-H', 'x-a: 1', '-H', 'x-b: 2'])).toBe('mh-method');
      expect(await answeredBy('prec', '/mh', ['-X', 'DELETE', '-H', 'x-a: 1', '-H', 'x-b: 2'])).toBe(
        'mh-headers',
      );
    });

    it('a header match outranks any number of query parameter matches', async () => {
      expect(await answeredBy('prec', '/hq?v=1&w=2', ['-H', 'x-a: 1'])).toBe('hq-headers');
      expect(await answeredBy('prec', '/hq?v=1&w=2')).toBe('hq-query');
    });

    it('an exact tie goes to the route listed first', async () => {
      expect(await answeredBy('prec', '/tie', ['-H', 'x-a: 1', '-H', 'x-b: 2'])).toBe('tie-first');
      expect(await answeredBy('prec', '/tie', ['-H', 'x-b: 2'])).toBe('tie-second');
    });

    it('header names match case-insensitively while header values match case-sensitively', async () => {
      expect(await answeredBy('prec', '/ci', ['-H', 'x-ENV: Canary'])).toBe('ci');
      expect(await answeredBy('prec', '/ci', ['-H', 'X-Env: Canary'])).toBe('ci');
      expect(await answeredBy('prec', '/ci', ['-H', 'x-env: canary'])).toBe('root');
    });

    it('a RegularExpression path matches the whole path only', async () => {
      expect(await answeredBy('regex', '/items/42')).toBe('items-regex');
      const partial = await curl(['-H', 'Host: regex', `${base}/items/42/extra`]);
      expect(partial.status).toBe(404);
      expect(partial.header('x-weft-error')).toBe('NO_ROUTE');
      const letters = await curl(['-H', 'Host: regex', `${base}/items/abc`]);
      expect(letters.status).toBe(404);
    });

    it('a RegularExpression header match must match the whole value', async () => {
      expect(await answeredBy('regex', '/hdr', ['-H', 'x-version: v2'])).toBe('hdr-regex');
      const longer = await curl(['-H', 'Host: regex', '-H', 'x-version: v22', `${base}/hdr`]);
      expect(longer.status).toBe(404);
    });
  });

  describe('no route', () => {
    it('answers 404 NO_ROUTE when no route of the selected host matches', async () => {
      expect(await answeredBy('strict', '/only')).toBe('only');
      const res = await curl(['-H', 'Host: strict', `${base}/other`]);
      expect(res.status).toBe(404);
      expect(res.header('x-weft-error')).toBe('NO_ROUTE');
    });

    it('answers 404 NO_ROUTE for a host no virtual host serves, and never falls back to another host', async () => {
      const res = await curl(['-H', 'Host: unknown.internal', `${base}/abc`]);
      expect(res.status).toBe(404);
      expect(res.header('x-weft-error')).toBe('NO_ROUTE');
      // `strict` has no route for /abc; `prec` would have one, but host selection is final.
      const other = await curl(['-H', 'Host: strict', `${base}/abc`]);
      expect(other.status).toBe(404);
    });

    it('sends nothing upstream for a 404', async () => {
      const before = upstreams.root!.seen.length;
      const res = await curl(['-H', 'Host: nowhere', `${base}/`]);
      expect(res.status).toBe(404);
      expect(upstreams.root!.seen.length).toBe(before);
    });
  });

  describe('host matching', () => {
    it('ignores the port and the case of the Host header', async () => {
      expect(await answeredBy('Svc-B:80', '/x')).toBe('svc-b');
      expect(await answeredBy('SVC-B', '/x')).toBe('svc-b');
      expect(await answeredBy('svc-b.default.svc.cluster.local:8080', '/x')).toBe('svc-b');
    });

    it('forwards the Host header as received', async () => {
      const res = await curl(['-H', 'Host: Svc-B:80', `${base}/x`]);
      expect(echoOf(res).headers.host).toBe('Svc-B:80');
    });

    it('a wildcard domain matches one or more labels before its suffix but not the bare suffix', async () => {
      expect(await answeredBy('foo.example.com', '/')).toBe('wild');
      expect(await answeredBy('a.b.example.com', '/')).toBe('wild');
      expect(await answeredBy('FOO.Example.COM:8443', '/')).toBe('wild');
      const bare = await curl(['-H', 'Host: example.com', `${base}/`]);
      expect(bare.status).toBe(404);
      expect(bare.header('x-weft-error')).toBe('NO_ROUTE');
    });

    it('an exact domain beats a wildcard that also matches', async () => {
      expect(await answeredBy('api.example.com', '/')).toBe('api');
    });
  });

  describe('absolute-form requests (the app uses the sidecar as HTTP_PROXY)', () => {
    it('routes like a Host-routed request and sends origin-form upstream', async () => {
      const res = await curl(['-x', base, 'http://svc-b/x/y?q=1&r=%41']);
      expect(res.status).toBe(200);
      const echo = echoOf(res);
      expect(echo.name).toBe('svc-b');
      expect(echo.url).toBe('/x/y?q=1&r=%41');
      expect(echo.headers.host).toBe('svc-b');
      expect(echo.headers['proxy-connection']).toBeUndefined();
    });

    it('ignores case and port in the absolute-form authority', async () => {
      const res = await curl(['-x', base, 'http://SVC-B.default.svc.cluster.local:9090/p']);
      expect(echoOf(res).name).toBe('svc-b');
      expect(echoOf(res).url).toBe('/p');
    });

    it('routes by the absolute-form authority, not by a conflicting Host header (RFC 9112 §3.2.2)', async () => {
      const res = await curl(['-x', base, '-H', 'Host: prec', 'http://svc-b/abc']);
      const echo = echoOf(res);
      expect(echo.name).toBe('svc-b');
      expect(echo.headers.host).toBe('svc-b');
    });

    it('applies path precedence to absolute-form requests too', async () => {
      const res = await curl(['-x', base, 'http://prec/abc/def']);
      expect(echoOf(res).name).toBe('exact-abc-def');
    });

    it('answers 404 NO_ROUTE for an absolute-form request to an unknown host', async () => {
      const res = await curl(['-x', base, 'http://nowhere.internal/']);
      expect(res.status).toBe(404);
      expect(res.header('x-weft-error')).toBe('NO_ROUTE');
    });
  });
});
