/**
 * Opaque TCP config, table-driven: the `--upstream` flag, the Hello's TCP upstream binds, the SNI
 * port convention, the proxy's consistency checks of TCP listeners, and AuthorizationPolicy with
 * Istio's TCP semantics.
 */
import { describe, expect, it } from 'vitest';
import { InvalidMessageError, identityOf } from '../../../control-plane/discovery/identity.ts';
import { parseTcpUpstream } from '../../../sidecar/agent/tcp-upstreams.ts';
import type { ProxyConfig } from '../../../sidecar/proxy/config/model.ts';
import type { Rbac } from '../../../sidecar/proxy/config/types.ts';
import { checkConsistency } from '../../../sidecar/proxy/config/validate.ts';
import { portFromServerName, tcpServerName } from '../../../sidecar/proxy/tcp/config.ts';
import { authorizeConnection, compileTcpRbac } from '../../../sidecar/proxy/tcp/rbac.ts';

describe('--upstream service[.namespace]:port=localPort', () => {
  it.each([
    ['store-db:6379=16379', { service: 'store-db', port: 6379, localPort: 16379 }],
    ['store-db.data:6379=16379', { service: 'store-db', namespace: 'data', port: 6379, localPort: 16379 }],
  ])('parses %s', (flag, expected) => {
    expect(parseTcpUpstream(flag)).toEqual(expected);
  });

  it.each([
    ['store-db', 'is not service[.namespace]:port=localPort'],
    ['store-db:6379', 'is not service[.namespace]:port=localPort'],
    ['Store:6379=1', 'is not service[.namespace]:port=localPort'],
    ['store-db:0=16379', 'port must be 1..65535'],
    ['store-db:6379=70000', 'localPort must be 1..65535'],
  ])('rejects %s (%s)', (flag, reason) => {
    expect(() => parseTcpUpstream(flag)).toThrow(reason);
  });
});

describe('Hello.tcpUpstreams', () => {
  const hello = { proxyId: 'web-1', service: 'web', appPort: 8080 };

  it('keeps valid binds (namespace optional)', () => {
    const id = identityOf({ ...hello, tcpUpstreams: [{ service: 'db', port: 5432, localPort: 15432 }] });
    expect(id.tcpUpstreams).toEqual([{ service: 'db', port: 5432, localPort: 15432 }]);
    expect(identityOf(hello).tcpUpstreams).toBeUndefined();
  });

  it.each([
    [[{ port: 1, localPort: 2 }], 'hello.tcpUpstreams[0].service: must not be empty'],
    [[{ service: 'db', localPort: 2 }], 'hello.tcpUpstreams[0].port: must be 1..65535'],
    [[{ service: 'db', port: 1 }], 'hello.tcpUpstreams[0].localPort: must be 1..65535'],
    [
      [{ service: 'db', port: 1, localPort: 15001 }],
      'hello.tcpUpstreams[0].localPort: 15001 is already in use',
    ],
    [
      [
        { service: 'a', port: 1, localPort: 20000 },
        { service: 'b', port: 1, localPort: 20000 },
      ],
      'hello.tcpUpstreams[1].localPort: 20000 is already in use',
    ],
  ])('rejects %j', (tcpUpstreams, reason) => {
    expect(() => identityOf({ ...hello, tcpUpstreams })).toThrow(InvalidMessageError);
    expect(() => identityOf({ ...hello, tcpUpstreams })).toThrow(reason);
  });
});

describe('SNI <port>.tcp.weft.internal', () => {
  it('round-trips a port', () => {
    expect(tcpServerName(6379)).toBe('6379.tcp.weft.internal');
    expect(portFromServerName(tcpServerName(6379))).toBe(6379);
  });

  it.each([
    undefined,
    false,
    '',
    'tcp.weft.internal',
    '0.tcp.weft.internal',
    '70000.tcp.weft.internal',
    'x.6379.tcp.weft.internal',
  ] as const)('names no port in %j', (name: string | false | undefined) => {
    expect(portFromServerName(name)).toBeUndefined();
  });
});

describe('TCP listener consistency', () => {
  const base: ProxyConfig = { listeners: [], routes: [], clusters: [{ name: 'db' }], endpoints: [] };
  const tcp = (tcpProxy: { cluster: string; destinationPort?: number }, extra = {}) => ({
    ...base,
    listeners: [{ name: 'tcp', port: 0, routeConfigName: '', tcpProxy, ...extra }],
  });

  it('accepts a TCP listener without a route config', () => {
    expect(checkConsistency(tcp({ cluster: 'db', destinationPort: 5432 }))).toEqual([]);
  });

  it.each([
    [tcp({ cluster: '' }), 'Listener tcp: tcpProxy.cluster: must not be empty'],
    [tcp({ cluster: 'nope' }), 'Listener tcp: tcpProxy.cluster: no Cluster named "nope"'],
    [
      tcp({ cluster: 'db', destinationPort: 70000 }),
      'Listener tcp: tcpProxy.destinationPort: must be 0..65535',
    ],
    [
      tcp({ cluster: 'db' }, { inboundTcp: { ports: [1] } }),
      'Listener tcp: inboundTcp: not allowed on a tcpProxy listener',
    ],
  ])('rejects %#', (config, problem) => {
    expect(checkConsistency(config)).toContain(problem);
  });

  it('rejects inbound TCP ports out of range', () => {
    const config: ProxyConfig = {
      ...base,
      routes: [{ name: 'r' }],
      listeners: [{ name: 'inbound', port: 0, routeConfigName: 'r', inboundTcp: { ports: [0] } }],
    };
    expect(checkConsistency(config)).toContain('Listener inbound: inboundTcp.ports[0]: must be 1..65535');
  });
});

describe('AuthorizationPolicy on TCP connections (Istio semantics)', () => {
  const web = 'spiffe://cluster.local/ns/default/sa/web';
  const batch = 'spiffe://cluster.local/ns/jobs/sa/batch';
  const allowed = (rbac: Rbac, principal: string) =>
    authorizeConnection(compileTcpRbac(rbac), principal).allowed;

  it('matches ALLOW rules on principals and namespaces', () => {
    const rbac: Rbac = {
      allow: [{ name: 'a', from: [{ principals: ['cluster.local/ns/default/sa/web'] }] }],
    };
    expect(allowed(rbac, web)).toBe(true);
    expect(allowed(rbac, batch)).toBe(false);
    expect(allowed(rbac, '')).toBe(false);
    expect(allowed({ allow: [{ from: [{ namespaces: ['jobs'] }] }] }, batch)).toBe(true);
  });

  it('never matches an ALLOW rule with HTTP fields', () => {
    const rbac: Rbac = {
      allow: [{ name: 'a', from: [{ principals: ['*'] }], to: [{ methods: ['GET'] }] }],
      allowEnforced: true,
    };
    expect(allowed(rbac, web)).toBe(false);
  });

  it('applies a DENY rule on its source alone, ignoring its HTTP fields', () => {
    const rbac: Rbac = {
      deny: [{ name: 'd', from: [{ namespaces: ['jobs'] }], to: [{ paths: ['/admin/*'] }] }],
    };
    expect(allowed(rbac, batch)).toBe(false);
    expect(allowed(rbac, web)).toBe(true);
    expect(allowed({ deny: [{ to: [{ methods: ['POST'] }] }] }, web)).toBe(false);
  });
});
