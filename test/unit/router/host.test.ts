/**
 * Virtual host selection: exact names, leading wildcards (Gateway API hostname semantics) and `*`.
 */
import { describe, expect, it } from 'vitest';
import type { VirtualHost } from '../../../sidecar/proxy/config/types.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';
import type { RouteTable } from '../../../sidecar/proxy/router/types.ts';

function vhost(name: string, ...domains: string[]): VirtualHost {
  return { name, domains, routes: [{ name: `${name}-route`, route: { clusters: [{ name }] } }] };
}

function selected(t: RouteTable, host: string): string | undefined {
  return t.match({ host, path: '/', query: '', method: 'GET', headers: {} })?.virtualHost;
}

describe('virtual host selection', () => {
  const t = compileRouteTable({
    name: 'hosts',
    virtualHosts: [
      vhost('any', '*'),
      vhost('wild-short', '*.example.com'),
      vhost('wild-long', '*.api.example.com'),
      vhost('exact', 'api.example.com', 'Reviews'),
      vhost('exact-deep', 'v1.api.example.com'),
    ],
  });

  it.each([
    ['api.example.com', 'exact'],
    ['reviews', 'exact'],
    ['v1.api.example.com', 'exact-deep'],
    ['v2.api.example.com', 'wild-long'],
    ['a.b.api.example.com', 'wild-long'],
    ['www.example.com', 'wild-short'],
    ['a.b.example.com', 'wild-short'],
    ['example.com', 'any'],
    ['other.org', 'any'],
    ['xexample.com', 'any'],
  ])('host %s selects virtual host %s', (host, expected) => {
    expect(selected(t, host)).toBe(expected);
  });

  it('an exact domain beats a wildcard that also matches', () => {
    expect(selected(t, 'api.example.com')).toBe('exact');
  });

  it('the longest wildcard suffix wins, whatever the list order', () => {
    expect(selected(t, 'x.api.example.com')).toBe('wild-long');
  });

  it('a wildcard does not match its bare suffix', () => {
    const only = compileRouteTable({ name: 'w', virtualHosts: [vhost('w', '*.example.com')] });
    expect(selected(only, 'example.com')).toBeUndefined();
    expect(selected(only, 'a.example.com')).toBe('w');
  });

  it('no matching domain means no route (404)', () => {
    const only = compileRouteTable({ name: 'e', virtualHosts: [vhost('e', 'svc-b')] });
    expect(only.match({ host: 'svc-c', path: '/', query: '', method: 'GET', headers: {} })).toBeUndefined();
  });

  it('an empty domain list serves any host', () => {
    const t2 = compileRouteTable({
      name: 'e',
      virtualHosts: [{ name: 'e', routes: [{ route: { clusters: [{ name: 'c' }] } }] }],
    });
    expect(selected(t2, 'whatever')).toBe('e');
  });

  it('selection is exclusive: a host that picks a virtual host never falls back to another', () => {
    const t2 = compileRouteTable({
      name: 'x',
      virtualHosts: [
        {
          name: 'exact',
          domains: ['a.test'],
          routes: [
            { matches: [{ path: { type: 'EXACT', value: '/only' } }], route: { clusters: [{ name: 'c' }] } },
          ],
        },
        vhost('any', '*'),
      ],
    });
    expect(
      t2.match({ host: 'a.test', path: '/other', query: '', method: 'GET', headers: {} }),
    ).toBeUndefined();
  });

  it('the table keeps the configuration name', () => {
    expect(t.name).toBe('hosts');
  });
});
