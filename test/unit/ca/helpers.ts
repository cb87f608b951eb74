/**
 * Helpers for the CA tests: CSRs (also ones asking for names they must not get), operator CA
 * chains made with forge, a settable clock, and `openssl verify` (the real binary, a verifier
 * no one here wrote).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { generateRsaKeyPair, type KeyPairPem, randomSerialHex } from '../../../control-plane/ca/pki.ts';
import { buildCsr } from '../../../sidecar/agent/identity.ts';

/** A key pair and a CSR for it (subject and SANs as given: the CA must ignore them). */
export async function csrFor(
  options: { commonName?: string; uriSans?: readonly string[]; dnsSans?: readonly string[] } = {},
): Promise<{ pair: KeyPairPem; csrPem: string }> {
  const pair = await generateRsaKeyPair();
  if (options.commonName === undefined && options.uriSans === undefined && options.dnsSans === undefined) {
    return { pair, csrPem: buildCsr(pair.privateKeyPem, pair.publicKeyPem) };
  }
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(pair.publicKeyPem);
  csr.setSubject([{ name: 'commonName', value: options.commonName ?? 'x' }]);
  const altNames = [
    ...(options.uriSans ?? []).map((value) => ({ type: 6, value })),
    ...(options.dnsSans ?? []).map((value) => ({ type: 2, value })),
  ];
  if (altNames.length > 0) {
    csr.setAttributes([{ name: 'extensionRequest', extensions: [{ name: 'subjectAltName', altNames }] }]);
  }
  csr.sign(
    forge.pki.privateKeyFromPem(pair.privateKeyPem) as forge.pki.rsa.PrivateKey,
    forge.md.sha256.create(),
  );
  return { pair, csrPem: forge.pki.certificationRequestToPem(csr) };
}

interface MadeCa {
  readonly certPem: string;
  readonly keyPem: string;
}

async function makeCert(
  subjectCn: string,
  issuer: MadeCa | undefined,
  options: { ca: boolean; days?: number },
): Promise<MadeCa> {
  const pair = await generateRsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(pair.publicKeyPem);
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + (options.days ?? 365) * 86_400_000);
  const subject = [
    { name: 'organizationName', value: 'Operator' },
    { name: 'commonName', value: subjectCn },
  ];
  cert.setSubject(subject);
  const issuerCert = issuer && forge.pki.certificateFromPem(issuer.certPem);
  cert.setIssuer(issuerCert ? issuerCert.subject.attributes : subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: options.ca, critical: true },
    {
      name: 'keyUsage',
      keyCertSign: options.ca,
      cRLSign: options.ca,
      digitalSignature: !options.ca,
      critical: true,
    },
    { name: 'subjectKeyIdentifier' },
  ]);
  const signKey = issuer ? issuer.keyPem : pair.privateKeyPem;
  cert.sign(forge.pki.privateKeyFromPem(signKey) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: pair.privateKeyPem };
}

/** An operator PKI: a root and an intermediate signed by it (both RSA). */
export async function operatorChain(): Promise<{ root: MadeCa; intermediate: MadeCa }> {
  const root = await makeCert('Operator Root', undefined, { ca: true });
  const intermediate = await makeCert('Operator Intermediate', root, { ca: true });
  return { root, intermediate };
}

/** A self-signed root that is not the mesh's, and a leaf it issued (not a CA). */
export async function foreignCa(): Promise<{ root: MadeCa; leaf: MadeCa }> {
  const root = await makeCert('Foreign Root', undefined, { ca: true });
  const leaf = await makeCert('foreign-leaf', root, { ca: false });
  return { root, leaf };
}

/** A clock tests move by hand. */
export class Clock {
  ms: number;
  constructor(ms = Date.now()) {
    this.ms = ms;
  }
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

/**
 * Runs `openssl verify -CAfile <roots> [-untrusted <intermediates>] <leaf>`; resolves with its
 * exit code and output (0 and `<file>: OK` when the chain verifies).
 */
export async function opensslVerify(
  rootsPem: string,
  leafPem: string,
  intermediatesPem = '',
): Promise<{ code: number; output: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-openssl-'));
  try {
    await writeFile(join(dir, 'roots.pem'), rootsPem);
    await writeFile(join(dir, 'leaf.pem'), leafPem);
    const args = ['verify', '-CAfile', join(dir, 'roots.pem')];
    if (intermediatesPem !== '') {
      await writeFile(join(dir, 'inter.pem'), intermediatesPem);
      args.push('-untrusted', join(dir, 'inter.pem'));
    }
    args.push(join(dir, 'leaf.pem'));
    return await new Promise((resolve) => {
      execFile('openssl', args, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, output: `${stdout}${stderr}` });
      });
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The PEM blocks of a chain, in order. */
export function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}
