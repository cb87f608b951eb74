/**
 * Identity routes of the admin API (the mesh CA and join tokens):
 *
 *   POST   /v1/tokens        body JSON TokenCreateRequest → CreatedToken (the secret, shown once)
 *   GET    /v1/tokens        → TokenList (never a secret)
 *   DELETE /v1/tokens/<id>   → TokenInfo, now revoked (404 unknown id)
 *   GET    /v1/ca            → CaStatus (issuing CA, roots, retirements)
 *   GET    /v1/ca/bundle     → TrustBundle { trustDomain, rootsPem }
 *   POST   /v1/ca/rotate     body JSON { overlap?: "24h", propagation?: "30s" } → CaStatus
 *                               (409 for an operator CA or a rotation already pending)
 *
 * Durations are GEP-2257 strings (`30m`, `24h`). Like every admin route, these need the admin
 * bearer token. Without a CA (control plane started without `--tls`) every one of them answers
 * 503 saying so.
 */
import {
  CaRefusedError,
  type CaStatus,
  CaUnavailableError,
  type CertificateAuthority,
} from '../ca/authority.ts';
import type { TrustBundle } from '../ca/bundle.ts';
import {
  type CreatedToken,
  type JoinTokens,
  type TokenInfo,
  TokenNotFoundError,
  TokenRequestError,
} from '../ca/tokens.ts';
import { parseDurationMs } from '../resources/duration.ts';
import { ApiError, readText } from './http.ts';
import type { Route } from './router.ts';

export interface CaRouteDeps {
  readonly ca: CertificateAuthority;
  readonly tokens: JoinTokens;
}

/** `POST /v1/tokens` body. */
export interface TokenCreateRequest {
  readonly service: string;
  readonly namespace?: string;
  /** Default: the service. */
  readonly serviceAccount?: string;
  /** GEP-2257 duration, default `24h`. */
  readonly ttl?: string;
}

/** `POST /v1/ca/rotate` body. */
export interface RotateRequest {
  /** How long the old root stays in the bundle after the switch, GEP-2257 (default: the certificate TTL). */
  readonly overlap?: string;
  /** Time between adding the new root to the bundle and issuing from it, GEP-2257 (default 30s). */
  readonly propagation?: string;
}

/** `GET /v1/tokens`. */
export interface TokenList {
  readonly items: readonly TokenInfo[];
}

export type { CaStatus, CreatedToken, TokenInfo, TrustBundle };

/** The body as a JSON object (empty body → `{}`); 400 otherwise. */
async function jsonBody(req: Parameters<Route['handler']>[0]['req']): Promise<Record<string, unknown>> {
  const text = await readText(req);
  if (text.trim() === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(400, 'the body must be a JSON object');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError(400, 'the body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const v = body[field];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new ApiError(400, `${field}: must be a string`);
  return v;
}

function durationField(body: Record<string, unknown>, field: string): number | undefined {
  const v = optionalString(body, field);
  if (v === undefined) return undefined;
  try {
    return parseDurationMs(v);
  } catch (err) {
    throw new ApiError(400, `${field}: ${(err as Error).message}`);
  }
}

const CA_OFF = 'the mesh CA is off: the control plane was started with --no-tls';

/** The identity routes over `deps`; without deps (no CA) each answers 503. */
export function caRoutes(deps: CaRouteDeps | undefined): Route[] {
  const need = (): CaRouteDeps => {
    if (deps === undefined) throw new ApiError(503, CA_OFF);
    return deps;
  };
  return [
    {
      method: 'POST',
      pattern: /^\/v1\/tokens$/,
      async handler({ req }): Promise<CreatedToken> {
        const { tokens } = need();
        const body = await jsonBody(req);
        const service = optionalString(body, 'service');
        if (service === undefined) throw new ApiError(400, 'service: required');
        const namespace = optionalString(body, 'namespace');
        const serviceAccount = optionalString(body, 'serviceAccount');
        const ttlMs = durationField(body, 'ttl');
        try {
          return await tokens.create({
            service,
            ...(namespace !== undefined && { namespace }),
            ...(serviceAccount !== undefined && { serviceAccount }),
            ...(ttlMs !== undefined && { ttlMs }),
          });
        } catch (err) {
          if (err instanceof TokenRequestError) throw new ApiError(400, err.message);
          throw err;
        }
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/tokens$/,
      async handler(): Promise<TokenList> {
        return { items: await need().tokens.list() };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/v1\/tokens\/([^/]+)$/,
      async handler({ params: [id = ''] }): Promise<TokenInfo> {
        try {
          return await need().tokens.revoke(id);
        } catch (err) {
          if (err instanceof TokenNotFoundError) throw new ApiError(404, err.message);
          throw err;
        }
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/ca$/,
      async handler(): Promise<CaStatus> {
        try {
          return need().ca.status();
        } catch (err) {
          if (err instanceof CaUnavailableError) throw new ApiError(503, err.message);
          throw err;
        }
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/ca\/bundle$/,
      async handler(): Promise<TrustBundle> {
        return need().ca.bundle();
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/ca\/rotate$/,
      async handler({ req }): Promise<CaStatus> {
        const { ca } = need();
        const body = await jsonBody(req);
        const overlapMs = durationField(body, 'overlap');
        const propagationMs = durationField(body, 'propagation');
        try {
          return await ca.rotate(overlapMs, propagationMs);
        } catch (err) {
          if (err instanceof CaRefusedError) throw new ApiError(409, err.message);
          if (err instanceof CaUnavailableError) throw new ApiError(503, err.message);
          throw err;
        }
      },
    },
  ];
}
