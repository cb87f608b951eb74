/**
 * The proxy's workload identity and the TLS material built from it, shared by the downstream
 * listeners (http/tls.ts) and the upstream connector (upstream/tls.ts).
 *
 * - `WorkloadIdentity` is what the local identity client hands the proxy core (certificate chain,
 *   private key, the CA's trust bundle, the SPIFFE ID and its expiry). The private key never
 *   leaves the process; nothing here writes it anywhere.
 * - `buildTlsMaterial` turns an identity plus the config's trust bundle into one immutable
 *   `TlsMaterial`: the PEMs and a `tls.SecureContext` (certificate chain + key + CA = the union of
 *   both bundles, TLS 1.3 only). The proxy swaps the whole object atomically; a connection reads
 *   the material once, when it is made.
 * - Peer checks follow the SPIFFE X.509-SVID spec: a leaf SVID carries exactly one URI SAN, a
 *   well-formed `spiffe://<trust-domain>/<path>` ID (SPIFFE-ID §2), and is not a CA
 *   (X509-SVID §4.1); the ID's trust domain must be ours. Chain validation against the bundle
 *   (RFC 5280 §6) is Node's/OpenSSL's job and happens before these checks.
 *
 * Spec: RFC 8446 (TLS 1.3), RFC 5280 (X.509 path validation), SPIFFE ID and X.509-SVID.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { TrustBundle } from './config/types.ts';

/** The proxy's own certificate as the identity client (or `--cert/--key`) provides it. */
export interface WorkloadIdentity {
  /** Leaf first, then intermediates (PEM). */
  readonly certChainPem: string;
  /** The leaf's private key (PEM, PKCS#8 or PKCS#1/SEC1). */
  readonly keyPem: string;
  /** Every root a peer may chain to, as the CA sent them (PEM each). */
  readonly trustBundlePem: readonly string[];
  /** The leaf's SPIFFE ID, e.g. `spiffe://cluster.local/ns/default/sa/api`. */
  readonly spiffeId: string;
  /** The leaf's notAfter, ms since epoch. */
  readonly expiresAtMs: number;
  readonly trustDomain: string;
}

/** Everything a TLS connection needs, built once per identity or trust-bundle change. */
export interface TlsMaterial {
  /** Bumped with every new certificate (not for a trust-bundle-only change). */
  readonly generation: number;
  readonly spiffeId: string;
  /** Peers must present IDs in this trust domain. */
  readonly trustDomain: string;
  /** Our leaf's notAfter (ms since epoch): no connection made with it may outlive it. */
  readonly expiresAtMs: number;
  readonly certChainPem: string;
  readonly keyPem: string;
  /** The roots peers are verified against (deduplicated union of both bundles). */
  readonly caPem: readonly string[];
  /** Client and server context: chain + key + CA, TLS 1.3 only. */
  readonly secureContext: SecureContext;
}

/** Where listeners and connectors read the current material (undefined before any identity). */
export interface TlsSource {
  readonly material: TlsMaterial | undefined;
}

/** Mesh traffic is TLS 1.3 only (RFC 8446): both ends are Weft proxies or modern clients. */
export const MIN_TLS_VERSION = 'TLSv1.3';

/**
 * `weft:tls:handshake` — one message per mTLS handshake, either side:
 * `{side: 'downstream' | 'upstream', ok: boolean, reason?: string}`. Metrics count them.
 */
export const tlsHandshake = diagnostics.channel('weft:tls:handshake');

/** A message on `weft:tls:handshake`. */
export interface TlsHandshakeEvent {
  readonly side: 'downstream' | 'upstream';
  readonly ok: boolean;
  /** Why a handshake failed ('' when it succeeded). */
  readonly reason: string;
}

/** Publishes a handshake outcome (a single `hasSubscribers` check when nobody listens). */
export function publishHandshake(side: TlsHandshakeEvent['side'], ok: boolean, reason = ''): void {
  if (tlsHandshake.hasSubscribers) tlsHandshake.publish({ side, ok, reason } satisfies TlsHandshakeEvent);
}

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;
const MAX_SPIFFE_ID_BYTES = 2048;

/** A parsed SPIFFE ID. */
export interface SpiffeId {
  readonly trustDomain: string;
  /** `/ns/default/sa/api` (may be '' for a trust domain's own ID). */
  readonly path: string;
}

/**
 * Parses `spiffe://<trust-domain><path>` per the SPIFFE ID spec (§2): lower-case scheme and trust
 * domain of `[a-z0-9._-]`, path segments of `[A-Za-z0-9._-]` other than `.` and `..`, no query,
 * fragment, port or user info, at most 2048 bytes. Returns undefined when `value` is not one.
 */
export function parseSpiffeId(value: string): SpiffeId | undefined {
  if (!value.startsWith('spiffe://') || Buffer.byteLength(value) > MAX_SPIFFE_ID_BYTES) return undefined;
  const rest = value.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (trustDomain === '' || !TRUST_DOMAIN.test(trustDomain)) return undefined;
  if (path !== '') {
    for (const segment of path.slice(1).split('/')) {
      if (!PATH_SEGMENT.test(segment) || segment === '.' || segment === '..') return undefined;
    }
  }
  return { trustDomain, path };
}

