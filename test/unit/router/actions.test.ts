/**
 * Route actions: weighted backends (conformance HTTPRouteWeight, weight 0, invalid backends),
 * RequestRedirect (conformance MeshHTTPRouteRedirectPath / Port / Scheme, port defaults) and
 * direct responses.
 */
import { describe, expect, it } from 'vitest';
import type { RedirectAction, Route, WeightedCluster } from '../../../sidecar/proxy/config/types.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';
import type { RouteMatchResult, RouteRequest, WeightedBackend } from '../../../sidecar/proxy/router/types.ts';

function request(target: string): RouteRequest {
  const q = target.indexOf('?');
  return {
    host: 'echo',
    path: q === -1 ? target : target.slice(0, q),
    query: q === -1 ? '' : target.slice(q + 1),
    method: 'GET',
    headers: {},
  };
}

function matchOne(routes: Route[], target = '/'): RouteMatchResult {
  const t = compileRouteTable({ name: 'a', virtualHosts: [{ name: 'echo', domains: ['echo'], routes }] });
  const result = t.match(request(target));
  if (result === undefined) throw new Error(`no route for ${target}`);
  return result;
}

function picker(clusters: WeightedCluster[]): (random: number) => WeightedBackend {
  const action = matchOne([{ name: 'split', route: { clusters } }]).action;
  if (action.kind !== 'forward') throw new Error('expected forward');
  return (random) => action.pickBackend(random);
}

