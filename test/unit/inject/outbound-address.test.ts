/**
 * Hello field 16 (`outbound_address`): an injected sidecar binds its inbound listener to the pod
 * IP (registered as the endpoint) and its outbound listener to 127.0.0.1 only, so other pods
 * cannot send requests out under this pod's identity.
 */
import { describe, expect, it } from 'vitest';
import { identityOf } from '../../../control-plane/discovery/identity.ts';
import { translate } from '../../../control-plane/translate/translate.ts';

const state = { revision: 1, resources: [], endpoints: [] };

describe('Hello outboundAddress', () => {
  it('binds the outbound listener there and the inbound one on listenAddress', () => {
    const proxy = identityOf({
      proxyId: 'api-7c9.shop',
      service: 'api',
      appPort: 8080,
      listenAddress: '10.1.2.3',
      outboundAddress: '127.0.0.1',
    });
    expect(proxy.outboundAddress).toBe('127.0.0.1');
    const listeners = translate(state, proxy).config.listeners;
    expect(listeners.map((l) => [l.name, l.address, l.port])).toEqual([
      ['inbound', '10.1.2.3', 15006],
      ['outbound', '127.0.0.1', 15001],
    ]);
  });

  it('defaults to listenAddress (absent from the identity)', () => {
    const proxy = identityOf({ proxyId: 'p', service: 'api', listenAddress: '10.1.2.3' });
    expect('outboundAddress' in proxy).toBe(false);
    expect(translate(state, proxy).config.listeners.map((l) => l.address)).toEqual(['10.1.2.3', '10.1.2.3']);
  });
});
