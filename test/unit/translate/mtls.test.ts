/**
 * Mesh mTLS in the control plane: the trust bundle enters the mesh state from the store
 * (`/weft/system/trust-bundle`), switches the translation to mTLS (inbound mode from the
 * MeshConfig, mTLS clusters with expected SPIFFE IDs, the bundle in the snapshot), and travels in
 * the discovery `Snapshot` message. Without a bundle nothing changes.
 */
import { describe, expect, it } from 'vitest';
import { discoveryService } from '../../../control-plane/discovery/proto.ts';
import { MeshStateCache } from '../../../control-plane/mesh/state.ts';
import { TRUST_BUNDLE_KEY } from '../../../control-plane/store/keys.ts';
import { translate } from '../../../control-plane/translate/translate.ts';
import type { MeshState } from '../../../control-plane/translate/types.ts';
import { MemoryStore } from '../../support/memory-store.ts';
import { proxyProblems, registration, resource, service, sidecar } from './helpers.ts';

const BUNDLE = {
  trustDomain: 'cluster.local',
  rootsPem: ['-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n'],
};

function state(extra: Partial<MeshState> = {}): MeshState {
  return {
    revision: 5,
    resources: [service('api'), service('db', 'data')],
    endpoints: [registration('api', '127.0.0.2'), registration('db', '127.0.0.3', { namespace: 'data' })],
    ...extra,
  };
}

describe('translation with a trust bundle', () => {
  it('without a trust bundle the config is plain text throughout', () => {
    const { config } = translate(state(), sidecar('web'));
    expect(config.trustBundle).toBeUndefined();
    expect(config.listeners.map((l) => l.tls)).toEqual([undefined, undefined]);
    expect(config.clusters.map((c) => c.tls)).toEqual([undefined, undefined, undefined]);
    expect(config.endpoints.flatMap((a) => a.endpoints ?? []).map((e) => e.identity)).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('defaults the inbound listener to STRICT and makes every mesh cluster mTLS with expected IDs', () => {
    const { config } = translate(state({ trustBundle: BUNDLE }), sidecar('web'));
    expect(config.trustBundle).toEqual(BUNDLE);
    expect(config.listeners.find((l) => l.name === 'inbound')?.tls).toEqual({ mode: 'STRICT' });
    expect(config.listeners.find((l) => l.name === 'outbound')?.tls).toBeUndefined();
    const tlsOf = Object.fromEntries(config.clusters.map((c) => [c.name, c.tls?.enabled ?? false]));
    expect(tlsOf).toEqual({
      'inbound|8080': false,
      'outbound|8080|api.default': true,
      'outbound|8080|db.data': true,
    });
    const ids = Object.fromEntries(
      config.endpoints.map((a) => [a.clusterName, (a.endpoints ?? []).map((e) => e.identity)]),
    );
    expect(ids).toEqual({
      'inbound|8080': [undefined],
      'outbound|8080|api.default': ['spiffe://cluster.local/ns/default/sa/api'],
      'outbound|8080|db.data': ['spiffe://cluster.local/ns/data/sa/db'],
    });
    expect(proxyProblems(config)).toEqual([]);
  });

  it('takes PERMISSIVE from the MeshConfig named default', () => {
    const meshConfig = resource('MeshConfig', 'default', {
      trustDomain: 'cluster.local',
      mtls: { mode: 'PERMISSIVE' },
    });
    const { config } = translate(
      state({ trustBundle: BUNDLE, resources: [...state().resources, meshConfig] }),
      sidecar('web'),
    );
    expect(config.listeners.find((l) => l.name === 'inbound')?.tls).toEqual({ mode: 'PERMISSIVE' });
  });

  it('leaves out a registration whose app label cannot be a SPIFFE path segment', () => {
    const { config } = translate(
      state({
        trustBundle: BUNDLE,
        endpoints: [
          registration('api', '127.0.0.2'),
          registration('api', '127.0.0.9', { labels: { app: 'a/b' } }),
        ],
      }),
      sidecar('web'),
    );
    const api = config.endpoints.find((a) => a.clusterName === 'outbound|8080|api.default');
    expect(api?.endpoints?.map((e) => e.address)).toEqual(['127.0.0.2']);
  });
});

describe('MeshStateCache and the trust bundle', () => {
  it('reads /weft/system/trust-bundle into the state and follows its changes', async () => {
    const store = new MemoryStore();
    await store.txn([{ op: 'put', key: TRUST_BUNDLE_KEY, value: JSON.stringify(BUNDLE) }]);
    const mesh = new MeshStateCache(store);
    await mesh.start();
    try {
      expect(mesh.state().trustBundle).toEqual(BUNDLE);
      const changes: number[] = [];
      mesh.onChange((rev) => changes.push(rev));
      const rotated = { trustDomain: 'cluster.local', rootsPem: [...BUNDLE.rootsPem, 'second root'] };
      await store.txn([{ op: 'put', key: TRUST_BUNDLE_KEY, value: JSON.stringify(rotated) }]);
      await new Promise((r) => setTimeout(r, 20));
      expect(changes).toHaveLength(1);
      expect(mesh.state().trustBundle).toEqual(rotated);
      await store.txn([{ op: 'put', key: TRUST_BUNDLE_KEY, value: '{"trustDomain": 7}' }]);
      await new Promise((r) => setTimeout(r, 20));
      expect(mesh.state().trustBundle).toBeUndefined();
      await store.txn([{ op: 'put', key: TRUST_BUNDLE_KEY, value: JSON.stringify(BUNDLE) }]);
      await store.txn([{ op: 'delete', key: TRUST_BUNDLE_KEY }]);
      await new Promise((r) => setTimeout(r, 20));
      expect(mesh.state().trustBundle).toBeUndefined();
    } finally {
      await mesh.close();
    }
  });
});

describe('the discovery Snapshot message', () => {
  it('carries the trust bundle', () => {
    const method = discoveryService().Stream;
    if (method === undefined) throw new Error('no Stream method');
    const snapshot = { version: '3', nonce: 'n', trustBundle: BUNDLE };
    expect(method.responseDeserialize(method.responseSerialize({ snapshot }))).toEqual({ snapshot });
  });
});