/** Picks over `n` evenly spaced random values in [0, 1) and counts picks per cluster (or reason). */
function sweep(pick: (random: number) => WeightedBackend, n: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const b = pick((i + 0.5) / n);
    const key = b.invalidReason === undefined ? b.cluster : `invalid:${b.invalidReason}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

describe('weighted backends', () => {
  it('conformance HTTPRouteWeight: 70/30/0 splits traffic exactly 70% / 30% / never', () => {
    const pick = picker([
      { name: 'infra-backend-v1', weight: 70 },
      { name: 'infra-backend-v2', weight: 30 },
      { name: 'infra-backend-v3', weight: 0 },
    ]);
    expect(sweep(pick, 1000)).toEqual({ 'infra-backend-v1': 700, 'infra-backend-v2': 300 });
  });

  it('weights need not add up to 100: the share is weight / sum', () => {
    expect(
      sweep(
        picker([
          { name: 'a', weight: 1 },
          { name: 'b', weight: 3 },
        ]),
        400,
      ),
    ).toEqual({ a: 100, b: 300 });
  });

  it('an absent weight defaults to 1', () => {
    expect(sweep(picker([{ name: 'a' }, { name: 'b' }, { name: 'c', weight: 2 }]), 400)).toEqual({
      a: 100,
      b: 100,
      c: 200,
    });
  });

  it('a weight-0 backend is never picked, even at the boundaries of its neighbours', () => {
    const pick = picker([
      { name: 'zero-first', weight: 0 },
      { name: 'a', weight: 1 },
      { name: 'zero-mid', weight: 0 },
      { name: 'b', weight: 1 },
      { name: 'zero-last', weight: 0 },
    ]);
    for (const r of [0, 0.25, 0.5 - Number.EPSILON, 0.5, 0.75, 1 - Number.EPSILON]) {
      expect(pick(r).cluster).not.toMatch(/^zero/);
    }
    expect(pick(0).cluster).toBe('a');
    expect(pick(0.5).cluster).toBe('b');
    expect(pick(1 - Number.EPSILON).cluster).toBe('b');
  });

  it('out-of-range random values are clamped to the first or last backend', () => {
    const pick = picker([{ name: 'a' }, { name: 'b' }]);
    expect(pick(-1).cluster).toBe('a');
    expect(pick(1).cluster).toBe('b');
    expect(pick(Number.NaN).cluster).toBe('b');
  });

  it('the share of an invalid backend carries its reason (the caller answers 500)', () => {
    const pick = picker([
      { name: 'good' },
      { name: 'missing', invalidReason: 'service "missing" not found' },
    ]);
    expect(sweep(pick, 100)).toEqual({ good: 50, 'invalid:service "missing" not found': 50 });
  });

  it.each([
    [
      'all weights are 0',
      [
        { name: 'a', weight: 0 },
        { name: 'b', weight: 0 },
      ],
    ],
    ['the cluster list is empty', []],
  ] as const)('when %s every request gets an invalid backend', (_, clusters) => {
    const pick = picker([...clusters]);
    expect(sweep(pick, 10)).toEqual({ 'invalid:no backend with weight > 0': 10 });
  });

  it('a route with no action forwards to no backend (500), like a rule without backendRefs', () => {
    const result = matchOne([{ name: 'none' }]);
    if (result.action.kind !== 'forward') throw new Error('expected forward');
    expect(result.action.pickBackend(0.3).invalidReason).toBe('no backend with weight > 0');
  });

  it('per-backend header modifiers are compiled onto the picked backend', () => {
    const pick = picker([
      { name: 'a', requestHeaderModifier: { set: [{ name: 'X-Backend', value: 'a' }] } },
      { name: 'b' },
    ]);
    const headers: Record<string, string | string[]> = {};
    pick(0).requestHeaderModifier?.apply(headers);
    expect(headers).toEqual({ 'x-backend': 'a' });
    expect(pick(0.9).requestHeaderModifier).toBeUndefined();
  });
});

describe('RequestRedirect', () => {
  const redirectRoute = (prefix: string, redirect: RedirectAction): Route => ({
    name: prefix,
    matches: [{ path: { type: 'PATH_PREFIX', value: prefix } }],
    redirect,
  });
  const routes: Route[] = [
    redirectRoute('/original-prefix', {
      path: { type: 'REPLACE_PREFIX_MATCH', value: '/replacement-prefix' },
    }),
    redirectRoute('/full', { path: { type: 'REPLACE_FULL_PATH', value: '/full-path-replacement' } }),
    redirectRoute('/path-and-host', {
      hostname: 'example.org',
      path: { type: 'REPLACE_PREFIX_MATCH', value: '/replacement-prefix' },
    }),
    redirectRoute('/path-and-status', {
      path: { type: 'REPLACE_PREFIX_MATCH', value: '/replacement-prefix' },
      statusCode: 301,
    }),
    redirectRoute('/full-path-and-host', {
      hostname: 'example.org',
      path: { type: 'REPLACE_FULL_PATH', value: '/replacement-full' },
    }),
    redirectRoute('/full-path-and-status', {
      path: { type: 'REPLACE_FULL_PATH', value: '/replacement-full' },
      statusCode: 301,
    }),
    redirectRoute('/port', { port: 8083 }),
    redirectRoute('/port-and-host', { hostname: 'example.org', port: 8083 }),
    redirectRoute('/port-and-status', { port: 8083, statusCode: 301 }),
    redirectRoute('/scheme', { scheme: 'https' }),
    redirectRoute('/scheme-and-host', { hostname: 'example.org', scheme: 'https' }),
    redirectRoute('/scheme-and-status', { scheme: 'https', statusCode: 307 }),
    redirectRoute('/to-http', { scheme: 'http' }),
    redirectRoute('/see-other', { statusCode: 303 }),
    redirectRoute('/permanent', { statusCode: 308 }),
  ];

  function redirect(target: string, scheme = 'http', port: number | undefined = 80) {
    const action = matchOne(routes, target).action;
    if (action.kind !== 'redirect') throw new Error(`expected redirect for ${target}`);
    return action.redirect(request(target), scheme, port);
  }

  it.each([
    ['/original-prefix/lemon', 302, 'http://echo/replacement-prefix/lemon'],
    ['/full/path/original', 302, 'http://echo/full-path-replacement'],
    ['/path-and-host', 302, 'http://example.org/replacement-prefix'],
    ['/path-and-status', 301, 'http://echo/replacement-prefix'],
    ['/full-path-and-host', 302, 'http://example.org/replacement-full'],
    ['/full-path-and-status', 301, 'http://echo/replacement-full'],
    ['/port', 302, 'http://echo:8083/port'],
    ['/port-and-host', 302, 'http://example.org:8083/port-and-host'],
    ['/port-and-status', 301, 'http://echo:8083/port-and-status'],
    ['/scheme', 302, 'https://echo/scheme'],
    ['/scheme-and-host', 302, 'https://example.org/scheme-and-host'],
    ['/scheme-and-status', 307, 'https://echo/scheme-and-status'],
    ['/see-other', 303, 'http://echo/see-other'],
    ['/permanent', 308, 'http://echo/permanent'],
  ])('conformance: %s redirects with %i to %s', (target, status, location) => {
    expect(redirect(target)).toEqual({ status, location });
  });

  it('keeps the original query string', () => {
    expect(redirect('/original-prefix/x?a=1&b=%20').location).toBe(
      'http://echo/replacement-prefix/x?a=1&b=%20',
    );
  });

  it('without a scheme or port, the listener port is kept unless it is the default for the scheme', () => {
    expect(redirect('/see-other', 'http', 8080).location).toBe('http://echo:8080/see-other');
    expect(redirect('/see-other', 'https', 443).location).toBe('https://echo/see-other');
    expect(redirect('/see-other', 'https', 8443).location).toBe('https://echo:8443/see-other');
    expect(redirect('/see-other', 'http', undefined).location).toBe('http://echo/see-other');
  });

  it('a configured scheme without a port uses the scheme’s well-known port, left out of Location', () => {
    expect(redirect('/scheme', 'http', 8080).location).toBe('https://echo/scheme');
    expect(redirect('/to-http', 'https', 8443).location).toBe('http://echo/to-http');
  });

  it('a configured port equal to the scheme default is left out', () => {
    const action = matchOne([redirectRoute('/', { scheme: 'https', port: 443 })]).action;
    if (action.kind !== 'redirect') throw new Error('expected redirect');
    expect(action.redirect(request('/x'), 'http', 80).location).toBe('https://echo/x');
  });

  it('REPLACE_PREFIX_MATCH replaces the prefix of the match that hit, when a route has several', () => {
    const multi: Route = {
      name: 'multi',
      matches: [
        { path: { type: 'PATH_PREFIX', value: '/old' } },
        { path: { type: 'PATH_PREFIX', value: '/legacy/v1' } },
      ],
      redirect: { path: { type: 'REPLACE_PREFIX_MATCH', value: '/new' } },
    };
    for (const [target, location] of [
      ['/old/a', 'http://echo/new/a'],
      ['/legacy/v1/a', 'http://echo/new/a'],
    ] as const) {
      const action = matchOne([multi], target).action;
      if (action.kind !== 'redirect') throw new Error('expected redirect');
      expect(action.redirect(request(target), 'http', 80).location).toBe(location);
    }
  });
});

describe('direct response', () => {
  it('answers with the configured status and body, text/plain by default', () => {
    expect(matchOne([{ name: 'd', directResponse: { status: 503, body: 'maintenance' } }]).action).toEqual({
      kind: 'direct',
      status: 503,
      body: 'maintenance',
      contentType: 'text/plain; charset=utf-8',
    });
  });

  it('keeps a configured content type and defaults the body to empty', () => {
    expect(
      matchOne([{ name: 'd', directResponse: { status: 200, contentType: 'application/json' } }]).action,
    ).toEqual({
      kind: 'direct',
      status: 200,
      body: '',
      contentType: 'application/json',
    });
  });
});
