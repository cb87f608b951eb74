/**
 * The store-backed CA on the memory store: creation and sharing between replicas, encryption at
 * rest, MeshConfig settings, rotation with overlap and retirement (hand-moved clock), operator
 * CAs, and peer verification. Waits on other replicas poll with a deadline.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type CaRecord,
  CaRefusedError,
  CertificateAuthority,
  type CertificateAuthorityOptions,
} from '../../../control-plane/ca/authority.ts';
import { parseTrustBundle } from '../../../control-plane/ca/bundle.ts';
import { KeyStoreError } from '../../../control-plane/ca/keystore.ts';
import { checkProvidedCa, PathError, verifyPath } from '../../../control-plane/ca/pki.ts';
import { CA_KEY, resourceKey, TRUST_BUNDLE_KEY } from '../../../control-plane/store/keys.ts';
import { MemoryStore } from '../../support/memory-store.ts';
import { Clock, csrFor, foreignCa, opensslVerify, operatorChain, pemBlocks } from './helpers.ts';

const open: CertificateAuthority[] = [];
afterEach(async () => {
  for (const ca of open.splice(0)) await ca.close();
});

async function openCa(options: CertificateAuthorityOptions): Promise<CertificateAuthority> {
  const ca = await CertificateAuthority.open(options);
  open.push(ca);
  return ca;
}

async function until<T>(fn: () => T | undefined | false, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const web = { namespace: 'default', serviceAccount: 'web' };

async function leafFor(ca: CertificateAuthority, identity = web) {
  const { csrPem } = await csrFor();
  return ca.issue(csrPem, identity);
}

function der(pem: string): Buffer {
  return Buffer.from(new X509Certificate(pem).raw);
}

describe('CA creation and sharing', () => {
  it('the first replica creates the CA; a second on the same store loads the same one', async () => {
    const store = new MemoryStore();
    const a = await openCa({ store });
    const created = await store.get(CA_KEY);
    const b = await openCa({ store });
    expect(b.activeId()).toBe(a.activeId());
    expect(b.bundle()).toEqual(a.bundle());
    expect((await store.get(CA_KEY))?.modRevision).toBe(created?.modRevision);
    const leaf = await leafFor(b);
    expect(a.verifyPeer(der(leaf.certificateChainPem)).id).toBe('spiffe://cluster.local/ns/default/sa/web');
  });

  it('replicas starting together agree on one CA (conditional create)', async () => {
    const store = new MemoryStore();
    const cas = await Promise.all([openCa({ store }), openCa({ store }), openCa({ store })]);
    expect(new Set(cas.map((c) => c.activeId())).size).toBe(1);
    expect(parseTrustBundle((await store.get(TRUST_BUNDLE_KEY))?.value ?? '')?.rootsPem).toHaveLength(1);
  });

  it('stores the trust bundle as { trustDomain, rootsPem }', async () => {
    const store = new MemoryStore();
    const ca = await openCa({ store });
    const stored = JSON.parse((await store.get(TRUST_BUNDLE_KEY))?.value ?? '{}') as Record<string, unknown>;
    expect(Object.keys(stored).sort()).toEqual(['rootsPem', 'trustDomain']);
    expect(stored).toEqual({ trustDomain: 'cluster.local', rootsPem: ca.bundle().rootsPem });
  });
});

describe('CA key at rest', () => {
  it('is encrypted when an encryption key is configured: no PEM private key in the store', async () => {
    const store = new MemoryStore();
    const key = randomBytes(32);
    const a = await openCa({ store, encryptionKey: key });
    const value = (await store.get(CA_KEY))?.value ?? '';
    expect(value).not.toContain('PRIVATE KEY');
    expect((JSON.parse(value) as CaRecord).active.key.alg).toBe('aes-256-gcm');
    expect(a.status().keyEncrypted).toBe(true);
    const b = await openCa({ store, encryptionKey: key });
    expect(b.activeId()).toBe(a.activeId());
    await leafFor(b);
  });

  it('cannot be opened by a replica without the key or with another one', async () => {
    const store = new MemoryStore();
    await openCa({ store, encryptionKey: randomBytes(32) });
    await expect(CertificateAuthority.open({ store })).rejects.toThrow(KeyStoreError);
    await expect(CertificateAuthority.open({ store, encryptionKey: randomBytes(32) })).rejects.toThrow(
      /another key/,
    );
  });

  it('is kept as PEM without a key, and sealed once a key is configured later', async () => {
    const store = new MemoryStore();
    const a = await openCa({ store });
    const id = a.activeId();
    expect((await store.get(CA_KEY))?.value).toContain('PRIVATE KEY');
    expect(a.status().keyEncrypted).toBe(false);
    const b = await openCa({ store, encryptionKey: randomBytes(32) });
    expect(b.activeId()).toBe(id);
    expect((await store.get(CA_KEY))?.value).not.toContain('PRIVATE KEY');
    // A replica without the key can no longer sign (every replica needs the key file).
    await until(() => a.activeId() === undefined, 'replica a to lose the sealed key');
    await expect(leafFor(a)).rejects.toThrow(/encrypted/);
  });
});

describe('MeshConfig settings', () => {
  it('takes the trust domain and TTL from MeshConfig default at issuance, and syncs the bundle', async () => {
    const store = new MemoryStore();
    const clock = new Clock();
    const ca = await openCa({ store, now: clock.now });
    let leaf = await leafFor(ca);
    expect(leaf.trustDomain).toBe('cluster.local');
    expect(leaf.expiresAtMs).toBe(Math.floor((clock.ms + 24 * 3_600_000) / 1000) * 1000);
    await store.txn([
      {
        op: 'put',
        key: resourceKey('MeshConfig', 'default', 'default'),
        value: JSON.stringify({
          apiVersion: 'weft.dev/v1alpha1',
          kind: 'MeshConfig',
          metadata: { name: 'default' },
          spec: { trustDomain: 'example.org', mtls: { mode: 'STRICT' }, certificateTtl: '2h' },
        }),
      },
    ]);
    leaf = await leafFor(ca, { namespace: 'shop', serviceAccount: 'api' });
    expect(leaf.spiffeId).toBe('spiffe://example.org/ns/shop/sa/api');
    expect(new X509Certificate(leaf.certificateChainPem).subjectAltName).toBe(
      'URI:spiffe://example.org/ns/shop/sa/api',
    );
    expect(leaf.expiresAtMs).toBe(Math.floor((clock.ms + 2 * 3_600_000) / 1000) * 1000);
    await until(() => ca.bundle().trustDomain === 'example.org', 'the bundle trust domain');
    expect(parseTrustBundle((await store.get(TRUST_BUNDLE_KEY))?.value ?? '')?.trustDomain).toBe(
      'example.org',
    );
  });

  it('lets a TTL override win over MeshConfig', async () => {
    const clock = new Clock();
    const ca = await openCa({ store: new MemoryStore(), now: clock.now, certTtlMs: 5000 });
    expect((await leafFor(ca)).expiresAtMs).toBe(Math.floor((clock.ms + 5000) / 1000) * 1000);
  });
});

describe('root rotation', () => {
  it('adds a new root, issues from it, keeps the old root for the overlap, then retires it everywhere', async () => {
    const store = new MemoryStore();
    const clock = new Clock();
    const a = await openCa({ store, now: clock.now });
    const b = await openCa({ store, now: clock.now });
    const oldRoot = a.bundle().rootsPem[0] as string;
    const oldLeaf = await leafFor(a);

    const status = await a.rotate(3_600_000, 0);
    const [newRoot, keptRoot] = a.bundle().rootsPem as [string, string];
    expect(a.bundle().rootsPem).toHaveLength(2);
    expect(keptRoot).toBe(oldRoot);
    expect(newRoot).not.toBe(oldRoot);
    expect(status.roots.map((r) => r.state)).toEqual(['active', 'retiring']);
    expect(status.roots[1]?.retireAt).toBe(new Date(clock.ms + 3_600_000).toISOString());

    // The other replica follows: same bundle, issues from the new root too.
    await until(() => b.activeId() === a.activeId(), 'replica b to switch to the new root');
    expect(b.bundle()).toEqual(a.bundle());
    for (const ca of [a, b]) {
      const leaf = await leafFor(ca);
      const x = new X509Certificate(leaf.certificateChainPem);
      expect(verifyPath(x, [], [new X509Certificate(newRoot)], clock.ms)).toBeDefined();
      expect(() => verifyPath(x, [], [new X509Certificate(oldRoot)], clock.ms)).toThrow(PathError);
      expect(leaf.trustBundlePem).toEqual([newRoot, oldRoot]);
      expect((await opensslVerify(newRoot, leaf.certificateChainPem)).code).toBe(0);
    }
    // During the overlap leaves of the old root still authenticate.
    expect(b.verifyPeer(der(oldLeaf.certificateChainPem)).serviceAccount).toBe('web');

    clock.advance(3_599_000);
    expect(await b.retireDue()).toBe(0);
    expect(a.bundle().rootsPem).toHaveLength(2);
    clock.advance(1000);
    expect(await b.retireDue()).toBe(1);
    await until(() => a.bundle().rootsPem.length === 1, 'replica a to see the retirement');
    expect(a.bundle().rootsPem).toEqual([newRoot]);
    expect(() => a.verifyPeer(der(oldLeaf.certificateChainPem))).toThrow(/does not chain/);
    const stored = JSON.parse((await store.get(CA_KEY))?.value ?? '{}') as CaRecord;
    expect(stored.retiring).toEqual([]);
  });

  it('persists the retirement time: a replica started later retires the old root on schedule', async () => {
    const store = new MemoryStore();
    const a = await openCa({ store });
    await a.rotate(300, 0);
    await a.close();
    const b = await openCa({ store });
    expect(b.bundle().rootsPem).toHaveLength(2);
    await until(() => b.bundle().rootsPem.length === 1, 'the retirement timer of replica b', 5000);
  });

  it('is staged: the new root is trusted first and issues only after the propagation time', async () => {
    const store = new MemoryStore();
    const clock = new Clock();
    const a = await openCa({ store, now: clock.now });
    const b = await openCa({ store, now: clock.now });
    const oldRoot = a.bundle().rootsPem[0] as string;
    const oldId = a.activeId();

    const status = await a.rotate(3_600_000, 30_000);
    expect(status.roots.map((r) => r.state)).toEqual(['active', 'pending']);
    expect(status.roots[1]?.activateAt).toBe(new Date(clock.ms + 30_000).toISOString());
    const [keptRoot, newRoot] = a.bundle().rootsPem as [string, string];
    expect(keptRoot).toBe(oldRoot);
    await until(() => b.bundle().rootsPem.length === 2, 'replica b to trust the pending root');
    // Until the switch every leaf still chains to the old root, and carries both roots.
    for (const ca of [a, b]) {
      expect(ca.activeId()).toBe(oldId);
      const leaf = await leafFor(ca);
      const x = new X509Certificate(leaf.certificateChainPem);
      expect(verifyPath(x, [], [new X509Certificate(oldRoot)], clock.ms)).toBeDefined();
      expect(leaf.trustBundlePem).toEqual([oldRoot, newRoot]);
    }
    await expect(a.rotate()).rejects.toThrow(/already in progress/);

    clock.advance(29_000);
    await b.retireDue();
    expect(a.activeId()).toBe(oldId);
    clock.advance(1000);
    expect(await b.retireDue()).toBe(0);
    await until(() => a.activeId() !== oldId, 'replica a to see the switch');
    const after = a.status();
    expect(after.roots.map((r) => r.state)).toEqual(['active', 'retiring']);
    expect(after.roots[1]?.retireAt).toBe(new Date(clock.ms + 3_600_000).toISOString());
    expect(a.bundle().rootsPem).toEqual([newRoot, oldRoot]);
    const leaf = await leafFor(a);
    expect(
      verifyPath(new X509Certificate(leaf.certificateChainPem), [], [new X509Certificate(newRoot)], clock.ms),
    ).toBeDefined();
    const stored = JSON.parse((await store.get(CA_KEY))?.value ?? '{}') as CaRecord;
    expect(stored.pending).toBeUndefined();
  });

  it('persists the activation time: a replica started later switches issuance on schedule', async () => {
    const store = new MemoryStore();
    const a = await openCa({ store });
    const before = a.activeId();
    await a.rotate(60_000, 300);
    await a.close();
    const b = await openCa({ store });
    expect(b.activeId()).toBe(before);
    await until(() => b.activeId() !== before, 'the activation timer of replica b', 5000);
    expect(b.status().roots.map((r) => r.state)).toEqual(['active', 'retiring']);
  });

  it('is refused for an operator-provided CA', async () => {
    const { root } = await operatorChain();
    const ca = await openCa({
      store: new MemoryStore(),
      provided: checkProvidedCa(root.certPem, root.keyPem),
    });
    await expect(ca.rotate()).rejects.toThrow(CaRefusedError);
  });
});

describe('operator-provided CA', () => {
  it('issues from an intermediate: the chain carries it, the bundle holds the operator root', async () => {
    const { root, intermediate } = await operatorChain();
    const provided = checkProvidedCa(intermediate.certPem, intermediate.keyPem, root.certPem);
    const ca = await openCa({ store: new MemoryStore(), provided });
    expect(ca.bundle().rootsPem).toEqual([provided.rootPem]);
    const leaf = await leafFor(ca);
    const blocks = pemBlocks(leaf.certificateChainPem);
    expect(blocks).toHaveLength(2);
    expect(new X509Certificate(blocks[1] as string).fingerprint256).toBe(
      new X509Certificate(intermediate.certPem).fingerprint256,
    );
    const verified = await opensslVerify(root.certPem, blocks[0] as string, blocks[1] as string);
    expect(verified.code).toBe(0);
    expect(ca.verifyPeer(der(leaf.certificateChainPem)).serviceAccount).toBe('web');
    expect(ca.status().active).toMatchObject({ provided: true, intermediate: true });
  });

  it('replaces a generated CA, keeping the old root for one certificate TTL', async () => {
    const store = new MemoryStore();
    const first = await openCa({ store });
    const oldRoot = first.bundle().rootsPem[0];
    await first.close();
    const { root } = await operatorChain();
    const ca = await openCa({ store, provided: checkProvidedCa(root.certPem, root.keyPem) });
    expect(ca.bundle().rootsPem).toEqual([checkProvidedCa(root.certPem, root.keyPem).rootPem, oldRoot]);
  });
});

describe('verifyPeer', () => {
  it('refuses CA certificates, other CAs’ leaves, expired leaves and SPIFFE-less certificates', async () => {
    const clock = new Clock();
    const ca = await openCa({ store: new MemoryStore(), now: clock.now, certTtlMs: 60_000 });
    expect(() => ca.verifyPeer(der(ca.bundle().rootsPem[0] as string))).toThrow(/CA certificate/);
    const foreign = await foreignCa();
    expect(() => ca.verifyPeer(der(foreign.leaf.certPem))).toThrow(/does not chain/);
    const leaf = await leafFor(ca);
    expect(ca.verifyPeer(der(leaf.certificateChainPem)).id).toBe('spiffe://cluster.local/ns/default/sa/web');
    clock.advance(61_000);
    expect(() => ca.verifyPeer(der(leaf.certificateChainPem))).toThrow(/expired/);
  });
});
