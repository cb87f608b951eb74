/**
 * Route status (Gateway API RouteParentStatus conditions) for routes attached to Services:
 * Accepted and ResolvedRefs, computed with the translator's own resolution.
 */
import { describe, expect, it } from 'vitest';
import type { Resource } from '../../../control-plane/resources/types.ts';
import {
  CONTROLLER_NAME,
  type RouteStatus,
  routeStatus,
} from '../../../control-plane/translate/translate.ts';
import { resource, service } from './helpers.ts';

function httpRoute(name: string, spec: Record<string, unknown>, namespace = 'default'): Resource {
  return resource('HTTPRoute', name, spec, { namespace });
}

function statusOf(resources: Resource[], id: string): RouteStatus {
  const s = routeStatus({ revision: 1, resources, endpoints: [] }).get(id);
  if (s === undefined) throw new Error(`no status for ${id}`);
  return s;
}

function condition(s: RouteStatus, type: 'Accepted' | 'ResolvedRefs', parent = 0) {
  return s.parents[parent]?.conditions.find((c) => c.type === type);
}

const toReviews = { parentRefs: [{ group: '', kind: 'Service', name: 'reviews' }] };

describe('routeStatus', () => {
  it('is keyed by resourceId and reports each Service parentRef with Weft as controller', () => {
    const statuses = routeStatus({
      revision: 1,
      resources: [service('reviews'), httpRoute('reviews', { ...toReviews, rules: [{}] })],
      endpoints: [],
    });
    expect([...statuses.keys()]).toEqual(['HTTPRoute/default/reviews']);
    const s = statuses.get('HTTPRoute/default/reviews')!;
    expect(s.parents).toHaveLength(1);
    expect(s.parents[0]).toMatchObject({
      controllerName: CONTROLLER_NAME,
      parentRef: toReviews.parentRefs[0],
    });
  });

  it('Accepted is True and ResolvedRefs True when the parent Service and every backend exist', () => {
    const s = statusOf(
      [
        service('reviews'),
        service('reviews-v2'),
        httpRoute('r', { ...toReviews, rules: [{ backendRefs: [{ name: 'reviews-v2', port: 8080 }] }] }),
      ],
      'HTTPRoute/default/r',
    );
    expect(condition(s, 'Accepted')).toMatchObject({ status: 'True', reason: 'Accepted' });
    expect(condition(s, 'ResolvedRefs')).toMatchObject({ status: 'True', reason: 'ResolvedRefs' });
  });

  it('Accepted is False with NoMatchingParent when the parent Service does not exist', () => {
    const s = statusOf([httpRoute('r', { ...toReviews, rules: [{}] })], 'HTTPRoute/default/r');
    expect(condition(s, 'Accepted')).toEqual({
      type: 'Accepted',
      status: 'False',
      reason: 'NoMatchingParent',
      message: 'Service default/reviews not found',
    });
  });

  it('Accepted is False with NoMatchingParent when the parentRef names a port the Service lacks', () => {
    const s = statusOf(
      [
        service('reviews'),
        httpRoute('r', { parentRefs: [{ kind: 'Service', name: 'reviews', port: 7777 }], rules: [{}] }),
      ],
      'HTTPRoute/default/r',
    );
    expect(condition(s, 'Accepted')).toMatchObject({ status: 'False', reason: 'NoMatchingParent' });
    expect(condition(s, 'Accepted')?.message).toContain('no port 7777');
  });

  it('Accepted is False with UnsupportedValue for a port Weft does not route (not the first HTTP port)', () => {
    const s = statusOf(
      [
        service('reviews', 'default', [8080, 9090]),
        httpRoute('r', { parentRefs: [{ kind: 'Service', name: 'reviews', port: 9090 }], rules: [{}] }),
      ],
      'HTTPRoute/default/r',
    );
    expect(condition(s, 'Accepted')).toMatchObject({ status: 'False', reason: 'UnsupportedValue' });
  });

  it('Accepted is False with UnsupportedValue when a rule holds a value Weft cannot translate', () => {
    const s = statusOf(
      [
        service('reviews'),
        httpRoute('r', {
          ...toReviews,
          rules: [{ matches: [{ path: { type: 'RegularExpression', value: '(' } }] }],
        }),
      ],
      'HTTPRoute/default/r',
    );
    expect(condition(s, 'Accepted')).toMatchObject({ status: 'False', reason: 'UnsupportedValue' });
    expect(condition(s, 'Accepted')?.message).toContain('default/r/rule-0');
  });

  it('ResolvedRefs is False with BackendNotFound naming every missing Service and port', () => {
    const s = statusOf(
      [
        service('reviews'),
        httpRoute('r', {
          ...toReviews,
          rules: [
            {
              backendRefs: [
                { name: 'reviews', port: 8080 },
                { name: 'ghost', port: 8080 },
              ],
            },
            { backendRefs: [{ name: 'reviews', port: 9999 }] },
          ],
        }),
      ],
      'HTTPRoute/default/r',
    );
    const c = condition(s, 'ResolvedRefs');
    expect(c).toMatchObject({ status: 'False', reason: 'BackendNotFound' });
    expect(c?.message).toBe('Service default/ghost not found; Service default/reviews has no port 9999');
  });

  it('ResolvedRefs is False with InvalidKind when a backendRef is not a core Service', () => {
    const s = statusOf(
      [
        service('reviews'),
        httpRoute('r', {
          ...toReviews,
          rules: [{ backendRefs: [{ group: 'example.com', kind: 'Bucket', name: 'b' }] }],
        }),
      ],
      'HTTPRoute/default/r',
    );
    expect(condition(s, 'ResolvedRefs')).toMatchObject({ status: 'False', reason: 'InvalidKind' });
  });

  it('a backendRef without port resolves to the only port, else to the parent port, else is BackendNotFound', () => {
    const resources = [
      service('reviews', 'default', [8080, 9090]),
      service('one', 'default', [7000]),
      service('two', 'default', [1, 2]),
      httpRoute('r', {
        ...toReviews,
        rules: [{ backendRefs: [{ name: 'one' }, { name: 'reviews' }, { name: 'two' }] }],
      }),
    ];
    const c = condition(statusOf(resources, 'HTTPRoute/default/r'), 'ResolvedRefs');
    expect(c?.message).toBe('Service default/two has several ports: backendRef needs port');
  });

  it('reports a parentRef in another namespace against the Service there, for consumer routes', () => {
    const s = statusOf(
      [
        service('echo', 'mesh'),
        httpRoute(
          'c',
          {
            parentRefs: [{ kind: 'Service', name: 'echo', namespace: 'mesh' }],
            rules: [{ backendRefs: [{ name: 'echo', namespace: 'mesh', port: 8080 }] }],
          },
          'consumer',
        ),
      ],
      'HTTPRoute/consumer/c',
    );
    expect(condition(s, 'Accepted')).toMatchObject({ status: 'True' });
    expect(condition(s, 'ResolvedRefs')).toMatchObject({ status: 'True' });
  });

  it('covers GRPCRoutes too, and reports a missing Gateway parent', () => {
    const statuses = routeStatus({
      revision: 1,
      resources: [
        service('greeter'),
        resource('GRPCRoute', 'g', {
          parentRefs: [{ kind: 'Service', name: 'greeter' }],
          rules: [{ backendRefs: [{ name: 'nope', port: 1 }] }],
        }),
        httpRoute('edge', { parentRefs: [{ name: 'public-gateway' }], rules: [{}] }),
      ],
      endpoints: [],
    });
    expect(condition(statuses.get('GRPCRoute/default/g')!, 'Accepted')).toMatchObject({ status: 'True' });
    expect(condition(statuses.get('GRPCRoute/default/g')!, 'ResolvedRefs')).toMatchObject({
      reason: 'BackendNotFound',
    });
    expect(condition(statuses.get('HTTPRoute/default/edge')!, 'Accepted')).toEqual({
      type: 'Accepted',
      status: 'False',
      reason: 'NoMatchingParent',
      message: 'Gateway default/public-gateway not found',
    });
  });

  describe('Gateway parents', () => {
    const gateway = resource('Gateway', 'edge', {
      gatewayClassName: 'weft',
      listeners: [
        {
          name: 'http',
          port: 80,
          protocol: 'HTTP',
          hostname: 'a.test',
          allowedRoutes: { namespaces: { from: 'Same' } },
        },
        { name: 'tcp', port: 9000, protocol: 'TCP', allowedRoutes: { namespaces: { from: 'Same' } } },
      ],
    });
    const rule = { backendRefs: [{ name: 'web', port: 8080 }] };
    it.each([
      [{ parentRefs: [{ name: 'edge' }], rules: [rule] }, 'default', 'True', 'Accepted'],
      [
        { parentRefs: [{ name: 'edge', sectionName: 'nope' }], rules: [rule] },
        'default',
        'False',
        'NoMatchingParent',
      ],
      [
        { parentRefs: [{ name: 'edge', sectionName: 'tcp' }], rules: [rule] },
        'default',
        'False',
        'NoMatchingParent',
      ],
      [
        { parentRefs: [{ name: 'edge', namespace: 'default' }], rules: [rule] },
        'other',
        'False',
        'NotAllowedByListeners',
      ],
      [
        { parentRefs: [{ name: 'edge' }], hostnames: ['b.test'], rules: [rule] },
        'default',
        'False',
        'NoMatchingListenerHostname',
      ],
    ])('%j in namespace %s → Accepted %s (%s)', (spec, namespace, status, reason) => {
      const statuses = routeStatus({
        revision: 1,
        resources: [service('web'), gateway, httpRoute('r', spec, namespace)],
        endpoints: [],
      });
      const s = statuses.get(`HTTPRoute/${namespace}/r`)!;
      expect(condition(s, 'Accepted')).toMatchObject({ status, reason });
    });
  });

  it('gives one status per parentRef, each with its own conditions', () => {
    const s = statusOf(
      [
        service('a'),
        httpRoute('r', {
          parentRefs: [
            { kind: 'Service', name: 'a' },
            { kind: 'Service', name: 'b' },
          ],
          rules: [{}],
        }),
      ],
      'HTTPRoute/default/r',
    );
    expect(s.parents.map((p) => condition({ parents: [p] }, 'Accepted')?.status)).toEqual(['True', 'False']);
  });
});
