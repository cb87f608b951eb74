/**
 * The decoded shape of discovery messages: lowerCamelCase fields, enums by name, absent fields
 * omitted (empty repeated fields and empty maps included), oneof members without a `kind` field.
 * Round trips go through the service definition's own serializers, as on the wire.
 */
import { describe, expect, it } from 'vitest';
import {
  type ControlMessage,
  discoveryService,
  type ProxyMessage,
} from '../../../control-plane/discovery/proto.ts';

const stream = discoveryService().Stream;
if (stream === undefined) throw new Error('weft.v1.Discovery has no Stream method');
const method = stream;

function roundTripControl(message: ControlMessage): unknown {
  return method.responseDeserialize(method.responseSerialize(message));
}

function roundTripProxy(message: ProxyMessage): unknown {
  return method.requestDeserialize(method.requestSerialize(message));
}

describe('weft.v1.Discovery messages', () => {
  it('is a bidirectional streaming method', () => {
    expect(method.path).toBe('/weft.v1.Discovery/Stream');
    expect(method.requestStream).toBe(true);
    expect(method.responseStream).toBe(true);
  });

  it('decodes a snapshot in the proxy config shape: camelCase, enums by name, maps as objects', () => {
    const snapshot: ControlMessage = {
      snapshot: {
        version: '42',
        nonce: 'n-1',
        listeners: [
          { name: 'out', address: '127.0.0.1', port: 15001, direction: 'OUTBOUND', routeConfigName: 'r' },
        ],
        routes: [
          {
            name: 'r',
            virtualHosts: [
              {
                name: 'vh',
                domains: ['svc'],
                routes: [
                  {
                    name: 'a',
                    matches: [{ path: { type: 'PATH_PREFIX', value: '/a' } }],
                    route: { clusters: [{ name: 'c', weight: 3 }] },
                    timeouts: { requestMs: 1000 },
                  },
                ],
              },
            ],
          },
        ],
        clusters: [{ name: 'c', lbPolicy: 'LEAST_REQUEST', connectionPool: { connectTimeoutMs: 250 } }],
        endpoints: [
          {
            clusterName: 'c',
            endpoints: [
              { address: '10.0.0.1', port: 8080, labels: { version: 'v1', zone: 'a' }, health: 'DRAINING' },
            ],
          },
        ],
      },
    };
    expect(roundTripControl(snapshot)).toStrictEqual(snapshot);
  });

  it('omits empty repeated fields, empty maps and unset fields', () => {
    const decoded = roundTripControl({
      snapshot: {
        version: '1',
        nonce: 'n',
        listeners: [],
        routes: [{ name: 'r', virtualHosts: [] }],
        clusters: [],
        endpoints: [{ clusterName: 'c', endpoints: [{ address: 'a', port: 1, labels: {} }] }],
      },
    });
    expect(decoded).toStrictEqual({
      snapshot: {
        version: '1',
        nonce: 'n',
        routes: [{ name: 'r' }],
        endpoints: [{ clusterName: 'c', endpoints: [{ address: 'a', port: 1 }] }],
      },
    });
  });

  it('decodes each ProxyMessage member as the only field (no virtual oneof field)', () => {
    const messages: ProxyMessage[] = [
      {
        hello: {
          proxyId: 'web-1.default',
          kind: 'sidecar',
          service: 'web',
          labels: { version: 'v1' },
          inboundPort: 15006,
        },
      },
      { ack: { version: '3', nonce: 'x' } },
      { nack: { version: '3', nonce: 'x', errorDetail: 'Listener l: port: must be 0..65535' } },
      { register: { service: 'web', address: '127.0.0.1', port: 15006, labels: { zone: 'a' }, weight: 2 } },
      { deregister: {} },
    ];
    for (const m of messages) expect(roundTripProxy(m)).toStrictEqual(m);
  });
});
