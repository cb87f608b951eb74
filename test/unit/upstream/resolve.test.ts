import { describe, expect, it } from 'vitest';
import type { Cluster, ClusterLoadAssignment, LbPolicy } from '../../../sidecar/proxy/config/types.ts';
import { resolveConfig } from '../../../sidecar/proxy/upstream/resolve.ts';

const ep = (address: string, port = 8080) => ({ address, port });

describe('resolveConfig', () => {
  it('applies the proto3 defaults and normalises', () => {
    const [c] = resolveConfig(
      [{ name: 'web' }],
      [
        {
          clusterName: 'web',
          endpoints: [{ address: '[0::1]', port: 80, weight: 0, labels: { zone: 'a' } }],
        },
      ],
    );
    expect(c).toMatchObject({ name: 'web', lbPolicy: 'ROUND_ROBIN', hashHeader: undefined });
    expect(c?.endpoints).toEqual([
      {
        key: '[::1]:80',
        address: '::1',
        port: 80,
        origin: 'http://[::1]:80',
        weight: 1,
        labels: { zone: 'a' },
        health: 'HEALTHY',
        identity: '',
      },
    ]);
  });

  it("gives an mTLS cluster https origins and keeps each endpoint's expected SPIFFE ID", () => {
    const [c] = resolveConfig(
      [{ name: 'api', tls: { enabled: true } }],
      [{ clusterName: 'api', endpoints: [{ ...ep('10.0.0.1'), identity: 'spiffe://td/ns/default/sa/api' }] }],
    );
    expect(c?.tls).toBe(true);
    expect(c?.endpoints[0]).toMatchObject({
      origin: 'https://10.0.0.1:8080',
      identity: 'spiffe://td/ns/default/sa/api',
    });
    const [plain] = resolveConfig([{ name: 'api' }], [{ clusterName: 'api', endpoints: [ep('10.0.0.1')] }]);
    expect(plain?.poolFingerprint).not.toBe(c?.poolFingerprint);
  });

  it('lower-cases the hash header of CONSISTENT_HASH and ignores it otherwise', () => {
    const out = resolveConfig(
      [
        { name: 'a', lbPolicy: 'CONSISTENT_HASH', hashHeader: 'X-User' },
        { name: 'b', lbPolicy: 'RANDOM', hashHeader: 'x-user' },
      ],
      [],
    );
    expect(out.map((c) => c.hashHeader)).toEqual(['x-user', undefined]);
    expect(out.map((c) => c.endpoints.length)).toEqual([0, 0]);
  });

  const bad: [string, readonly Cluster[], readonly ClusterLoadAssignment[], RegExp][] = [
    [
      'bad address',
      [{ name: 'web' }],
      [{ clusterName: 'web', endpoints: [ep('not an ip')] }],
      /cluster "web" endpoint not an ip:8080/,
    ],
    [
      'port 0',
      [{ name: 'web' }],
      [{ clusterName: 'web', endpoints: [ep('10.0.0.1', 0)] }],
      /cluster "web" endpoint 10\.0\.0\.1:0: port/,
    ],
    [
      'port 65536',
      [{ name: 'web' }],
      [{ clusterName: 'web', endpoints: [ep('10.0.0.1', 65536)] }],
      /endpoint 10\.0\.0\.1:65536: port/,
    ],
    [
      'unknown lbPolicy',
      [{ name: 'web', lbPolicy: 'MAGLEV' as LbPolicy }],
      [],
      /cluster "web": unknown lbPolicy "MAGLEV"/,
    ],
    [
      'CONSISTENT_HASH without hashHeader',
      [{ name: 'web', lbPolicy: 'CONSISTENT_HASH' }],
      [],
      /cluster "web": .*hashHeader/,
    ],
    [
      'bad hashHeader',
      [{ name: 'web', lbPolicy: 'CONSISTENT_HASH', hashHeader: 'x user' }],
      [],
      /not a header name/,
    ],
    ['duplicate cluster', [{ name: 'web' }, { name: 'web' }], [], /cluster "web": duplicate cluster name/],
    ['empty cluster name', [{ name: '' }], [], /name is empty/],
    [
      'tls endpoint without identity',
      [{ name: 'api', tls: { enabled: true } }],
      [{ clusterName: 'api', endpoints: [ep('10.0.0.1')] }],
      /cluster "api" endpoint 10\.0\.0\.1:8080: tls\.enabled needs the endpoint's identity as a SPIFFE ID, got ""/,
    ],
    [
      'tls endpoint with an identity that is not a SPIFFE ID',
      [{ name: 'api', tls: { enabled: true } }],
      [{ clusterName: 'api', endpoints: [{ ...ep('10.0.0.1'), identity: 'spiffe://td/ns/../sa/api' }] }],
      /SPIFFE ID, got "spiffe:\/\/td\/ns\/\.\.\/sa\/api"/,
    ],
    [
      'unknown cluster',
      [{ name: 'web' }],
      [{ clusterName: 'api', endpoints: [] }],
      /cluster "api": unknown cluster/,
    ],
    [
      'duplicate assignment',
      [{ name: 'web' }],
      [{ clusterName: 'web' }, { clusterName: 'web' }],
      /duplicate load assignment/,
    ],
    [
      'duplicate endpoint',
      [{ name: 'web' }],
      [{ clusterName: 'web', endpoints: [ep('::1'), ep('[::1]')] }],
      /endpoint \[::1\]:8080: duplicate/,
    ],
    [
      'negative weight',
      [{ name: 'web' }],
      [{ clusterName: 'web', endpoints: [{ ...ep('10.0.0.1'), weight: -2 }] }],
      /endpoint 10\.0\.0\.1:8080: weight/,
    ],
    [
      'unknown health',
      [{ name: 'web' }],
      [{ clusterName: 'web', endpoints: [{ ...ep('10.0.0.1'), health: 'SICK' as 'HEALTHY' }] }],
      /unknown health/,
    ],
    [
      'bad pool setting',
      [{ name: 'web', connectionPool: { connectTimeoutMs: -5 } }],
      [],
      /cluster "web": connectionPool\.connectTimeoutMs/,
    ],
  ];
  it.each(bad)('rejects %s', (_what, clusters, assignments, message) => {
    expect(() => resolveConfig(clusters, assignments)).toThrow(message);
  });
});
