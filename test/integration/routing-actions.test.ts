/**
 * Routing integration: what a matched route does (Gateway API v1 HTTPRoute filters and
 * backendRefs, CONVENTIONS B1): weighted splits, the 500 share of an invalid backend, request and
 * response header modifiers (route and per backend), URLRewrite, RequestRedirect and direct
 * responses. A real `weft sidecar`, real upstreams on loopback, curl as the client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl } from '../support/curl.ts';
import { clustersFor, curlMany, echoOf, namedUpstream, tally } from '../support/routing.ts';
import { outboundBootstrap, type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import type { Upstream } from '../support/upstream.ts';

/** |observed - n p| within `sigmas` binomial standard deviations. */
function expectBinomial(observed: number, n: number, p: number, sigmas = 5): void {
  const sd = Math.sqrt(n * p * (1 - p));
  expect(
    Math.abs(observed - n * p),
    `observed ${observed} of ${n}, expected ${n * p} ± ${sigmas}σ (σ=${sd})`,
  ).toBeLessThanOrEqual(sigmas * sd);
}

describe('routing: route actions and filters', () => {
  const upstreams: Record<string, Upstream> = {};
  let sidecar: RunningSidecar;
  let base: string;

  beforeAll(async () => {
    for (const name of ['split-a', 'split-b', 'split-zero', 'valid', 'echo', 'echo-2']) {
      upstreams[name] = await namedUpstream(name, (_req, res) => {
        // Fields for the ResponseHeaderModifier cases to set, append to and remove.
        res.setHeader('x-upstream-secret', 's3cr3t');
        res.setHeader('x-resp-add', 'from-upstream');
        res.setHeader('x-resp-set', 'from-upstream');
      });
    }
    sidecar = await startSidecar(
      outboundBootstrap({
        virtualHosts: [
          {
            name: 'split',
            domains: ['split'],
            routes: [
              {
                name: 'split',
                route: {
                  clusters: [
                    { name: 'split-a', weight: 80 },
                    { name: 'split-b', weight: 20 },
                    { name: 'split-zero', weight: 0 },
                  ],
                },
              },
            ],
          },
          {
            name: 'no-backend',
            domains: ['no-backend'],
            routes: [
              {
                name: 'all-weights-zero',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/zero' } }],
                route: { clusters: [{ name: 'split-zero', weight: 0 }] },
              },
              { name: 'no-backend-refs', route: {} },
            ],
          },
          {
            name: 'invalid-share',
            domains: ['invalid-share'],
            routes: [
              {
                name: 'half-invalid',
                route: {
                  clusters: [
                    { name: 'valid', weight: 1 },
                    { name: 'ghost', weight: 1, invalidReason: 'backendRef Service default/ghost not found' },
                  ],
                },
              },
            ],
          },
          {
            name: 'headers',
            domains: ['headers'],
            routes: [
              {
                name: 'request-modifier',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/req' } }],
                route: { clusters: [{ name: 'echo' }] },
                requestHeaderModifier: {
                  set: [
                    { name: 'X-Set', value: 'new' },
                    { name: 'x-set-absent', value: 'created' },
                  ],
                  add: [{ name: 'x-add', value: 'added' }],
                  remove: ['X-Remove'],
                },
              },
              {
                name: 'response-modifier',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/resp' } }],
                route: { clusters: [{ name: 'echo' }] },
                responseHeaderModifier: {
                  set: [{ name: 'x-resp-set', value: 'from-proxy' }],
                  add: [{ name: 'X-Resp-Add', value: 'from-proxy' }],
                  remove: ['x-upstream-secret'],
                },
              },
              {
                name: 'per-backend',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/backend' } }],
                requestHeaderModifier: { set: [{ name: 'x-route', value: 'per-backend' }] },
                route: {
                  clusters: [
                    {
                      name: 'echo',
                      requestHeaderModifier: { set: [{ name: 'x-backend', value: 'echo' }] },
                      responseHeaderModifier: { set: [{ name: 'x-backend-resp', value: 'echo' }] },
                    },
                    {
                      name: 'echo-2',
                      requestHeaderModifier: { set: [{ name: 'x-backend', value: 'echo-2' }] },
                      responseHeaderModifier: { set: [{ name: 'x-backend-resp', value: 'echo-2' }] },
                    },
                  ],
                },
              },
            ],
          },
          {
            name: 'rewrite',
            domains: ['rewrite'],
            routes: [
              {
                name: 'replace-prefix',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/api/v1' } }],
                urlRewrite: { path: { type: 'REPLACE_PREFIX_MATCH', value: '/v2' } },
                route: { clusters: [{ name: 'echo' }] },
              },
              {
                name: 'strip-prefix',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/strip/' } }],
                urlRewrite: { path: { type: 'REPLACE_PREFIX_MATCH', value: '/' } },
                route: { clusters: [{ name: 'echo' }] },
              },
              {
                name: 'replace-full',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/full' } }],
                urlRewrite: { path: { type: 'REPLACE_FULL_PATH', value: '/replaced/path' } },
                route: { clusters: [{ name: 'echo' }] },
              },
              {
                name: 'two-prefixes',
                matches: [
                  { path: { type: 'PATH_PREFIX', value: '/one' } },
                  { path: { type: 'PATH_PREFIX', value: '/two/deeper' } },
                ],
                urlRewrite: { path: { type: 'REPLACE_PREFIX_MATCH', value: '/n' } },
                route: { clusters: [{ name: 'echo' }] },
              },
              {
                name: 'hostname',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/host' } }],
                urlRewrite: { hostname: 'Internal.Example' },
                route: { clusters: [{ name: 'echo' }] },
              },
              { name: 'no-rewrite', route: { clusters: [{ name: 'echo' }] } },
            ],
          },
          {
            name: 'redirect',
            domains: ['redirect', 'redirect.example'],
            routes: [
              {
                name: 'to-https',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/https' } }],
                redirect: { scheme: 'https' },
              },
              {
                name: 'to-host',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/host' } }],
                redirect: { hostname: 'new.example', statusCode: 301 },
              },
              {
                name: 'to-port',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/port' } }],
                redirect: { scheme: 'https', port: 8443, statusCode: 308 },
              },
              {
                name: 'to-http-80',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/http80' } }],
                redirect: { scheme: 'http', hostname: 'plain.example', port: 80 },
              },
              {
                name: 'full-path',
                matches: [{ path: { type: 'EXACT', value: '/old-page' } }],
                redirect: { path: { type: 'REPLACE_FULL_PATH', value: '/new-page' }, statusCode: 307 },
              },
              {
                name: 'prefix-path',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/old' } }],
                redirect: { path: { type: 'REPLACE_PREFIX_MATCH', value: '/new' }, statusCode: 303 },
              },
            ],
          },
          {
            name: 'direct',
            domains: ['direct'],
            routes: [
              {
                name: 'teapot',
                matches: [{ path: { type: 'EXACT', value: '/teapot' } }],
                directResponse: { status: 418, body: 'short and stout\n', contentType: 'text/x-teapot' },
              },
              { name: 'ok', directResponse: { status: 200, body: 'hello from the proxy' } },
            ],
          },
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

  describe('weighted backends', () => {
    it('splits 80/20 by weight over 2000 requests and sends nothing to a weight-0 backend', async () => {
      const zeroBefore = upstreams['split-zero']!.seen.length;
      const n = 2000;
      const lines = await curlMany(`${base}/w`, n, '%{http_code} %header{x-upstream}', ['-H', 'Host: split']);
      expect(lines).toHaveLength(n);
      const counts = tally(lines);
      expect([...counts.keys()].sort()).toEqual(['200 split-a', '200 split-b']);
      expectBinomial(counts.get('200 split-a') ?? 0, n, 0.8);
      expectBinomial(counts.get('200 split-b') ?? 0, n, 0.2);
      expect(upstreams['split-zero']!.seen.length).toBe(zeroBefore);
    });

    it('answers the share routed to an invalid backend with 500 INVALID_BACKEND and forwards the rest', async () => {
      const validBefore = upstreams.valid!.seen.length;
      const n = 400;
      const lines = await curlMany(`${base}/`, n, '%{http_code} %header{x-weft-error}%header{x-upstream}', [
        '-H',
        'Host: invalid-share',
      ]);
      const counts = tally(lines);
      expect([...counts.keys()].sort()).toEqual(['200 valid', '500 INVALID_BACKEND']);
      expectBinomial(counts.get('500 INVALID_BACKEND') ?? 0, n, 0.5);
      expect(upstreams.valid!.seen.length - validBefore).toBe(counts.get('200 valid'));
    });

    it('answers 500 INVALID_BACKEND when every backend has weight 0, and sends nothing', async () => {
      const zeroBefore = upstreams['split-zero']!.seen.length;
      const res = await curl(['-H', 'Host: no-backend', `${base}/zero`]);
      expect(res.status).toBe(500);
      expect(res.header('x-weft-error')).toBe('INVALID_BACKEND');
      expect(upstreams['split-zero']!.seen.length).toBe(zeroBefore);
    });

    it('answers 500 INVALID_BACKEND for a rule without backendRefs', async () => {
      const res = await curl(['-H', 'Host: no-backend', `${base}/anything`]);
      expect(res.status).toBe(500);
      expect(res.header('x-weft-error')).toBe('INVALID_BACKEND');
    });
  });

  describe('header modifiers', () => {
    it('RequestHeaderModifier removes, sets and adds request headers before the upstream sees them', async () => {
      const res = await curl([
        '-H',
        'Host: headers',
        '-H',
        'x-set: old',
        '-H',
        'x-set: older',
        '-H',
        'x-add: original',
        '-H',
        'x-remove: gone',
        '-H',
        'x-keep: kept',
        `${base}/req`,
      ]);
      expect(res.status).toBe(200);
      const seen = echoOf(res).headers;
      expect(seen['x-set']).toBe('new');
      expect(seen['x-set-absent']).toBe('created');
      expect(seen['x-add']).toBe('original, added');
      expect(seen['x-remove']).toBeUndefined();
      expect(seen['x-keep']).toBe('kept');
    });

    it('RequestHeaderModifier add creates a header the client did not send', async () => {
      const res = await curl(['-H', 'Host: headers', `${base}/req`]);
      expect(echoOf(res).headers['x-add']).toBe('added');
    });

    it('ResponseHeaderModifier removes, sets and adds response headers before the client sees them', async () => {
      const res = await curl(['-H', 'Host: headers', `${base}/resp`]);
      expect(res.status).toBe(200);
      expect(res.header('x-upstream')).toBe('echo');
      expect(res.header('x-upstream-secret')).toBeUndefined();
      expect(res.all('x-resp-set')).toEqual(['from-proxy']);
      expect(res.all('x-resp-add')).toEqual(['from-upstream', 'from-proxy']);
    });

    it('leaves the response alone on a route without a ResponseHeaderModifier', async () => {
      const res = await curl(['-H', 'Host: headers', `${base}/req`]);
      expect(res.header('x-upstream-secret')).toBe('s3cr3t');
      expect(res.all('x-resp-add')).toEqual(['from-upstream']);
    });

    it('applies a backend’s own modifiers only to the requests sent to that backend, on top of the route’s', async () => {
      const n = 60;
      const lines = await curlMany(`${base}/backend`, n, '%header{x-upstream} %header{x-backend-resp}', [
        '-H',
        'Host: headers',
      ]);
      const counts = tally(lines);
      expect([...counts.keys()].sort()).toEqual(['echo echo', 'echo-2 echo-2']);
      for (const name of ['echo', 'echo-2']) {
        const last = upstreams[name]!.seen.at(-1)!;
        expect(last.headers['x-backend']).toBe(name);
        expect(last.headers['x-route']).toBe('per-backend');
      }
    });
  });

  describe('URLRewrite', () => {
    it('ReplacePrefixMatch replaces the matched prefix element-wise and keeps the rest', async () => {
      const at = async (path: string) => echoOf(await curl(['-H', 'Host: rewrite', `${base}${path}`])).url;
      expect(await at('/api/v1/items/7')).toBe('/v2/items/7');
      expect(await at('/api/v1')).toBe('/v2');
      expect(await at('/api/v1/')).toBe('/v2/');
      expect(await at('/api/v1x')).toBe('/api/v1x'); // not an element-wise match: no-rewrite route
    });

    it('ReplacePrefixMatch with "/" strips the prefix', async () => {
      const at = async (path: string) => echoOf(await curl(['-H', 'Host: rewrite', `${base}${path}`])).url;
      expect(await at('/strip/a/b')).toBe('/a/b');
      expect(await at('/strip')).toBe('/');
    });

    it('ReplacePrefixMatch replaces whichever prefix of the rule matched', async () => {
      const at = async (path: string) => echoOf(await curl(['-H', 'Host: rewrite', `${base}${path}`])).url;
      expect(await at('/one/x')).toBe('/n/x');
      expect(await at('/two/deeper/x')).toBe('/n/x');
      expect(await at('/two/x')).toBe('/two/x'); // neither prefix: no-rewrite route
    });

    it('ReplaceFullPath replaces the whole path', async () => {
      const res = await curl(['-H', 'Host: rewrite', `${base}/full/anything/here`]);
      expect(echoOf(res).url).toBe('/replaced/path');
    });

    it('hostname rewrites the Host header the upstream sees and leaves the path alone', async () => {
      const res = await curl(['-H', 'Host: rewrite:8080', `${base}/host/p?x=1`]);
      const echo = echoOf(res);
      expect(echo.headers.host).toBe('internal.example');
      expect(echo.url).toBe('/host/p?x=1');
    });

    it('forwards the query string byte for byte through a path rewrite', async () => {
      const query = 'a=b&a=c&x=%2F&%41=%41&sp=a+b%20c&empty=&flag&semi=1;2&q=%3F%26';
      const prefixed = await curl(['-H', 'Host: rewrite', `${base}/api/v1/q?${query}`]);
      expect(echoOf(prefixed).url).toBe(`/v2/q?${query}`);
      const full = await curl(['-H', 'Host: rewrite', `${base}/full?${query}`]);
      expect(echoOf(full).url).toBe(`/replaced/path?${query}`);
    });

    it('forwards an empty query (a bare "?") as received', async () => {
      const res = await curl(['-H', 'Host: rewrite', `${base}/api/v1/x?`]);
      expect(echoOf(res).url).toBe('/v2/x?');
    });

    it('without a rewrite forwards the normalized path it matched and the query exactly as received', async () => {
      const target = '/raw/%7euser/a//c;p=1/%2e%2E/x?a=b&a=c&x=%2F&%41=1&flag';
      const res = await curl(['--path-as-is', '-H', 'Host: rewrite', `${base}${target}`]);
      expect(res.status).toBe(200);
      expect(echoOf(res).url).toBe('/raw/~user/a/x?a=b&a=c&x=%2F&%41=1&flag');
    });

    it('refuses an encoded slash in the path with 400 (it could hide a path from the rules)', async () => {
      const res = await curl(['--path-as-is', '-H', 'Host: rewrite', `${base}/raw/a%2Fb`]);
      expect(res.status).toBe(400);
      expect(res.header('x-weft-error')).toBe('BAD_REQUEST');
    });

    it('rewrites an absolute-form request and sends the result in origin form', async () => {
      const res = await curl(['-x', base, 'http://rewrite/api/v1/items?x=%2F']);
      const echo = echoOf(res);
      expect(echo.url).toBe('/v2/items?x=%2F');
      expect(echo.headers.host).toBe('rewrite');
    });
  });

  describe('RequestRedirect', () => {
    async function redirect(
      hostHeader: string,
      path: string,
    ): Promise<{ status: number; location: string | undefined }> {
      const res = await curl(['-H', `Host: ${hostHeader}`, `${base}${path}`]);
      expect(res.header('x-upstream')).toBeUndefined();
      return { status: res.status, location: res.header('location') };
    }

    it('scheme https without a port redirects to the default port (left out) with 302 and keeps the query', async () => {
      expect(await redirect('redirect', '/https/a?x=1&y=%41')).toEqual({
        status: 302,
        location: 'https://redirect/https/a?x=1&y=%41',
      });
      expect(await redirect('redirect:8080', '/https')).toEqual({
        status: 302,
        location: 'https://redirect/https',
      });
    });

    it('hostname only keeps the scheme and the port the client addressed', async () => {
      expect(await redirect('redirect:8080', '/host/x?q=1')).toEqual({
        status: 301,
        location: 'http://new.example:8080/host/x?q=1',
      });
    });

    it('hostname only, with no port in Host, redirects without a port (the client used the default port)', async () => {
      expect(await redirect('redirect', '/host/x')).toEqual({
        status: 301,
        location: 'http://new.example/host/x',
      });
    });

    it('a configured non-default port appears in Location', async () => {
      expect(await redirect('redirect.example', '/port/p?k=v')).toEqual({
        status: 308,
        location: 'https://redirect.example:8443/port/p?k=v',
      });
    });

    it('a configured default port (http:80) is left out of Location', async () => {
      expect(await redirect('redirect:9000', '/http80/z')).toEqual({
        status: 302,
        location: 'http://plain.example/http80/z',
      });
    });

    it('ReplaceFullPath replaces the path and keeps the query', async () => {
      expect(await redirect('redirect', '/old-page?keep=1')).toEqual({
        status: 307,
        location: 'http://redirect/new-page?keep=1',
      });
    });

    it('ReplacePrefixMatch replaces the matched prefix and keeps the rest and the query', async () => {
      expect(await redirect('redirect', '/old/a/b?z=%2F')).toEqual({
        status: 303,
        location: 'http://redirect/new/a/b?z=%2F',
      });
      expect(await redirect('redirect', '/old')).toEqual({ status: 303, location: 'http://redirect/new' });
    });

    it('uses the absolute-form authority of an HTTP_PROXY request as the default host', async () => {
      const res = await curl(['-x', base, 'http://Redirect.Example/https/p']);
      expect(res.status).toBe(302);
      expect(res.header('location')).toBe('https://redirect.example/https/p');
    });
  });

  describe('direct response', () => {
    it('answers with the configured status, body and content type without an upstream', async () => {
      const res = await curl(['-H', 'Host: direct', `${base}/teapot`]);
      expect(res.status).toBe(418);
      expect(res.body).toBe('short and stout\n');
      expect(res.header('content-type')).toBe('text/x-teapot');
      expect(res.header('content-length')).toBe(String(Buffer.byteLength('short and stout\n')));
      expect(res.header('x-weft-error')).toBeUndefined();
    });

    it('defaults the content type to text/plain', async () => {
      const res = await curl(['-H', 'Host: direct', `${base}/anything`]);
      expect(res.status).toBe(200);
      expect(res.body).toBe('hello from the proxy');
      expect(res.header('content-type')).toBe('text/plain; charset=utf-8');
    });

    it('sends no body to a HEAD request', async () => {
      const res = await curl(['-I', '-H', 'Host: direct', `${base}/teapot`]);
      expect(res.status).toBe(418);
      expect(res.body).toBe('');
    });
  });
});
