/**
 * sha256WithRSAEncryption signatures of node-forge certificates and PKCS#10 requests made by
 * node:crypto (OpenSSL) instead of forge's pure-JS RSA: forge's private-key operation takes tens
 * of milliseconds of synchronous JavaScript on a quiet machine (hundreds under CPU contention),
 * which blocked the event loop of the control plane at every issuance and of a sidecar at every
 * renewal (every half certificate lifetime, with requests in flight). The ASN.1 stays forge's; the
 * result is byte-for-byte what `cert.sign(key, sha256)` / `csr.sign(key, sha256)` produce (RSA
 * PKCS#1 v1.5 signatures are deterministic). Spec: RFC 5280 §4.1.1.2-3, RFC 2986 §4, RFC 8017 §8.2.
 */
import { createPrivateKey, type KeyObject, sign } from 'node:crypto';
import forge from 'node-forge';

/** forge builders that forge exports but its type definitions leave out. */
const forgePki = forge.pki as unknown as {
  getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1;
  getCertificationRequestInfo(csr: forge.pki.CertificateSigningRequest): forge.asn1.Asn1;
};

const SHA256_WITH_RSA = forge.pki.oids.sha256WithRSAEncryption as string;

/** node:crypto key objects of forge private keys (a CA signs with the same key many times). */
const KEY_OBJECTS = new WeakMap<forge.pki.PrivateKey, KeyObject>();

function keyObjectOf(key: forge.pki.PrivateKey | string): KeyObject {
  if (typeof key === 'string') return createPrivateKey(key);
  let obj = KEY_OBJECTS.get(key);
  if (obj === undefined) {
    obj = createPrivateKey(forge.pki.privateKeyToPem(key));
    KEY_OBJECTS.set(key, obj);
  }
  return obj;
}

function signDer(asn: forge.asn1.Asn1, key: forge.pki.PrivateKey | string): string {
  const der = Buffer.from(forge.asn1.toDer(asn).getBytes(), 'binary');
  return sign('sha256', der, keyObjectOf(key)).toString('binary');
}

/** Signs `cert` sha256WithRSAEncryption with `key` (a forge RSA private key or a PEM). */
export function signCertificate(cert: forge.pki.Certificate, key: forge.pki.PrivateKey | string): void {
  cert.md = forge.md.sha256.create();
  cert.signatureOid = SHA256_WITH_RSA;
  cert.siginfo.algorithmOid = SHA256_WITH_RSA;
  cert.tbsCertificate = forgePki.getTBSCertificate(cert);
  cert.signature = signDer(cert.tbsCertificate, key);
}

/** Signs `csr` sha256WithRSAEncryption with `key` (a forge RSA private key or a PEM). */
export function signCsr(csr: forge.pki.CertificateSigningRequest, key: forge.pki.PrivateKey | string): void {
  csr.md = forge.md.sha256.create();
  csr.signatureOid = SHA256_WITH_RSA;
  csr.siginfo.algorithmOid = SHA256_WITH_RSA;
  const info = forgePki.getCertificationRequestInfo(csr);
  (
    csr as forge.pki.CertificateSigningRequest & { certificationRequestInfo: forge.asn1.Asn1 }
  ).certificationRequestInfo = info;
  csr.signature = signDer(info, key);
}
