/**
 * JWT authentication (RFC 7519, RFC 7515; bearer tokens per RFC 6750) with `jose`: a provider
 * (config `JwtProvider`) compiled once per config version, and the per-request verification.
 *
 * A token is accepted when its signature verifies with a key of the provider's set under an
 * allowed algorithm, `iss` equals the provider's issuer (when set), `aud` holds one of its
 * audiences (when set), and `exp` is present and in the future, `nbf`/`iat` not in the future,
 * all within the clock skew (default 30 s). The allowlist never holds `none` or an HMAC algorithm
 * (HS256/384/512): asymmetric keys only, so a token "signed" with the public key as an HMAC secret
 * is refused before any key is looked at.
 *
 * Invariants: the token itself never appears in an error, a log line or a header we set.
 */
import { decodeJwt, errors, type JWTPayload, jwtVerify } from 'jose';
import type { JwtProvider } from '../../../sidecar/proxy/config/types.ts';
import { TOKEN } from '../../../sidecar/proxy/router/match.ts';
import { EdgeAuthConfigError } from './config-error.ts';
import { type JwksRegistry, JwksUnavailableError, type KeyResolver, localJwks } from './jwks.ts';
import { type CompiledSource, compileSources } from './sources.ts';

/** The default algorithm allowlist: every asymmetric JWS algorithm jose verifies. */
export const DEFAULT_ALGORITHMS: readonly string[] = Object.freeze([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]);
const ALLOWED = new Set(DEFAULT_ALGORITHMS);

export const DEFAULT_CLOCK_SKEW_MS = 30_000;
export const MAX_CLOCK_SKEW_MS = 300_000;
export const DEFAULT_JWKS_CACHE_MS = 300_000;
export const DEFAULT_JWKS_COOLDOWN_MS = 10_000;
export const DEFAULT_JWKS_TIMEOUT_MS = 5_000;

/** `Authorization: Bearer <token>` (RFC 6750 §2.1). */
const BEARER: CompiledSource = { header: 'authorization', prefix: 'bearer ', queryParam: '', cookie: '' };

export interface CompiledJwtProvider {
  readonly name: string;
  /** Required `iss`, or undefined for any. */
  readonly issuer: string | undefined;
  readonly sources: readonly CompiledSource[];
  /** Claim → lower-case header name, set upstream once the token verified. */
  readonly claimToHeaders: readonly { readonly claim: string; readonly header: string }[];
  /** The remote set's URI ('' for an inline set). */
  readonly jwksUri: string;
  /** Verifies `token`; resolves with its claims or rejects with a `JwtRejection`. */
  verify(token: string): Promise<JWTPayload>;
}

/** Why a token was refused; `description` is safe to send back (never holds the token). */
export class JwtRejection extends Error {
  readonly description: string;
  constructor(description: string) {
    super(description);
    this.name = 'JwtRejection';
    this.description = description;
  }
}

function describe(err: unknown): string {
  if (err instanceof JwksUnavailableError) return 'signing keys unavailable';
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' || err.claim === 'iat') return 'token not yet valid';
    return `invalid "${err.claim}" claim`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (err instanceof errors.JWKSNoMatchingKey) return 'unknown signing key';
  if (err instanceof errors.JWKSMultipleMatchingKeys) return 'ambiguous signing key';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'signature verification failed';
  if (err instanceof errors.JOSENotSupported) return 'unsupported token';
  return 'malformed token';
}

function nonNegative(v: number | undefined, dflt: number, field: string, max = 0xffffffff): number {
  if (v === undefined || v === 0) return dflt;
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new EdgeAuthConfigError(field, `must be an integer in 0..${max} (got ${v})`);
  }
  return v;
}

/**
 * Compiles one provider; `field` names it (`authProviders.jwtProviders[0]`). Remote key sets come
 * from `registry` (shared across config versions; it starts loading a new one).
 * @throws EdgeAuthConfigError for a missing name, neither or both key sources, an invalid URI or
 *   inline set, `none`/HMAC/unknown algorithms, a clock skew over 300000 ms, a bad header name.
 */
