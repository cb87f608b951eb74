/**
 * Leaf issuance: the CSR only gives its key; the leaf is an X.509-SVID for the identity the
 * caller passes (checked with Node's X509Certificate and the openssl binary).
 */
import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { beforeAll, describe, expect, it } from 'vitest';
import { CsrError, csrPublicKey, signLeaf } from '../../../control-plane/ca/issue.ts';
import {
  createRootCa,
  type ForgeSigner,
  forgeSigner,
  type GeneratedRoot,
} from '../../../control-plane/ca/pki.ts';
import { csrFor, opensslVerify } from './helpers.ts';

let root: GeneratedRoot;
let signer: ForgeSigner;
beforeAll(async () => {
  root = await createRootCa(Date.now());
  signer = forgeSigner(root.certPem, root.keyPem);
});

describe('CSR checks', () => {
  it('gives the public key of a well-signed request', async () => {
    const { pair, csrPem } = await csrFor();
    const key = csrPublicKey(csrPem);
    expect(forge.pki.publicKeyToPem(key).replace(/\r/g, '')).toBe(pair.publicKeyPem);
  });

  it('refuses empty, garbage, tampered and oversized requests', async () => {
    expect(() => csrPublicKey('')).toThrow(CsrError);
    expect(() =>
      csrPublicKey('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n'),
    ).toThrow(CsrError);
    const { csrPem } = await csrFor({ commonName: 'original' });
    const csr = forge.pki.certificationRequestFromPem(csrPem);
    csr.setSubject([{ name: 'commonName', value: 'tampered' }]); // signature no longer matches
    csr.certificationRequestInfo = null; // re-encode the changed subject with the old signature
    const tampered = forge.pki.certificationRequestToPem(csr);
    expect(() => csrPublicKey(tampered)).toThrow(/does not verify/);
    expect(() => csrPublicKey('x'.repeat(20_000))).toThrow(/larger than/);
  });
});

describe('signLeaf', () => {
  it('issues an X.509-SVID for the given SPIFFE ID, ignoring what the CSR asks for', async () => {
    const now = Date.now();
    const { csrPem } = await csrFor({
      commonName: 'admin',
      uriSans: ['spiffe://cluster.local/ns/default/sa/admin'],
      dnsSans: ['admin.example'],
    });
    const leaf = signLeaf(signer, {
      publicKey: csrPublicKey(csrPem),
      spiffeId: 'spiffe://cluster.local/ns/shop/sa/web',
      commonName: '/ns/shop/sa/web',
      ttlMs: 24 * 3_600_000,
      nowMs: now,
    });
    const x = new X509Certificate(leaf.certPem);
    expect(x.subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/web');
    expect(x.subject).toBe('CN=/ns/shop/sa/web');
    expect(x.ca).toBe(false);
    expect(x.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    expect(x.verify(new X509Certificate(root.certPem).publicKey)).toBe(true);
    expect(x.checkIssued(new X509Certificate(root.certPem))).toBe(true);
    expect(x.validFromDate.getTime()).toBe(Math.floor((now - 60_000) / 1000) * 1000);
    expect(x.validToDate.getTime()).toBe(leaf.notAfterMs);
    expect(leaf.notAfterMs).toBe(Math.floor((now + 24 * 3_600_000) / 1000) * 1000);
    expect(x.serialNumber.toLowerCase().replace(/^0+/, '')).toBe(leaf.serialNumber.replace(/^0+/, ''));

    const parsed = forge.pki.certificateFromPem(leaf.certPem);
    const bc = parsed.getExtension('basicConstraints') as { cA?: boolean; critical?: boolean };
    expect(bc.critical).toBe(true);
    const ku = parsed.getExtension('keyUsage') as Record<string, boolean>;
    expect(ku).toMatchObject({
      digitalSignature: true,
      keyEncipherment: true,
      keyCertSign: false,
      critical: true,
    });

    const verified = await opensslVerify(root.certPem, leaf.certPem);
    expect(verified.output).toContain(': OK');
    expect(verified.code).toBe(0);
  });

  it('adds DNS and IP SANs only when asked (serving certificates), and caps notAfter at the issuer', async () => {
    const { csrPem } = await csrFor();
    const leaf = signLeaf(signer, {
      publicKey: csrPublicKey(csrPem),
      spiffeId: 'spiffe://cluster.local/ns/weft-system/sa/control-plane',
      commonName: '/ns/weft-system/sa/control-plane',
      ttlMs: 100 * 365 * 86_400_000,
      nowMs: Date.now(),
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    const x = new X509Certificate(leaf.certPem);
    expect(x.subjectAltName).toContain('URI:spiffe://cluster.local/ns/weft-system/sa/control-plane');
    expect(x.subjectAltName).toContain('DNS:localhost');
    expect(x.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(x.subjectAltName).toContain('IP Address:0:0:0:0:0:0:0:1');
    expect(x.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x.validToDate.getTime()).toBe(new X509Certificate(root.certPem).validToDate.getTime());
  });

  it('gives every leaf its own serial', async () => {
    const { csrPem } = await csrFor();
    const key = csrPublicKey(csrPem);
    const serials = new Set<string>();
    for (let i = 0; i < 5; i++) {
      serials.add(
        signLeaf(signer, {
          publicKey: key,
          spiffeId: 'spiffe://td/ns/a/sa/b',
          commonName: 'x',
          ttlMs: 1000,
          nowMs: Date.now(),
        }).serialNumber,
      );
    }
    expect(serials.size).toBe(5);
  });
});
