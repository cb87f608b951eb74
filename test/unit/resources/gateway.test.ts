/**
 * Gateway: valid listeners; defaults (allowedRoutes, tls mode, certificateRef kind, address
 * type); schema, unknown fields and the CEL rules of apis/v1/gateway_types.go.
 */
import { describe, expect, it } from 'vitest';
import { doc, errorsOf, specOf } from './helpers.ts';

const gw = (spec: Record<string, unknown>) => doc('Gateway', { gatewayClassName: 'weft', ...spec }, 'edge');
const http = { name: 'http', port: 80, protocol: 'HTTP' };
const https = { name: 'https', port: 443, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'cert' }] } };
const P = 'Gateway default/edge: spec';

describe('Gateway: valid', () => {
  it.each([
    [
      'one HTTP listener (conformance same-namespace)',
      gw({ listeners: [{ ...http, allowedRoutes: { namespaces: { from: 'Same' } } }] }),
    ],
    ['HTTP and HTTPS', gw({ listeners: [http, https] })],
    [
      'two HTTP listeners on one port with different hostnames',
      gw({
        listeners: [
          { ...http, hostname: 'a.example.com' },
          { ...http, name: 'b', hostname: 'b.example.com' },
        ],
      }),
    ],
    [
      'TLS passthrough',
      gw({ listeners: [{ name: 'tls', port: 8443, protocol: 'TLS', tls: { mode: 'Passthrough' } }] }),
    ],
    ['a TCP listener', gw({ listeners: [{ name: 'db', port: 5432, protocol: 'TCP' }] })],
    [
      'addresses',
      gw({
        listeners: [http],
        addresses: [{ value: '10.0.0.1' }, { type: 'Hostname', value: 'edge.example.com' }],
      }),
    ],
  ])('%s', (_name, d) => {
    expect(errorsOf(d)).toEqual([]);
  });
});

describe('Gateway: defaults', () => {
  it('fills allowedRoutes, tls mode, certificateRef group/kind and address type', () => {
    expect(specOf(gw({ listeners: [http, https], addresses: [{ value: '10.0.0.1' }] }))).toEqual({
      gatewayClassName: 'weft',
      listeners: [
        { ...http, allowedRoutes: { namespaces: { from: 'Same' } } },
        {
          ...https,
          tls: { mode: 'Terminate', certificateRefs: [{ group: '', kind: 'Secret', name: 'cert' }] },
          allowedRoutes: { namespaces: { from: 'Same' } },
        },
      ],
      addresses: [{ type: 'IPAddress', value: '10.0.0.1' }],
    });
  });

  it('fills the group of allowed route kinds', () => {
    const spec = specOf(
      gw({ listeners: [{ ...http, allowedRoutes: { kinds: [{ kind: 'HTTPRoute' }] } }] }),
    ) as { listeners: { allowedRoutes: unknown }[] };
    expect(spec.listeners[0]!.allowedRoutes).toEqual({
      namespaces: { from: 'Same' },
      kinds: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' }],
    });
  });
});

describe('Gateway: invalid', () => {
  it.each([
    [
      'no gatewayClassName',
      doc('Gateway', { listeners: [http] }, 'edge'),
      [`${P}.gatewayClassName: is required`],
    ],
    ['no listeners', gw({ listeners: [] }), [`${P}.listeners: must not be empty`]],
    [
      'a duplicate listener name',
      gw({ listeners: [http, { ...http, port: 8080 }] }),
      [`${P}.listeners[1].name: duplicate listener name "http" (also at spec.listeners[0])`],
    ],
    [
      'the same port, protocol and hostname twice',
      gw({ listeners: [http, { ...http, name: 'other' }] }),
      [
        `${P}.listeners[1]: port, protocol and hostname must be unique per listener (same as spec.listeners[0])`,
      ],
    ],
    [
      'tls on an HTTP listener',
      gw({ listeners: [{ ...http, tls: { certificateRefs: [{ name: 'c' }] } }] }),
      [`${P}.listeners[0].tls: must not be set for protocol HTTP`],
    ],
    [
      'HTTPS without tls',
      gw({ listeners: [{ name: 'https', port: 443, protocol: 'HTTPS' }] }),
      [`${P}.listeners[0].tls: is required for protocol HTTPS`],
    ],
    [
      'HTTPS with passthrough',
      gw({ listeners: [{ ...https, tls: { mode: 'Passthrough' } }] }),
      [`${P}.listeners[0].tls.mode: must be Terminate for protocol HTTPS (got Passthrough)`],
    ],
    [
      'Terminate without certificates',
      gw({ listeners: [{ ...https, tls: { mode: 'Terminate' } }] }),
      [`${P}.listeners[0].tls: certificateRefs or options must be set when mode is Terminate`],
    ],
    [
      'a hostname on a TCP listener',
      gw({ listeners: [{ name: 'db', port: 5432, protocol: 'TCP', hostname: 'db.example.com' }] }),
      [`${P}.listeners[0].hostname: must not be set for protocol TCP`],
    ],
    [
      'an IPAddress that is not an IP',
      gw({ listeners: [http], addresses: [{ type: 'IPAddress', value: 'edge' }] }),
      [`${P}.addresses[0].value: must be an IP address for type IPAddress (got "edge")`],
    ],
    [
      'a duplicate address',
      gw({ listeners: [http], addresses: [{ value: '10.0.0.1' }, { value: '10.0.0.1' }] }),
      [`${P}.addresses[1].value: duplicate IPAddress address 10.0.0.1 (also at spec.addresses[0])`],
    ],
    [
      'an unknown allowedRoutes.namespaces.from',
      gw({ listeners: [{ ...http, allowedRoutes: { namespaces: { from: 'Any' } } }] }),
      [`${P}.listeners[0].allowedRoutes.namespaces.from: must be one of All, Selector, Same (got "Any")`],
    ],
    ['port 0', gw({ listeners: [{ ...http, port: 0 }] }), [`${P}.listeners[0].port: must be >= 1 (got 0)`]],
    [
      'an unknown listener field',
      gw({ listeners: [{ ...http, address: '0.0.0.0' }] }),
      [
        expect.stringMatching(
          /^Gateway default\/edge: spec\.listeners\[0\]\.address: unknown field \(known: name, hostname, port, protocol, tls, allowedRoutes\)$/,
        ),
      ],
    ],
  ])('%s', (_name, input, expected) => {
    expect(errorsOf(input)).toEqual(expected);
  });
});