/** Why a peer certificate is not an acceptable SVID. */
export class PeerIdentityError extends Error {
  readonly code = 'ERR_WEFT_PEER_IDENTITY';
  constructor(message: string) {
    super(message);
    this.name = 'PeerIdentityError';
  }
}

/**
 * The SPIFFE ID of a leaf SVID from its subjectAltName text as Node renders it
 * (`X509Certificate.subjectAltName`, `PeerCertificate.subjectaltname`: `DNS:a, URI:spiffe://…`).
 * Throws `PeerIdentityError` unless there is exactly one URI SAN, it is a SPIFFE ID in
 * `trustDomain`, and the certificate is not a CA.
 */
export function svidSpiffeId(subjectAltName: string | undefined, isCa: boolean, trustDomain: string): string {
  if (isCa) throw new PeerIdentityError('the peer certificate is a CA certificate, not a leaf SVID');
  const uris = (subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice('URI:'.length));
  if (uris.length !== 1) {
    throw new PeerIdentityError(`the peer certificate has ${uris.length} URI SANs; an SVID has exactly one`);
  }
  const id = uris[0] as string;
  const parsed = parseSpiffeId(id);
  if (parsed === undefined) throw new PeerIdentityError(`the peer's URI SAN ${id} is not a SPIFFE ID`);
  if (parsed.trustDomain !== trustDomain) {
    throw new PeerIdentityError(`the peer's SPIFFE ID ${id} is not in trust domain ${trustDomain}`);
  }
  return id;
}

/** Every PEM certificate block in `pem`, normalised (one trailing newline). */
export function splitPemCertificates(pem: string): string[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (block) => `${block}\n`,
  );
}

/**
 * A `WorkloadIdentity` from PEM files (static mode: `weft sidecar --cert --key`): the SPIFFE ID,
 * trust domain and expiry come from the leaf. Throws an `Error` naming the problem when the chain
 * does not parse, the key does not match the leaf, or the leaf has no valid SPIFFE ID.
 */
export function identityFromPem(
  certChainPem: string,
  keyPem: string,
  trustBundlePem: readonly string[] = [],
): WorkloadIdentity {
  const leafPem = splitPemCertificates(certChainPem)[0];
  if (leafPem === undefined) throw new Error('the certificate file holds no PEM certificate');
  const leaf = new X509Certificate(leafPem);
  const uris = (leaf.subjectAltName ?? '')
    .split(', ')
    .filter((e) => e.startsWith('URI:'))
    .map((e) => e.slice(4));
  const parsed = uris.length === 1 ? parseSpiffeId(uris[0] as string) : undefined;
  if (parsed === undefined) {
    throw new Error(
      `the certificate is not an SVID: it needs exactly one spiffe:// URI SAN (has ${uris.length})`,
    );
  }
  checkKeyMatches(leaf, keyPem);
  return {
    certChainPem,
    keyPem,
    trustBundlePem,
    spiffeId: uris[0] as string,
    expiresAtMs: Date.parse(leaf.validTo),
    trustDomain: parsed.trustDomain,
  };
}

function checkKeyMatches(leaf: X509Certificate, keyPem: string): void {
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(keyPem));
  } catch (err) {
    throw new Error(`the private key does not parse: ${(err as Error).message}`, { cause: err });
  }
  if (!matches) throw new Error('the private key does not match the certificate');
}

/**
 * Builds the material for `identity` with the config's `bundle` (either may hold roots; the CA
 * set is their union, deduplicated). With no root at all every peer is refused (fail closed: the
 * CA list is always explicit, so Node's public root store is never used). The trust domain is the
 * config bundle's when it names one, else the identity's. Throws an `Error` naming the problem (a
 * root that does not parse, a key that does not match) — and then nothing changes for the caller.
 */
export function buildTlsMaterial(
  identity: WorkloadIdentity,
  bundle: TrustBundle | undefined,
  generation: number,
): TlsMaterial {
  const leafPem = splitPemCertificates(identity.certChainPem)[0];
  if (leafPem === undefined) throw new Error('identity: the certificate chain holds no PEM certificate');
  checkKeyMatches(new X509Certificate(leafPem), identity.keyPem);
  const seen = new Set<string>();
  const caPem: string[] = [];
  for (const pem of [...identity.trustBundlePem, ...(bundle?.rootsPem ?? [])]) {
    for (const cert of splitPemCertificates(pem)) {
      const key = cert.replace(/\s+/g, '');
      if (seen.has(key)) continue;
      seen.add(key);
      try {
        new X509Certificate(cert);
      } catch (err) {
        throw new Error(`trust bundle: a root does not parse: ${(err as Error).message}`, { cause: err });
      }
      caPem.push(cert);
    }
  }
  const trustDomain = bundle?.trustDomain || identity.trustDomain;
  const secureContext = createSecureContext({
    cert: identity.certChainPem,
    key: identity.keyPem,
    ca: caPem,
    minVersion: MIN_TLS_VERSION,
  });
  return {
    generation,
    spiffeId: identity.spiffeId,
    trustDomain,
    expiresAtMs: identity.expiresAtMs,
    certChainPem: identity.certChainPem,
    keyPem: identity.keyPem,
    caPem,
    secureContext,
  };
}
