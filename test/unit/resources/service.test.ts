/**
 * Service and MeshConfig (weft.dev/v1alpha1): defaults and invalid specs.
 */
import { describe, expect, it } from 'vitest';
import { doc, errorsOf, specOf } from './helpers.ts';

const svc = (spec: unknown) => doc('Service', spec, 'api');
const mesh = (spec: unknown) => ({ ...doc('MeshConfig', spec), metadata: { name: 'default' } });

describe('Service', () => {
  it('defaults the selector to {app: <name>} and appProtocol to http', () => {
    expect(
      specOf(svc({ ports: [{ port: 8080 }, { name: 'grpc', port: 9090, appProtocol: 'grpc' }] })),
    ).toEqual({
      selector: { app: 'api' },
      ports: [
        { port: 8080, appProtocol: 'http' },
        { name: 'grpc', port: 9090, appProtocol: 'grpc' },
      ],
    });
  });

  it('keeps a given selector', () => {
    expect(
      specOf(svc({ selector: { app: 'api', version: 'v2' }, ports: [{ port: 80, appProtocol: 'http2' }] })),
    ).toEqual({
      selector: { app: 'api', version: 'v2' },
      ports: [{ port: 80, appProtocol: 'http2' }],
    });
  });

  const S = 'Service default/api: spec';
  it.each([
    ['no ports', svc({}), [`${S}.ports: is required`]],
    ['an empty port list', svc({ ports: [] }), [`${S}.ports: must not be empty`]],
    ['port 0', svc({ ports: [{ port: 0 }] }), [`${S}.ports[0].port: must be an integer 1..65535 (got 0)`]],
    [
      'port 65536',
      svc({ ports: [{ port: 65536 }] }),
      [`${S}.ports[0].port: must be an integer 1..65535 (got 65536)`],
    ],
    [
      'a fractional port',
      svc({ ports: [{ port: 80.5 }] }),
      [`${S}.ports[0].port: must be an integer 1..65535 (got number 80.5)`],
    ],
    [
      'a port as a string',
      svc({ ports: [{ port: '80' }] }),
      [`${S}.ports[0].port: must be an integer 1..65535 (got string "80")`],
    ],
    [
      'an unknown appProtocol',
      svc({ ports: [{ port: 80, appProtocol: 'https' }] }),
      [`${S}.ports[0].appProtocol: must be one of http, http2, grpc, tcp (got "https")`],
    ],
    [
      'a duplicate port number',
      svc({ ports: [{ port: 80 }, { port: 80, name: 'b' }] }),
      [`${S}.ports[1].port: duplicate port 80 (also at spec.ports[0])`],
    ],
    [
      'a duplicate port name',
      svc({
        ports: [
          { port: 80, name: 'web' },
          { port: 81, name: 'web' },
        ],
      }),
      [`${S}.ports[1].name: duplicate port name web (also at spec.ports[0])`],
    ],
    [
      'an upper-case port name',
      svc({ ports: [{ port: 80, name: 'Web' }] }),
      [
        `${S}.ports[0].name: must be a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters) (got "Web")`,
      ],
    ],
    [
      'a selector value that is not a label value',
      svc({ selector: { app: 'a b' }, ports: [{ port: 80 }] }),
      [expect.stringMatching(/^Service default\/api: spec\.selector\.app: must be a label value/)],
    ],
    [
      'an unknown port field',
      svc({ ports: [{ port: 80, targetPort: 8080 }] }),
      [`${S}.ports[0].targetPort: unknown field (known: name, port, appProtocol)`],
    ],
    [
      'an unknown spec field',
      svc({ ports: [{ port: 80 }], type: 'ClusterIP' }),
      [`${S}.type: unknown field (known: selector, ports)`],
    ],
  ])('rejects %s', (_name, input, expected) => {
    expect(errorsOf(input)).toEqual(expected);
  });
});

describe('MeshConfig', () => {
  it('defaults trust domain, mTLS mode and certificate TTL', () => {
    expect(specOf(mesh({}))).toEqual({
      trustDomain: 'cluster.local',
      mtls: { mode: 'STRICT' },
      certificateTtl: '24h',
    });
    expect(specOf(mesh({ mtls: {} }))).toEqual({
      trustDomain: 'cluster.local',
      mtls: { mode: 'STRICT' },
      certificateTtl: '24h',
    });
  });

  it.each([['1h'], ['720h'], ['90m'], ['1h30m']])('accepts certificateTtl %s', (ttl) => {
    expect(errorsOf(mesh({ certificateTtl: ttl }))).toEqual([]);
  });

  const M = 'MeshConfig default: spec';
  it.each([
    [
      'a TTL under 1h',
      mesh({ certificateTtl: '59m' }),
      [`${M}.certificateTtl: must be a duration 1h..720h such as 10s, 1m30s or 500ms (GEP-2257) (got "59m")`],
    ],
    [
      'a TTL over 720h',
      mesh({ certificateTtl: '721h' }),
      [
        `${M}.certificateTtl: must be a duration 1h..720h such as 10s, 1m30s or 500ms (GEP-2257) (got "721h")`,
      ],
    ],
    [
      'a TTL in days',
      mesh({ certificateTtl: '1d' }),
      [`${M}.certificateTtl: must be a duration 1h..720h such as 10s, 1m30s or 500ms (GEP-2257) (got "1d")`],
    ],
    [
      'an unknown mTLS mode',
      mesh({ mtls: { mode: 'DISABLE' } }),
      [`${M}.mtls.mode: must be one of STRICT, PERMISSIVE (got "DISABLE")`],
    ],
    [
      'a trust domain with a scheme',
      mesh({ trustDomain: 'spiffe://example.org' }),
      [expect.stringMatching(/^MeshConfig default: spec\.trustDomain: must be a DNS-1123 subdomain/)],
    ],
    [
      'an unknown field',
      mesh({ mtlsMode: 'STRICT' }),
      [`${M}.mtlsMode: unknown field (known: trustDomain, mtls, certificateTtl, rateLimit)`],
    ],
  ])('rejects %s', (_name, input, expected) => {
    expect(errorsOf(input)).toEqual(expected);
  });
});
