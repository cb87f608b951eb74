/**
 * The per-listener filter hook (ProxyCore `listenerFilters`, filters/listener-filters.ts): the
 * filters a factory builds from a listener's config run on that listener only, after the global
 * filters; a factory that throws rejects the config (ConfigError) and the last good one serves on.
 */
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../sidecar/proxy/config/errors.ts';
import type { ProxyConfig } from '../../../sidecar/proxy/config/model.ts';
import type { Listener } from '../../../sidecar/proxy/config/types.ts';
import { CONTINUE, type HttpFilter } from '../../../sidecar/proxy/filters/filter.ts';
import type { ListenerFilterFactory } from '../../../sidecar/proxy/filters/listener-filters.ts';
import { ProxyCore } from '../../../sidecar/proxy/proxy.ts';

const config = (teapot: string): ProxyConfig => ({
  listeners: [
    { name: 'edge', address: '127.0.0.1', port: 0, direction: 'GATEWAY', routeConfigName: 'r' },
    { name: 'plain', address: '127.0.0.1', port: 0, direction: 'OUTBOUND', routeConfigName: 'r' },
  ],
  routes: [
    {
      name: 'r',
      virtualHosts: [
        { domains: ['*'], routes: [{ name: 'ok', directResponse: { status: 200, body: teapot } }] },
      ],
    },
  ],
  clusters: [],
  endpoints: [],
});

const order: string[] = [];
const global: HttpFilter = {
  name: 'test.global',
  onRequest: () => {
    order.push('global');
    return CONTINUE;
  },
};
const teapots: ListenerFilterFactory = {
  name: 'test.teapot',
  create(l: Listener, c: ProxyConfig): HttpFilter[] {
    if (l.direction !== 'GATEWAY') return [];
    const body = c.routes[0]?.virtualHosts?.[0]?.routes?.[0]?.directResponse?.body ?? '';
    if (body === 'bad') throw new Error('teapot: body "bad" is not allowed');
    return [
      {
        name: 'test.teapot',
        onRequest: () => {
          order.push('teapot');
          return { kind: 'respond', status: 418, body };
        },
      },
    ];
  },
};

describe('per-listener filter factories', () => {
  it('run on the listeners they build filters for, after the global filters; a throwing factory rejects the config', async () => {
    const proxy = new ProxyCore({ filters: [global], listenerFilters: [teapots] });
    try {
      await proxy.apply(config('v1'), '1');
      const port = (name: string) => proxy.listeners().find((l) => l.name === name)?.port as number;
      const get = async (name: string) => {
        const res = await request(`http://127.0.0.1:${port(name)}/`);
        return { status: res.statusCode, body: await res.body.text() };
      };
      order.length = 0;
      expect(await get('edge')).toEqual({ status: 418, body: 'v1' });
      expect(await get('plain')).toEqual({ status: 200, body: 'v1' });
      expect(order).toEqual(['global', 'teapot', 'global']);

      let error: unknown;
      try {
        await proxy.apply(config('bad'), '2');
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toEqual(['Listener edge: teapot: body "bad" is not allowed']);
      expect(proxy.version).toBe('1');
      expect(await get('edge')).toEqual({ status: 418, body: 'v1' });

      await proxy.apply(config('v3'), '3');
      expect(await get('edge')).toEqual({ status: 418, body: 'v3' });
    } finally {
      await proxy.close(0);
    }
  });
});
