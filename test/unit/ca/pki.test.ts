/** Roots, serials, path checks and operator-provided CAs (checked with Node's X509Certificate and openssl). */
import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { describe, expect, it } from 'vitest';
import { signLeaf } from '../../../control-plane/ca/issue.ts';
import {
  checkProvidedCa,
  createRootCa,
  forgeSigner,
  generateRsaKeyPair,
  isSelfSigned,
  PathError,
  randomSerialHex,
  verifyPath,
} from '../../../control-plane/ca/pki.ts';
import { foreignCa, opensslVerify, operatorChain } from './helpers.ts';

describe('root CA', () => {
  it('is a self-signed CA for 10 years with keyCertSign and a unique name', async () => {
    const now = Date.now();
    const root = await createRootCa(now);
    const x = new X509Certificate(root.certPem);
    expect(x.ca).toBe(true);
    expect(isSelfSigned(x)).toBe(true);
    expect(x.subject).toContain(`CN=Weft Root CA ${new Date(now).toISOString()}`);
    expect(x.validToDate.getTime() - now).toBeGreaterThan(9.9 * 365 * 86_400_000);
    expect(x.validFromDate.getTime()).toBeLessThanOrEqual(now - 59_000);
    expect(x.checkPrivateKey(createPrivateKey(root.keyPem))).toBe(true);
    const text = forge.pki.certificateFromPem(root.certPem);
    const ku = text.getExtension('keyUsage') as { keyCertSign?: boolean; critical?: boolean };
    expect(ku.keyCertSign && ku.critical).toBe(true);
  });
});

describe('serial numbers', () => {
  it('are positive, minimally encoded 128-bit values', () => {
    for (let i = 0; i < 200; i++) {
      const hex = randomSerialHex();
      expect(hex.length === 32 || (hex.length === 34 && hex.startsWith('00'))).toBe(true);
      const first = Number.parseInt(hex.slice(0, 2), 16);
      if (hex.length === 34) expect(Number.parseInt(hex.slice(2, 4), 16)).toBeGreaterThanOrEqual(0x80);
      else expect(first).toBeGreaterThan(0);
    }
  });
});

describe('verifyPath', () => {
  it('accepts a leaf of the root, refuses other roots, expired and not-yet-valid leaves', async () => {
    const now = Date.now();
    const root = await createRootCa(now);
    const pair = await generateRsaKeyPair();
    const leaf = signLeaf(forgeSigner(root.certPem, root.keyPem), {
      publicKey: forge.pki.publicKeyFromPem(pair.publicKeyPem),
      spiffeId: 'spiffe://cluster.local/ns/a/sa/b',
      commonName: '/ns/a/sa/b',
      ttlMs: 3_600_000,
      nowMs: now,
    });
    const leafX = new X509Certificate(leaf.certPem);
    const rootX = new X509Certificate(root.certPem);
    expect(verifyPath(leafX, [], [rootX], now)).toBe(rootX);
    const other = new X509Certificate((await foreignCa()).root.certPem);
    expect(() => verifyPath(leafX, [], [other], now)).toThrow(PathError);
    expect(() => verifyPath(leafX, [], [rootX], now + 2 * 3_600_000)).toThrow(/expired/);
    expect(() => verifyPath(leafX, [], [rootX], now - 3_600_000)).toThrow(/not valid before/);
  });
});

describe('operator-provided CA', () => {
  it('takes a root as is', async () => {
    const { root } = await operatorChain();
    const m = checkProvidedCa(root.certPem, root.keyPem);
    expect(m.rootPem).toBe(m.certPem);
    expect(m.chainPem).toEqual([]);
    expect(m.keyPem).toContain('BEGIN PRIVATE KEY');
  });

  it('takes an intermediate with its chain up to the root, and a leaf it signs verifies with openssl', async () => {
    const { root, intermediate } = await operatorChain();
    const m = checkProvidedCa(intermediate.certPem, intermediate.keyPem, root.certPem);
    expect(new X509Certificate(m.rootPem).fingerprint256).toBe(
      new X509Certificate(root.certPem).fingerprint256,
    );
    expect(m.chainPem).toEqual([]);
    const pair = await generateRsaKeyPair();
    const leaf = signLeaf(forgeSigner(m.certPem, m.keyPem), {
      publicKey: forge.pki.publicKeyFromPem(pair.publicKeyPem),
      spiffeId: 'spiffe://cluster.local/ns/a/sa/b',
      commonName: '/ns/a/sa/b',
      ttlMs: 3_600_000,
      nowMs: Date.now(),
    });
    const result = await opensslVerify(m.rootPem, leaf.certPem, m.certPem);
    expect(result.output).toContain('OK');
    expect(result.code).toBe(0);
    // Without the intermediate the chain does not close.
    expect((await opensslVerify(m.rootPem, leaf.certPem)).code).not.toBe(0);
  });

  it('refuses an intermediate without its chain, a mismatched key, and a non-CA certificate', async () => {
    const { root, intermediate } = await operatorChain();
    expect(() => checkProvidedCa(intermediate.certPem, intermediate.keyPem)).toThrow(/--ca-chain/);
    expect(() => checkProvidedCa(root.certPem, intermediate.keyPem)).toThrow(/does not match/);
    const { leaf } = await foreignCa();
    expect(() => checkProvidedCa(leaf.certPem, leaf.keyPem)).toThrow(/not a CA/);
    const { root: other } = await foreignCa();
    expect(() => checkProvidedCa(intermediate.certPem, intermediate.keyPem, other.certPem)).toThrow(
      /no issuer/,
    );
  });

  it('refuses an EC CA (forge signs with RSA only)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'weft-ec-'));
    try {
      await new Promise<void>((resolve, reject) =>
        execFile(
          'openssl',
          [
            'req',
            '-x509',
            '-newkey',
            'ec',
            '-pkeyopt',
            'ec_paramgen_curve:P-256',
            '-nodes',
            '-keyout',
            join(dir, 'key.pem'),
            '-out',
            join(dir, 'cert.pem'),
            '-subj',
            '/CN=EC Root',
            '-days',
            '2',
          ],
          (err) => (err ? reject(err) : resolve()),
        ),
      );
      const cert = await readFile(join(dir, 'cert.pem'), 'utf8');
      const key = await readFile(join(dir, 'key.pem'), 'utf8');
      expect(() => checkProvidedCa(cert, key)).toThrow(/RSA keys only/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
