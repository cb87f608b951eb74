import { describe, expect, it } from 'vitest';
import { configHash, SnapshotCache } from '../../../control-plane/discovery/snapshot-cache.ts';
import type { ProxySnapshot } from '../../../control-plane/translate/types.ts';
import type { ProxyConfig } from '../../../sidecar/proxy/config/model.ts';

function config(tag: string): ProxyConfig {
  return {
    listeners: [],
    routes: [
      { name: tag, virtualHosts: [{ domains: ['*'], routes: [{ directResponse: { status: 200 } }] }] },
    ],
    clusters: [],
    endpoints: [],
  };
}

function snap(version: number, tag: string): ProxySnapshot {
  return { version: String(version), config: config(tag) };
}

function cacheWith(proxyId = 'p'): SnapshotCache {
  const cache = new SnapshotCache();
  cache.open(proxyId, '');
  return cache;
}

describe('configHash', () => {
  it('ignores object key order and undefined fields but not list order', () => {
    const a: ProxyConfig = {
      listeners: [],
      routes: [],
      clusters: [{ name: 'c', hashHeader: 'x' }],
      endpoints: [],
    };
    const b = {
      endpoints: [],
      clusters: [{ hashHeader: 'x', name: 'c', lbPolicy: undefined }],
      routes: [],
      listeners: [],
    };
    expect(configHash(b as unknown as ProxyConfig)).toBe(configHash(a));
    const c: ProxyConfig = { ...a, clusters: [{ name: 'd' }, { name: 'c' }] };
    const d: ProxyConfig = { ...a, clusters: [{ name: 'c' }, { name: 'd' }] };
    expect(configHash(c)).not.toBe(configHash(d));
  });
});

describe('SnapshotCache', () => {
  it('a first snapshot is changed; the same config at a newer revision is unchanged', () => {
    const cache = cacheWith();
    expect(cache.update('p', snap(5, 'a'))).toBe('changed');
    cache.recordSent('p', 'n1', 0);
    expect(cache.update('p', snap(6, 'a'))).toBe('unchanged');
    expect(cache.update('p', snap(7, 'b'))).toBe('changed');
  });

  it('no snapshot computed is neither changed nor unchanged', () => {
    expect(cacheWith().update('p', undefined)).toBe('none');
  });

  it('an ACK of the outstanding nonce records the version and the sync', () => {
    const cache = cacheWith();
    cache.update('p', snap(5, 'a'));
    cache.recordSent('p', 'n1', 10);
    expect(cache.recordAck('p', '5', 'n1')).toMatchObject({
      accepted: true,
      sent: { nonce: 'n1', sentAtMs: 10 },
    });
    expect(cache.get('p')).toMatchObject({ ackedVersion: '5', syncedRevision: 5, outstanding: false });
  });

  it('a stale ACK or NACK (another nonce) is ignored', () => {
    const cache = cacheWith();
    cache.update('p', snap(5, 'a'));
    cache.recordSent('p', 'n1', 0);
    cache.update('p', snap(6, 'b'));
    cache.recordSent('p', 'n2', 0);
    expect(cache.recordAck('p', '5', 'n1').accepted).toBe(false);
    expect(cache.recordNack('p', '5', 'n1', 'bad', new Date())).toBe(false);
    expect(cache.get('p')).toMatchObject({ ackedVersion: '', syncedRevision: 0, outstanding: true });
  });

  it('a NACK is recorded with its reason and the rejected config is not "changed" again', () => {
    const cache = cacheWith();
    cache.update('p', snap(5, 'bad'));
    cache.recordSent('p', 'n1', 0);
    const at = new Date('2026-01-02T03:04:05Z');
    expect(cache.recordNack('p', '5', 'n1', 'Listener l: port', at)).toBe(true);
    expect(cache.get('p')?.lastNack).toStrictEqual({
      version: '5',
      reason: 'Listener l: port',
      at: at.toISOString(),
    });
    expect(cache.update('p', snap(6, 'bad'))).toBe('unchanged');
    expect(cache.markUnchanged('p', 6)).toBe(false);
    expect(cache.get('p')?.syncedRevision).toBe(0);
  });

  it('unchanged at a newer revision advances the sync once ACKed, or when the pending ACK arrives', () => {
    const cache = cacheWith();
    cache.update('p', snap(5, 'a'));
    cache.recordSent('p', 'n1', 0);
    expect(cache.markUnchanged('p', 6)).toBe(false);
    cache.recordAck('p', '5', 'n1');
    expect(cache.get('p')?.syncedRevision).toBe(6);
    expect(cache.markUnchanged('p', 9)).toBe(true);
    expect(cache.markUnchanged('p', 8)).toBe(false);
    expect(cache.get('p')?.syncedRevision).toBe(9);
  });

  it('reports the serving version of the Hello as ACKed until a real ACK', () => {
    const cache = new SnapshotCache();
    cache.open('p', '3');
    expect(cache.get('p')?.ackedVersion).toBe('3');
    cache.delete('p');
    expect(cache.has('p')).toBe(false);
    expect(() => cache.update('p', undefined)).toThrow(/no snapshot cache entry/);
  });
});
