/**
 * Test PKI: certificate authorities and SPIFFE X.509-SVID leaves for mTLS tests. Keys come from
 * Node's crypto (RSA-2048, PKCS#8 PEM); certificates are built and signed with node-forge (SHA-256).
 *
 * A CA is a self-signed root (basicConstraints cA, keyCertSign). A leaf has basicConstraints
 * cA=false, digitalSignature + keyEncipherment, serverAuth + clientAuth, and as subjectAltName its
 * SPIFFE ID (URI) plus, for servers reached by curl, IP 127.0.0.1 — the shape of an X.509-SVID
 * (SPIFFE X.509-SVID §4, §5). Nothing here verifies anything: that is Node's TLS job under test.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import forge from 'node-forge';

/** A PEM certificate with its PEM private key. */
export interface CertKey {
  readonly certPem: string;
  readonly keyPem: string;
}

/** A leaf SVID. */
export interface Leaf extends CertKey {
  /** The URI SAN, e.g. `spiffe://test.local/ns/default/sa/api` ('' when none was asked for). */
  readonly spiffeId: string;
}

export interface LeafOptions {
  /** URI SANs; default one: the SPIFFE ID. Several or none make a non-SVID for negative tests. */
  readonly uris?: readonly string[];
  /** IP SANs (default `['127.0.0.1']`, so curl can verify the server by address). */
  readonly ips?: readonly string[];
  /** Validity end (default: in 24 h); start is one minute ago. */
  readonly notAfter?: Date;
  /** Make it a CA certificate (negative tests: an SVID must not be one). */
  readonly isCa?: boolean;
}

export interface TestCa extends CertKey {
  readonly name: string;
  /** Issues a leaf for `spiffeId` (see `LeafOptions`). */
  leaf(spiffeId: string, options?: LeafOptions): Leaf;
}

function rsaKeyPair(): { publicPem: string; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicPem: publicKey, privatePem: privateKey };
}

/** A positive serial number (RFC 5280 §4.1.2.2): 16 random bytes with the top bit clear. */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f;
  return bytes.toString('hex');
}

function baseCertificate(publicPem: string, notAfter: Date): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = notAfter;
  return cert;
}

const DAY_MS = 86_400_000;

/** A self-signed root CA named `name`, valid for 10 days. */
export function createCa(name: string): TestCa {
  const { publicPem, privatePem } = rsaKeyPair();
  const caKey = forge.pki.privateKeyFromPem(privatePem);
  const ca = baseCertificate(publicPem, new Date(Date.now() + 10 * DAY_MS));
  const subject = [
    { name: 'commonName', value: name },
    { name: 'organizationName', value: 'Weft tests' },
  ];
  ca.setSubject(subject);
  ca.setIssuer(subject);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(caKey, forge.md.sha256.create());
  const caSki = (ca.generateSubjectKeyIdentifier() as forge.util.ByteStringBuffer).getBytes();

  const leaf = (spiffeId: string, options: LeafOptions = {}): Leaf => {
    const keys = rsaKeyPair();
    const cert = baseCertificate(keys.publicPem, options.notAfter ?? new Date(Date.now() + DAY_MS));
    cert.setSubject([
      { name: 'commonName', value: spiffeId.split('/').at(-1) || 'leaf' },
      { name: 'organizationName', value: 'Weft tests' },
    ]);
    cert.setIssuer(subject);
    const uris = options.uris ?? [spiffeId];
    const ips = options.ips ?? ['127.0.0.1'];
    cert.setExtensions([
      { name: 'basicConstraints', cA: options.isCa === true, critical: true },
      {
        name: 'keyUsage',
        digitalSignature: true,
        keyEncipherment: true,
        keyCertSign: options.isCa === true,
        critical: true,
      },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      {
        name: 'subjectAltName',
        altNames: [...uris.map((value) => ({ type: 6, value })), ...ips.map((ip) => ({ type: 7, ip }))],
      },
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: caSki },
    ]);
    cert.sign(caKey, forge.md.sha256.create());
    return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.privatePem, spiffeId: uris[0] ?? '' };
  };

  return { name, certPem: forge.pki.certificateToPem(ca), keyPem: privatePem, leaf };
}

/** Writes `<dir>/<name>.pem` (certificate) and `<dir>/<name>.key`; returns both paths. */
export async function writeCertKey(
  dir: string,
  name: string,
  pair: CertKey,
): Promise<{ cert: string; key: string }> {
  await mkdir(dir, { recursive: true });
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  await writeFile(cert, pair.certPem);
  await writeFile(key, pair.keyPem, { mode: 0o600 });
  return { cert, key };
}

/** `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>` */
export function spiffeIdOf(trustDomain: string, serviceAccount: string, namespace = 'default'): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
