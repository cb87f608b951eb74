/**
 * SPIFFE IDs of Weft workloads: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
 *
 * Invariants: `formatSpiffeId` only produces IDs that `parseSpiffeId` accepts; a parsed ID is
 * always in Weft's two-pair form (other SPIFFE paths are refused, not guessed at).
 *
 * Spec: SPIFFE ID (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md): scheme
 * `spiffe`, a trust domain of lower-case letters, digits, `.`, `-` and `_`, a path of non-empty
 * segments of letters, digits, `.`, `-` and `_` (not `.` or `..`), no query, fragment, port or
 * user info, at most 2048 bytes.
 */

/** The authenticated identity of a workload, the input of every SPIFFE ID Weft issues. */
export interface WorkloadIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** A parsed Weft SPIFFE ID. */
export interface SpiffeId extends WorkloadIdentity {
  readonly trustDomain: string;
  /** The whole ID, `spiffe://<td>/ns/<ns>/sa/<sa>`. */
  readonly id: string;
  /** The path, `/ns/<ns>/sa/<sa>`. */
  readonly path: string;
}

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const MAX_ID_BYTES = 2048;

/** Thrown for a string that is not a Weft SPIFFE ID, or names that cannot form one. */
export class SpiffeIdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpiffeIdError';
  }
}

function checkSegment(value: string, what: string): void {
  if (!SEGMENT.test(value) || value === '.' || value === '..') {
    throw new SpiffeIdError(
      `${what} ${JSON.stringify(value)} cannot be a SPIFFE path segment (letters, digits, '.', '-', '_')`,
    );
  }
}

/** True when `td` is a valid SPIFFE trust domain name. */
export function isTrustDomain(td: string): boolean {
  return td.length > 0 && td.length <= 255 && TRUST_DOMAIN.test(td);
}

/**
 * The SPIFFE ID of `identity` in `trustDomain`.
 * @throws SpiffeIdError when the trust domain or a name is not valid in a SPIFFE ID.
 */
export function formatSpiffeId(trustDomain: string, identity: WorkloadIdentity): string {
  if (!isTrustDomain(trustDomain)) {
    throw new SpiffeIdError(`${JSON.stringify(trustDomain)} is not a SPIFFE trust domain`);
  }
  checkSegment(identity.namespace, 'namespace');
  checkSegment(identity.serviceAccount, 'service account');
  const id = `spiffe://${trustDomain}/ns/${identity.namespace}/sa/${identity.serviceAccount}`;
  if (Buffer.byteLength(id) > MAX_ID_BYTES)
    throw new SpiffeIdError(`SPIFFE ID longer than ${MAX_ID_BYTES} bytes`);
  return id;
}

/**
 * Parses a Weft SPIFFE ID (`spiffe://<td>/ns/<ns>/sa/<sa>`).
 * @throws SpiffeIdError naming what is wrong.
 */
export function parseSpiffeId(id: string): SpiffeId {
  const prefix = 'spiffe://';
  if (!id.startsWith(prefix)) throw new SpiffeIdError(`${JSON.stringify(id)} is not a spiffe:// URI`);
  if (Buffer.byteLength(id) > MAX_ID_BYTES)
    throw new SpiffeIdError(`SPIFFE ID longer than ${MAX_ID_BYTES} bytes`);
  const rest = id.slice(prefix.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  if (!isTrustDomain(trustDomain)) {
    throw new SpiffeIdError(
      `${JSON.stringify(id)}: ${JSON.stringify(trustDomain)} is not a SPIFFE trust domain`,
    );
  }
  const path = slash < 0 ? '' : rest.slice(slash);
  const parts = path.split('/').slice(1);
  if (parts.length !== 4 || parts[0] !== 'ns' || parts[2] !== 'sa') {
    throw new SpiffeIdError(
      `${JSON.stringify(id)} is not of the form spiffe://<td>/ns/<namespace>/sa/<account>`,
    );
  }
  const namespace = parts[1]!;
  const serviceAccount = parts[3]!;
  checkSegment(namespace, 'namespace');
  checkSegment(serviceAccount, 'service account');
  return { trustDomain, namespace, serviceAccount, id, path };
}

/**
 * The single `URI:` subject alternative name of a certificate whose `subjectAltName` is given in
 * Node's `X509Certificate.subjectAltName` form (`DNS:a, URI:spiffe://…, IP Address:…`), or
 * undefined when there is none. @throws SpiffeIdError when there are several URI SANs (an
 * X.509-SVID has exactly one).
 */
export function uriSanOf(subjectAltName: string | undefined): string | undefined {
  if (subjectAltName === undefined) return undefined;
  const uris = subjectAltName
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice('URI:'.length).replace(/^"|"$/g, ''));
  if (uris.length > 1) throw new SpiffeIdError('the certificate has more than one URI SAN');
  return uris[0];
}
