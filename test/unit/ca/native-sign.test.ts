/**
 * native-sign.ts: node:crypto signatures of forge certificates and CSRs are byte-for-byte what
 * forge's own (pure-JS) `sign` produces (RSA PKCS#1 v1.5 is deterministic), and they verify with
 * node's X509Certificate and with forge.
 */
import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { describe, expect, it } from 'vitest';
import { signCertificate, signCsr } from '../../../control-plane/ca/native-sign.ts';
import { generateRsaKeyPair } from '../../../control-plane/ca/pki.ts';

function selfSigned(publicKeyPem: string): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.UTC(2026, 0, 1));
  cert.validity.notAfter = new Date(Date.UTC(2027, 0, 1));
  cert.setSubject([{ name: 'commonName', value: 'native-sign' }]);
  cert.setIssuer([{ name: 'commonName', value: 'native-sign' }]);
  return cert;
}

describe('native-sign', () => {
  it('signs a certificate exactly like forge (sha256WithRSAEncryption), verifiable by node', async () => {
    const pair = await generateRsaKeyPair();
    const key = forge.pki.privateKeyFromPem(pair.privateKeyPem) as forge.pki.rsa.PrivateKey;
    const byForge = selfSigned(pair.publicKeyPem);
    byForge.sign(key, forge.md.sha256.create());
    const native = selfSigned(pair.publicKeyPem);
    signCertificate(native, key);
    const pem = forge.pki.certificateToPem(native);
    expect(pem).toBe(forge.pki.certificateToPem(byForge));
    const x509 = new X509Certificate(pem);
    expect(x509.verify(x509.publicKey)).toBe(true);
    expect(forge.pki.certificateFromPem(pem).verify(forge.pki.certificateFromPem(pem))).toBe(true);
  });

  it('signs a CSR exactly like forge, and forge verifies it (as the CA does)', async () => {
    const pair = await generateRsaKeyPair();
    const make = (): forge.pki.CertificateSigningRequest => {
      const csr = forge.pki.createCertificationRequest();
      csr.publicKey = forge.pki.publicKeyFromPem(pair.publicKeyPem);
      csr.setSubject([{ name: 'commonName', value: 'native-sign' }]);
      return csr;
    };
    const byForge = make();
    byForge.sign(
      forge.pki.privateKeyFromPem(pair.privateKeyPem) as forge.pki.rsa.PrivateKey,
      forge.md.sha256.create(),
    );
    const native = make();
    signCsr(native, pair.privateKeyPem);
    const pem = forge.pki.certificationRequestToPem(native);
    expect(pem).toBe(forge.pki.certificationRequestToPem(byForge));
    expect(forge.pki.certificationRequestFromPem(pem).verify()).toBe(true);
  });

  it('signs a CSR with a wrong key: forge rejects it (as the CA does)', async () => {
    const [pair, other] = await Promise.all([generateRsaKeyPair(), generateRsaKeyPair()]);
    const csr = forge.pki.createCertificationRequest();
    csr.publicKey = forge.pki.publicKeyFromPem(pair.publicKeyPem);
    csr.setSubject([{ name: 'commonName', value: 'native-sign' }]);
    signCsr(csr, other.privateKeyPem);
    const pem = forge.pki.certificationRequestToPem(csr);
    let verified: boolean;
    try {
      verified = forge.pki.certificationRequestFromPem(pem).verify();
    } catch {
      verified = false; // forge throws on a signature that decodes to garbage
    }
    expect(verified).toBe(false);
  });
});
