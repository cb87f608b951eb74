/**
 * The envelope of every kind: apiVersion per kind, metadata names (DNS-1123), namespace default,
 * labels and annotations, server-set fields ignored, unknown fields rejected, and the error
 * format `<Kind> <namespace>/<name>: <field path>: <reason>`.
 */
import { describe, expect, it } from 'vitest';
import { validateResource } from '../../../control-plane/resources/validate.ts';
import { doc, errorsOf, valid } from './helpers.ts';

const svcSpec = { ports: [{ port: 8080 }] };
const svc = (metadata: unknown, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'Service',
  metadata,
  spec: svcSpec,
  ...extra,
});
const KNOWN =
  'known: HTTPRoute, GRPCRoute, Gateway, Service, MeshConfig, BackendTrafficPolicy, AuthorizationPolicy, SecurityPolicy, RateLimitPolicy, Secret';

describe('envelope: invalid documents', () => {
  it.each([
    [
      'a list instead of an object',
      [],
      ['document: must be an object with apiVersion, kind, metadata and spec (got a list)'],
    ],
    [
      'a missing kind',
      { apiVersion: 'v1', metadata: { name: 'a' } },
      [`document: kind: is required (${KNOWN})`],
    ],
    [
      'an unknown kind',
      { apiVersion: 'v1', kind: 'Foo', metadata: { name: 'a' } },
      [`document: kind: unknown kind "Foo" (${KNOWN})`],
    ],
    [
      'an inherited property name as kind',
      { kind: 'toString' },
      [`document: kind: unknown kind "toString" (${KNOWN})`],
    ],
    [
      'a Gateway API apiVersion on a Weft kind',
      { ...svc({ name: 'api' }), apiVersion: 'gateway.networking.k8s.io/v1' },
      [
        'Service default/api: apiVersion: must be weft.dev/v1alpha1 for kind Service (got "gateway.networking.k8s.io/v1")',
      ],
    ],
    [
      'an old HTTPRoute apiVersion',
      { ...doc('HTTPRoute', {}, 'web'), apiVersion: 'gateway.networking.k8s.io/v1beta1' },
      [
        'HTTPRoute default/web: apiVersion: must be gateway.networking.k8s.io/v1 for kind HTTPRoute (got "gateway.networking.k8s.io/v1beta1")',
      ],
    ],
    [
      'a missing apiVersion',
      { kind: 'Service', metadata: { name: 'api' }, spec: svcSpec },
      ['Service default/api: apiVersion: is required (weft.dev/v1alpha1 for kind Service)'],
    ],
    [
      'a missing metadata',
      { apiVersion: 'weft.dev/v1alpha1', kind: 'Service', spec: svcSpec },
      ['Service document: metadata: is required'],
    ],
    ['a missing name', svc({ namespace: 'shop' }), ['Service document: metadata.name: is required']],
    [
      'an upper-case name',
      svc({ name: 'Api' }),
      [
        "Service default/Api: metadata.name: must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and ending alphanumeric, at most 253 characters) (got \"Api\")",
      ],
    ],
    [
      'a name longer than 253 characters',
      svc({ name: 'a'.repeat(254) }),
      [expect.stringMatching(/^Service default\/a{254}: metadata\.name: must be a DNS-1123 subdomain/)],
    ],
    [
      'a namespace with a dot',
      svc({ name: 'api', namespace: 'shop.prod' }),
      [
        'Service shop.prod/api: metadata.namespace: must be a DNS-1123 label (lower-case letters, digits and \'-\', at most 63 characters) (got "shop.prod")',
      ],
    ],
    [
      'a label key with a space',
      svc({ name: 'api', labels: { 'my key': 'x' } }),
      [
        expect.stringMatching(
          /^Service default\/api: metadata\.labels: key "my key": must be a qualified name/,
        ),
      ],
    ],
    [
      'a label value too long',
      svc({ name: 'api', labels: { app: 'x'.repeat(64) } }),
      [expect.stringMatching(/^Service default\/api: metadata\.labels\.app: must be a label value/)],
    ],
    [
      'a label value that is a number',
      svc({ name: 'api', labels: { tier: 1 } }),
      ['Service default/api: metadata.labels.tier: must be a label value (got number 1)'],
    ],
    [
      'an annotation value that is not a string',
      svc({ name: 'api', annotations: { note: { a: 1 } } }),
      ['Service default/api: metadata.annotations.note: must be a string (got an object)'],
    ],
    [
      'an unknown metadata field',
      svc({ name: 'api', finalizers: ['x'] }),
      [
        expect.stringMatching(
          /^Service default\/api: metadata\.finalizers: unknown field \(known: name, namespace, labels, annotations, resourceVersion/,
        ),
      ],
    ],
    [
      'an unknown top-level field',
      svc({ name: 'api' }, { extra: 1 }),
      ['Service default/api: extra: unknown field (known: apiVersion, kind, metadata, spec, status)'],
    ],
    [
      'a missing spec',
      { apiVersion: 'weft.dev/v1alpha1', kind: 'Service', metadata: { name: 'api' } },
      ['Service default/api: spec: is required'],
    ],
    [
      'a MeshConfig not named default',
      { apiVersion: 'weft.dev/v1alpha1', kind: 'MeshConfig', metadata: { name: 'mesh' }, spec: {} },
      ['MeshConfig mesh: metadata.name: must be "default": there is one MeshConfig per mesh (got "mesh")'],
    ],
  ])('%s', (_name, input, expected) => {
    expect(errorsOf(input)).toEqual(expected);
  });

  it('reports every problem of a document, not just the first', () => {
    expect(
      errorsOf({
        apiVersion: 'x',
        kind: 'Service',
        metadata: { name: 'api', bogus: 1 },
        spec: { ports: [] },
        extra: 1,
      }),
    ).toEqual([
      'Service default/api: apiVersion: must be weft.dev/v1alpha1 for kind Service (got "x")',
      'Service default/api: extra: unknown field (known: apiVersion, kind, metadata, spec, status)',
      expect.stringMatching(/^Service default\/api: metadata\.bogus: unknown field/),
      'Service default/api: spec.ports: must not be empty',
    ]);
  });

  it('names the document by the caller-given place when it has no name', () => {
    const r = validateResource({ kind: 'Foo' }, 'route.yaml doc #3');
    expect(r).toEqual({ ok: false, errors: [`route.yaml doc #3: kind: unknown kind "Foo" (${KNOWN})`] });
  });
});

describe('envelope: defaults and ignored fields', () => {
  it('defaults the namespace to "default"', () => {
    expect(valid(svc({ name: 'api' })).metadata).toEqual({ name: 'api', namespace: 'default' });
  });

  it('keeps namespace, labels and annotations', () => {
    const meta = {
      name: 'api',
      namespace: 'shop',
      labels: { app: 'api', 'weft.dev/inject': 'enabled' },
      annotations: { 'example.com/note': 'free text: ok' },
    };
    expect(valid(svc(meta)).metadata).toEqual(meta);
  });

  it('ignores status and server-set metadata (so `get -o yaml` output applies again)', () => {
    const r = valid(
      svc(
        {
          name: 'api',
          resourceVersion: '42',
          creationTimestamp: '2026-01-01T00:00:00Z',
          uid: 'x',
          generation: 3,
          managedFields: [{}],
        },
        { status: { conditions: [] } },
      ),
    );
    expect(r).toEqual({
      apiVersion: 'weft.dev/v1alpha1',
      kind: 'Service',
      metadata: { name: 'api', namespace: 'default' },
      spec: { selector: { app: 'api' }, ports: [{ port: 8080, appProtocol: 'http' }] },
    });
  });

  it('treats null fields as absent', () => {
    expect(valid(svc({ name: 'api', namespace: null, labels: null }, { status: null })).metadata).toEqual({
      name: 'api',
      namespace: 'default',
    });
  });

  it('drops the namespace of the cluster-scoped MeshConfig', () => {
    const r = valid({
      apiVersion: 'weft.dev/v1alpha1',
      kind: 'MeshConfig',
      metadata: { name: 'default', namespace: 'weft-system' },
      spec: {},
    });
    expect(r.metadata).toEqual({ name: 'default' });
  });
});
