/**
 * PKI building blocks of the mesh CA: RSA key pairs (Node's crypto, native and fast), self-signed
 * root CAs (node-forge builds and signs the X.509), PEM handling, fingerprints, and certificate
 * path checks with Node's `X509Certificate` (forge only issues; Node verifies).
 *
 * Invariants: every key is RSA-2048 (node-forge signs with RSA only), private keys are PKCS#8
 * PEM; a root is a v3 certificate with basicConstraints cA=TRUE (critical), keyUsage
 * keyCertSign+cRLSign (critical), a subjectKeyIdentifier, a random positive 128-bit serial and
 * SHA-256 with RSA signatures; subjects of generated roots are unique per millisecond.
 *
 * Spec: RFC 5280 (§4.1.2.2 serial numbers, §4.2.1.2/4.2.1.3 key identifiers and usage,
 * §4.2.1.9 basic constraints, §6 path validation — `verifyPath` checks signatures, names,
 * validity and CA flags, not policies or name constraints).
 */
import { createHash, createPrivateKey, generateKeyPair, randomBytes, X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { signCertificate } from './native-sign.ts';

/** An RSA key pair in PEM: PKCS#8 private key, SPKI public key. */
export interface KeyPairPem {
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
}

/** RSA modulus size of every key Weft generates, bits. */
export const RSA_BITS = 2048;
/** Validity of a generated root, milliseconds (10 years). */
export const ROOT_VALIDITY_MS = 10 * 365 * 24 * 3600 * 1000;
/** Certificates are backdated by this much against clock skew, milliseconds. */
export const BACKDATE_MS = 60_000;

/** Generates an RSA-2048 key pair off the event loop's critical path (libuv thread pool). */
export function generateRsaKeyPair(): Promise<KeyPairPem> {
  return new Promise((resolve, reject) => {
    generateKeyPair(
      'rsa',
      {
        modulusLength: RSA_BITS,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      },
      (err, publicKeyPem, privateKeyPem) => {
        if (err) reject(err);
        else resolve({ privateKeyPem, publicKeyPem });
      },
    );
  });
}

/**
 * A random certificate serial number as forge wants it (hex of the DER INTEGER content): 128
 * random bits, positive and minimally encoded (a leading 00 octet when the top bit is set).
 */
export function randomSerialHex(): string {
  for (;;) {
    const bytes = randomBytes(16);
    if (bytes[0] === 0) continue; // would need a non-minimal encoding or lose bits; draw again
    const hex = bytes.toString('hex');
    return bytes[0]! >= 0x80 ? `00${hex}` : hex;
  }
}

/** Every PEM `CERTIFICATE` block in `text`, normalized (LF line ends, one block per entry, trailing newline). */
export function splitPem(text: string): string[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => `${b.trim().replace(/\r\n/g, '\n')}\n`);
}

/** forge writes PEM with CRLF line ends; Weft keeps PEM with LF. */
export function lf(pem: string): string {
  return pem.replace(/\r\n/g, '\n');
}

/** SHA-256 fingerprint of a PEM certificate's DER, lower-case hex without colons. */
export function fingerprint(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
}

