/**
 * End to end through the proxy's own router: golden snapshots compiled with `compileRouteTable`
 * route requests the way GAMMA and Gateway API say (host names, 404 once routes attach, weights,
 * 500 for an invalid backend's share, gRPC method paths, consumer routes).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { translate } from '../../../control-plane/translate/translate.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';
import type { RouteMatchResult, RouteTable } from '../../../sidecar/proxy/router/types.ts';
import { loadCase } from './helpers.ts';

const GOLDEN_DIR = fileURLToPath(new URL('../../golden/', import.meta.url));

function outboundTable(caseName: string): RouteTable {
  const c = loadCase(`${GOLDEN_DIR}${caseName}`);
  const rc = translate(c.state, c.proxy).config.routes.find((r) => r.name === 'outbound');
  if (rc === undefined) throw new Error('no outbound route config');
  return compileRouteTable(rc);
}

function match(
  t: RouteTable,
  host: string,
  target: string,
  headers: IncomingHttpHeaders = {},
  method = 'GET',
): RouteMatchResult | undefined {
  const q = target.indexOf('?');
  return t.match({
    host,
    path: q === -1 ? target : target.slice(0, q),
    query: q === -1 ? '' : target.slice(q + 1),
    method,
    headers,
  });
}

/** The cluster picked at `random`, `invalid:<reason>` for an invalid backend, or 404. */
function backend(t: RouteTable, host: string, target: string, random = 0, headers: IncomingHttpHeaders = {}) {
  const m = match(t, host, target, headers);
  if (m === undefined) return 404;
  if (m.action.kind !== 'forward') return m.action.kind;
  const b = m.action.pickBackend(random);
  return b.invalidReason === undefined ? b.cluster : `invalid:${b.invalidReason}`;
}

describe('translated routes, as the proxy routes them', () => {
  it('every DNS name of a Service reaches the same virtual host', () => {
    const t = outboundTable('default-forwarding');
    for (const host of [
      'reviews',
      'reviews.default',
      'reviews.default.svc',
      'reviews.default.svc.cluster.local',
    ]) {
      expect(backend(t, host, '/anything')).toBe('outbound|9080|reviews.default');
    }
    expect(backend(t, 'ratings', '/')).toBe(404);
    expect(backend(t, 'ratings.backend', '/')).toBe('outbound|8080|ratings.backend');
  });

  it('a 90/10 split sends the first 90% of the random range to api-v1 and the rest to api-v2', () => {
    const t = outboundTable('weighted-split');
    expect(backend(t, 'api', '/', 0.0)).toBe('outbound|8080|api-v1.default');
    expect(backend(t, 'api', '/', 0.899)).toBe('outbound|8080|api-v1.default');
    expect(backend(t, 'api', '/', 0.9)).toBe('outbound|8080|api-v2.default');
  });

  it('the header-matched canary rule wins over the catch-all only when every condition holds', () => {
    const t = outboundTable('header-match-modifiers');
    const canary = { 'x-canary': 'true', 'user-agent': 'Mozilla/5.0 Firefox/140' };
    expect(backend(t, 'reviews', '/reviews/1?debug=1', 0, canary)).toBe('outbound|9080|reviews-v2.default');
    expect(backend(t, 'reviews', '/reviews/1', 0, canary)).toBe('outbound|9080|reviews.default');
    expect(match(t, 'reviews', '/reviews/1?debug=1', canary)?.timeouts).toEqual({
      requestMs: 10000,
      backendRequestMs: 2000,
    });
  });

  it('an invalid backendRef gets its share as 500, and a rule without backends is all 500', () => {
    const t = outboundTable('missing-backend');
    expect(backend(t, 'orders', '/', 0.5)).toBe('outbound|8080|orders.default');
    expect(backend(t, 'orders', '/', 0.8)).toBe('invalid:Service default/orders-v2 not found');
    expect(backend(t, 'orders', '/nowhere')).toMatch(/^invalid:/);
  });

  it('once routes attach, requests matching no rule get 404', () => {
    const t = outboundTable('redirect-rewrite');
    expect(backend(t, 'shop', '/old-cart')).toBe('redirect');
    expect(backend(t, 'shop', '/api/v1/x')).toBe('outbound|80|shop.default');
    expect(
      match(t, 'shop', '/api/v1/x')?.rewrite({
        host: 'shop',
        path: '/api/v1/x',
        query: '',
        method: 'GET',
        headers: {},
      }),
    ).toEqual({
      path: '/v1/x',
      host: 'shop.internal',
    });
    expect(backend(t, 'shop', '/somewhere-else')).toBe(404);
  });

  it('gRPC calls route by /service/method', () => {
    const t = outboundTable('grpc-route');
    expect(backend(t, 'greeter', '/helloworld.Greeter/SayHello', 0, { 'x-canary': 'true' })).toBe(
      'outbound|50051|greeter-v2.default',
    );
    expect(backend(t, 'greeter', '/helloworld.Greeter/SayHello', 0)).toBe('outbound|50051|greeter.default');
    expect(backend(t, 'greeter', '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo')).toBe(
      'outbound|50051|greeter.default',
    );
    expect(backend(t, 'greeter', '/grpc.health.v1.Health/Check')).toBe('outbound|50051|greeter.default');
    expect(backend(t, 'greeter', '/other.Service/Call')).toBe(404);
  });

  it('a consumer-namespace client follows the consumer route; others follow the producer route', () => {
    expect(backend(outboundTable('consumer-route'), 'echo.mesh', '/')).toBe('outbound|80|echo-v2.mesh');
    expect(backend(outboundTable('producer-route-other-namespace'), 'echo.mesh', '/')).toBe(
      'outbound|80|echo-v1.mesh',
    );
  });
});
