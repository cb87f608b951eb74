/**
 * Issuance of workload certificates (X.509-SVIDs) with node-forge: CSR checking and leaf signing.
 *
 * Invariants: the CSR only contributes its public key (after its self-signature verified); its
 * subject, SANs and requested extensions are ignored. A leaf has subject CN = the SPIFFE ID's path,
 * exactly one URI SAN (the SPIFFE ID given by the caller, i.e. the authenticated identity), plus
 * DNS/IP SANs only when the caller asks (the control plane's own serving certificate);
 * basicConstraints cA=FALSE (critical), keyUsage digitalSignature+keyEncipherment (critical),
 * extKeyUsage serverAuth+clientAuth, subject and authority key identifiers, a random positive
 * 128-bit serial, notBefore = now − 1 min, notAfter = now + TTL capped at the issuer's notAfter,
 * SHA-256 with RSA.
 *
 * Spec: SPIFFE X.509-SVID (https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md §4,
 * §5: one URI SAN, leaf not a CA, keyUsage digitalSignature, no keyCertSign/cRLSign); RFC 5280
 * §4.2.1 (extensions); RFC 2986 (PKCS#10).
 */
import { isIP } from 'node:net';
import forge from 'node-forge';
import { signCertificate } from './native-sign.ts';
import { BACKDATE_MS, type ForgeSigner, lf, RSA_BITS, randomSerialHex, subjectKeyIdOf } from './pki.ts';

/** Largest CSR accepted, characters of PEM. */
export const MAX_CSR_CHARS = 16 * 1024;

/** A CSR that cannot be used: malformed, bad signature, or a key Weft does not accept. */
export class CsrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsrError';
  }
}

/**
 * The public key of a PEM PKCS#10 request, after checking its self-signature.
 * @throws CsrError when it is empty, too large, malformed, not RSA, smaller than 2048 bits, or its
 * signature does not verify.
 */
export function csrPublicKey(csrPem: string): forge.pki.rsa.PublicKey {
  if (csrPem.trim() === '') throw new CsrError('csrPem: empty');
  if (csrPem.length > MAX_CSR_CHARS) throw new CsrError(`csrPem: larger than ${MAX_CSR_CHARS} characters`);
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (err) {
    throw new CsrError(`csrPem: not a PEM PKCS#10 request with an RSA key: ${(err as Error).message}`);
  }
  let verified = false;
  try {
    verified = csr.verify();
  } catch {
    verified = false;
  }
  if (!verified) throw new CsrError('csrPem: the request signature does not verify');
  const key = csr.publicKey as forge.pki.rsa.PublicKey | null;
  if (key === null || typeof key.n?.bitLength !== 'function') throw new CsrError('csrPem: no RSA public key');
  if (key.n.bitLength() < RSA_BITS)
    throw new CsrError(`csrPem: RSA keys must have at least ${RSA_BITS} bits`);
  return key;
}

/** What a leaf is issued for. */
export interface LeafRequest {
  /** The subject public key (from a checked CSR, or a key the control plane made). */
  readonly publicKey: forge.pki.rsa.PublicKey;
  /** The one URI SAN: the authenticated SPIFFE ID. */
  readonly spiffeId: string;
  /** Subject CN (the SPIFFE ID's path). */
  readonly commonName: string;
  /** Lifetime from now, milliseconds (> 0). */
  readonly ttlMs: number;
  /** Issuance time, ms since the epoch. */
  readonly nowMs: number;
  /** Extra DNS SANs (serving certificates only). */
  readonly dnsNames?: readonly string[];
  /** Extra IP SANs, IPv4 or IPv6 (serving certificates only). */
  readonly ipAddresses?: readonly string[];
}

/** A signed leaf. */
export interface SignedLeaf {
  readonly certPem: string;
  /** Lower-case hex, as `X509Certificate.serialNumber` without leading zero octets. */
  readonly serialNumber: string;
  /** notAfter, ms since the epoch (whole seconds, as encoded). */
  readonly notAfterMs: number;
}

type AltName = { type: 2; value: string } | { type: 6; value: string } | { type: 7; ip: string };

/**
 * Signs a leaf certificate for `request` with `signer` (see the module invariants).
 * @throws Error when `ttlMs` is not positive or an IP SAN is not an address.
 */
export function signLeaf(signer: ForgeSigner, request: LeafRequest): SignedLeaf {
  if (!(request.ttlMs > 0)) throw new Error(`certificate TTL must be positive, got ${request.ttlMs} ms`);
  const cert = forge.pki.createCertificate();
  cert.publicKey = request.publicKey;
  cert.serialNumber = randomSerialHex();
  // X.509 times have whole seconds: round down so that `notAfterMs` is what the certificate says.
  const notAfterMs =
    Math.floor(Math.min(request.nowMs + request.ttlMs, signer.cert.validity.notAfter.getTime()) / 1000) *
    1000;
  cert.validity.notBefore = new Date(request.nowMs - BACKDATE_MS);
  cert.validity.notAfter = new Date(notAfterMs);
  cert.setSubject([{ name: 'commonName', value: request.commonName }]);
  cert.setIssuer(signer.cert.subject.attributes);
  const altNames: AltName[] = [{ type: 6, value: request.spiffeId }];
  for (const dns of request.dnsNames ?? []) altNames.push({ type: 2, value: dns });
  for (const ip of request.ipAddresses ?? []) {
    if (isIP(ip) === 0) throw new Error(`${JSON.stringify(ip)} is not an IP address`);
    altNames.push({ type: 7, ip });
  }
  const authorityKeyId = subjectKeyIdOf(signer.cert);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames },
    { name: 'subjectKeyIdentifier' },
    ...(authorityKeyId === undefined
      ? []
      : [{ name: 'authorityKeyIdentifier', keyIdentifier: forge.util.hexToBytes(authorityKeyId) }]),
  ]);
  signCertificate(cert, signer.key); // node:crypto, not forge's pure-JS RSA (native-sign.ts)
  return {
    certPem: lf(forge.pki.certificateToPem(cert)),
    serialNumber: cert.serialNumber.replace(/^(00)+/, ''),
    notAfterMs,
  };
}
