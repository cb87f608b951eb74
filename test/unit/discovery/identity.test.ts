import { describe, expect, it } from 'vitest';
import {
  InvalidMessageError,
  identityOf,
  registrationOf,
} from '../../../control-plane/discovery/identity.ts';
import { discoveryService } from '../../../control-plane/discovery/proto.ts';

describe('Hello → ProxyIdentity', () => {
  it('fills in the documented defaults', () => {
    expect(identityOf({ proxyId: 'web-1', service: 'web' })).toStrictEqual({
      proxyId: 'web-1',
      kind: 'sidecar',
      service: 'web',
      namespace: 'default',
      workload: 'web',
      labels: {},
      outboundPort: 15001,
      inboundPort: 15006,
      appPort: 0,
      listenAddress: '127.0.0.1',
    });
  });

  it("takes a gateway's listenerPorts (Gateway port → bind port), ignores them for a sidecar", () => {
    const hello = { proxyId: 'g', kind: 'gateway', service: 'edge', listenerPorts: { '443': 0, '80': 8080 } };
    expect(identityOf(hello).listenerPorts).toStrictEqual({ '443': 0, '80': 8080 });
    expect(identityOf({ ...hello, kind: 'sidecar' }).listenerPorts).toBeUndefined();
  });

  it('listenerPorts survive the wire encoding', () => {
    const stream = discoveryService().Stream;
    if (stream === undefined) throw new Error('no Stream method');
    const message = { hello: { proxyId: 'g', kind: 'gateway', listenerPorts: { '443': 0, '80': 8080 } } };
    const decoded = stream.requestDeserialize(stream.requestSerialize(message)) as typeof message;
    expect(identityOf(decoded.hello).listenerPorts).toStrictEqual({ '80': 8080, '443': 0 }); // map entries keep 0
  });

  it.each([
    [{ proxyId: 'g', kind: 'gateway', listenerPorts: { x: 1 } }, /hello\.listenerPorts: key "x"/],
    [
      { proxyId: 'g', kind: 'gateway', listenerPorts: { '443': 70000 } },
      /hello\.listenerPorts\[443\]: must be 0\.\.65535/,
    ],
    [{}, /hello\.proxyId: must not be empty/],
    [{ proxyId: 'p', kind: 'router' }, /hello\.kind: must be "sidecar" or "gateway"/],
    [{ proxyId: 'p', appPort: 70000 }, /hello\.appPort: must be 0\.\.65535/],
  ])('rejects %j', (hello, message) => {
    expect(() => identityOf(hello)).toThrow(InvalidMessageError);
    expect(() => identityOf(hello)).toThrow(message);
  });
});

describe('Register → EndpointRegistration', () => {
  const identity = identityOf({ proxyId: 'web-1', service: 'web', namespace: 'shop', inboundPort: 16006 });

  it('defaults to the identity and labels the endpoint with its service', () => {
    expect(registrationOf({ labels: { version: 'v2' } }, identity)).toStrictEqual({
      proxyId: 'web-1',
      namespace: 'shop',
      address: '127.0.0.1',
      port: 16006,
      labels: { version: 'v2', app: 'web' },
      weight: 1,
      draining: false,
    });
  });

  it('takes the Register fields over the identity', () => {
    const r = registrationOf(
      { service: 'api', namespace: 'b', address: '10.1.1.1', port: 9000, weight: 5, labels: { app: 'x' } },
      identity,
    );
    expect(r).toMatchObject({
      namespace: 'b',
      address: '10.1.1.1',
      port: 9000,
      weight: 5,
      labels: { app: 'api' },
    });
  });

  it('needs a service name', () => {
    expect(() => registrationOf({}, identityOf({ proxyId: 'p' }))).toThrow(/register\.service/);
  });
});