/** True when `cert` is self-issued and its signature verifies with its own key. */
export function isSelfSigned(cert: X509Certificate): boolean {
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

/** A CA certificate and key forge can sign with. */
export interface ForgeSigner {
  readonly cert: forge.pki.Certificate;
  readonly key: forge.pki.rsa.PrivateKey;
}

/**
 * Parses a CA certificate and its PKCS#8 (or PKCS#1) RSA private key for signing with forge.
 * @throws Error when either does not parse or the key is not RSA.
 */
export function forgeSigner(certPem: string, keyPem: string): ForgeSigner {
  return {
    cert: forge.pki.certificateFromPem(certPem),
    key: forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey,
  };
}

/** The subjectKeyIdentifier of a forge certificate as hex, or undefined when it has none. */
export function subjectKeyIdOf(cert: forge.pki.Certificate): string | undefined {
  const ext = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
  return ext?.subjectKeyIdentifier;
}

/** A freshly generated root CA. */
export interface GeneratedRoot {
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * Creates a self-signed root CA: CN `Weft Root CA <ISO time>`, O `Weft`, valid from
 * `nowMs − BACKDATE_MS` for `validityMs` (default 10 years).
 */
export async function createRootCa(
  nowMs: number,
  validityMs: number = ROOT_VALIDITY_MS,
): Promise<GeneratedRoot> {
  const pair = await generateRsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(pair.publicKeyPem);
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = new Date(nowMs - BACKDATE_MS);
  cert.validity.notAfter = new Date(nowMs + validityMs);
  const name = [
    { name: 'organizationName', value: 'Weft' },
    { name: 'commonName', value: `Weft Root CA ${new Date(nowMs).toISOString()}` },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  signCertificate(cert, pair.privateKeyPem); // OpenSSL's RSA, not forge's (native-sign.ts)
  return { certPem: lf(forge.pki.certificateToPem(cert)), keyPem: pair.privateKeyPem };
}

/** Thrown by `verifyPath` when a certificate does not chain to a trusted root. */
export class PathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PathError';
  }
}

function validAt(cert: X509Certificate, nowMs: number): boolean {
  return cert.validFromDate.getTime() <= nowMs && nowMs < cert.validToDate.getTime();
}

/**
 * Checks that `leaf` is valid at `nowMs` and chains, through CA certificates among
 * `intermediates`, to one of `roots` (each link: issuer name, signature, issuer is a CA valid at
 * `nowMs`). Returns the root reached. Path length is capped at 8.
 * @throws PathError naming the first failure (expired, not yet valid, unknown issuer).
 */
export function verifyPath(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  nowMs: number,
): X509Certificate {
  if (nowMs >= leaf.validToDate.getTime()) {
    throw new PathError(`certificate expired at ${leaf.validToDate.toISOString()}`);
  }
  if (nowMs < leaf.validFromDate.getTime()) {
    throw new PathError(`certificate not valid before ${leaf.validFromDate.toISOString()}`);
  }
  const issues = (child: X509Certificate, parent: X509Certificate): boolean =>
    parent.ca && validAt(parent, nowMs) && child.checkIssued(parent) && child.verify(parent.publicKey);
  let current = leaf;
  for (let depth = 0; depth < 8; depth++) {
    const root = roots.find((r) => issues(current, r));
    if (root !== undefined) return root;
    const next = intermediates.find((i) => i !== current && issues(current, i));
    if (next === undefined) break;
    current = next;
  }
  throw new PathError('certificate does not chain to a root of the trust bundle');
}

/** An operator-provided CA, checked and normalized. */
export interface ProvidedCaMaterial {
  /** The issuing CA certificate (a root, or an intermediate). */
  readonly certPem: string;
  /** Its private key, PKCS#8 PEM. */
  readonly keyPem: string;
  /** Intermediates above `certPem`, nearest first, excluding the root; empty when `certPem` is the root. */
  readonly chainPem: readonly string[];
  /** The self-signed root `certPem` chains to (`certPem` itself for a root). */
  readonly rootPem: string;
}

/**
 * Checks an operator-provided CA: `certPem` must be a CA certificate whose key is `keyPem` (RSA:
 * forge signs with RSA only); when it is not self-signed, `chainText` must hold its issuers up to
 * and including a self-signed root, each link verified.
 * @throws Error naming what is wrong.
 */
export function checkProvidedCa(
  certPem: string,
  keyPem: string,
  chainText = '',
  nowMs = Date.now(),
): ProvidedCaMaterial {
  const [first] = splitPem(certPem);
  if (first === undefined) throw new Error('the CA certificate file holds no PEM CERTIFICATE');
  const cert = new X509Certificate(first);
  if (!cert.ca) throw new Error('the CA certificate is not a CA (basicConstraints cA is not TRUE)');
  if (!validAt(cert, nowMs)) {
    throw new Error(`the CA certificate is not valid now (${cert.validFrom} .. ${cert.validTo})`);
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new Error(`the CA key does not parse (PEM, unencrypted): ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new Error(`the CA key is ${key.asymmetricKeyType}; Weft's CA signs with RSA keys only`);
  }
  if (!cert.checkPrivateKey(key)) throw new Error('the CA key does not match the CA certificate');
  const pkcs8 = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  if (isSelfSigned(cert)) return { certPem: first, keyPem: pkcs8, chainPem: [], rootPem: first };

  const chain = splitPem(chainText).map((pem) => ({ pem, x: new X509Certificate(pem) }));
  if (chain.length === 0) {
    throw new Error('the CA certificate is an intermediate: pass --ca-chain with its issuers up to the root');
  }
  const intermediates: string[] = [];
  let current = cert;
  for (let depth = 0; depth < 8; depth++) {
    const parent = chain.find(
      ({ x }) => x !== current && current.checkIssued(x) && current.verify(x.publicKey),
    );
    if (parent === undefined) {
      throw new Error(`the CA chain has no issuer for ${current.subject.replace(/\n/g, ', ')}`);
    }
    if (!parent.x.ca) throw new Error(`${parent.x.subject.replace(/\n/g, ', ')} in the CA chain is not a CA`);
    if (isSelfSigned(parent.x))
      return { certPem: first, keyPem: pkcs8, chainPem: intermediates, rootPem: parent.pem };
    intermediates.push(parent.pem);
    current = parent.x;
  }
  throw new Error('the CA chain does not end in a self-signed root within 8 certificates');
}

/** What `describeCert` tells about a certificate (admin API and CLI). */
export interface CertSummary {
  readonly subject: string;
  readonly serialNumber: string;
  /** SHA-256 of the DER, hex. */
  readonly fingerprintSha256: string;
  /** RFC 3339. */
  readonly notBefore: string;
  readonly notAfter: string;
}

/** A summary of a PEM certificate. */
export function describeCert(certPem: string): CertSummary {
  const x = new X509Certificate(certPem);
  return {
    subject: x.subject.replace(/\n/g, ', '),
    serialNumber: x.serialNumber.toLowerCase(),
    fingerprintSha256: createHash('sha256').update(x.raw).digest('hex'),
    notBefore: x.validFromDate.toISOString(),
    notAfter: x.validToDate.toISOString(),
  };
}