export function compileJwtProvider(
  p: JwtProvider,
  field: string,
  registry: JwksRegistry,
): CompiledJwtProvider {
  if (!p.name) throw new EdgeAuthConfigError(`${field}.name`, 'is required');
  const remote = p.remoteJwksUri ?? '';
  const local = p.localJwks ?? '';
  if ((remote === '') === (local === '')) {
    throw new EdgeAuthConfigError(field, 'set exactly one of remoteJwksUri, localJwks');
  }
  const algorithms =
    p.algorithms !== undefined && p.algorithms.length > 0 ? p.algorithms : DEFAULT_ALGORITHMS;
  algorithms.forEach((alg, i) => {
    if (alg === 'none' || alg.startsWith('HS')) {
      throw new EdgeAuthConfigError(
        `${field}.algorithms[${i}]`,
        `${JSON.stringify(alg)} is never allowed (asymmetric algorithms only)`,
      );
    }
    if (!ALLOWED.has(alg)) {
      throw new EdgeAuthConfigError(
        `${field}.algorithms[${i}]`,
        `unknown algorithm ${JSON.stringify(alg)} (known: ${DEFAULT_ALGORITHMS.join(', ')})`,
      );
    }
  });
  const clockSkewMs = nonNegative(
    p.clockSkewMs,
    DEFAULT_CLOCK_SKEW_MS,
    `${field}.clockSkewMs`,
    MAX_CLOCK_SKEW_MS,
  );
  const options = {
    cacheMs: nonNegative(p.jwksCacheMs, DEFAULT_JWKS_CACHE_MS, `${field}.jwksCacheMs`),
    cooldownMs: nonNegative(p.jwksCooldownMs, DEFAULT_JWKS_COOLDOWN_MS, `${field}.jwksCooldownMs`),
    timeoutMs: nonNegative(p.jwksTimeoutMs, DEFAULT_JWKS_TIMEOUT_MS, `${field}.jwksTimeoutMs`),
  };
  let resolver: KeyResolver;
  if (remote !== '') {
    let url: URL;
    try {
      url = new URL(remote);
    } catch {
      throw new EdgeAuthConfigError(
        `${field}.remoteJwksUri`,
        `must be an absolute URI (got ${JSON.stringify(remote)})`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new EdgeAuthConfigError(
        `${field}.remoteJwksUri`,
        `must use http or https (got ${JSON.stringify(remote)})`,
      );
    }
    resolver = registry.use(url.href, options).resolve;
  } else {
    try {
      resolver = localJwks(local);
    } catch (err) {
      throw new EdgeAuthConfigError(
        `${field}.localJwks`,
        `not a JSON Web Key Set: ${(err as Error).message}`,
      );
    }
  }
  const claimToHeaders = (p.claimToHeaders ?? []).map((c, i) => {
    if (!c.claim) throw new EdgeAuthConfigError(`${field}.claimToHeaders[${i}].claim`, 'is required');
    if (!TOKEN.test(c.header ?? '')) {
      throw new EdgeAuthConfigError(
        `${field}.claimToHeaders[${i}].header`,
        `must be a header name (got ${JSON.stringify(c.header)})`,
      );
    }
    return { claim: c.claim, header: c.header.toLowerCase() };
  });
  const verifyOptions = {
    algorithms: [...algorithms],
    clockTolerance: clockSkewMs / 1000,
    requiredClaims: ['exp'],
    ...(p.issuer ? { issuer: p.issuer } : {}),
    ...(p.audiences !== undefined && p.audiences.length > 0 ? { audience: [...p.audiences] } : {}),
  };
  return {
    name: p.name,
    issuer: p.issuer || undefined,
    sources: compileSources(p.sources, `${field}.sources`, BEARER),
    claimToHeaders,
    jwksUri: remote === '' ? '' : new URL(remote).href,
    async verify(token: string): Promise<JWTPayload> {
      try {
        return (await jwtVerify(token, resolver, verifyOptions)).payload;
      } catch (err) {
        throw new JwtRejection(describe(err));
      }
    },
  };
}

/** The unverified `iss` of a token, to pick a provider; undefined when it cannot be read. */
export function unverifiedIssuer(token: string): string | undefined {
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

/** The token's scopes: `scope` (space-separated string, RFC 8693 §4.2) or `scp` (list or string). */
export function scopesOf(claims: JWTPayload): ReadonlySet<string> {
  const out = new Set<string>();
  const scope = claims.scope;
  if (typeof scope === 'string') for (const s of scope.split(' ')) if (s !== '') out.add(s);
  const scp = claims.scp;
  if (Array.isArray(scp)) for (const s of scp) if (typeof s === 'string') out.add(s);
  if (typeof scp === 'string') for (const s of scp.split(' ')) if (s !== '') out.add(s);
  return out;
}

/** A claim as a header value: strings as they are, other values as JSON; undefined when absent. */
export function claimHeaderValue(claims: JWTPayload, claim: string): string | undefined {
  const v = claims[claim];
  if (v === undefined || v === null) return undefined;
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  // A header value must not carry CR/LF/NUL (RFC 9110 §5.5).
  return /[\r\n\0]/.test(s) ? undefined : s;
}
