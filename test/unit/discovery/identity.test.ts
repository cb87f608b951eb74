import { describe, expect, it } from 'vitest';
import {
  InvalidMessageError,
  identityOf,
  registrationOf,
} from '../../../control-plane/discovery/identity.ts';

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

  it.each([
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
