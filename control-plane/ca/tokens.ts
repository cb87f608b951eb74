/**
 * Join tokens: how a workload proves who it is the first time it asks for a certificate.
 *
 * A token reads `<id>.<secret>`: `id` is 16 hex characters (8 random bytes), `secret` 32 random
 * bytes in base64url. It is shown once, when created; the store keeps only the SHA-256 of the
 * secret, under `/weft/system/tokens/<id>`, with its binding (namespace, service account), expiry
 * and revocation. A token is reusable until it expires (a restarting sidecar needs it again)
 * unless revoked.
 *
 * Invariants: authentication compares secret hashes in constant time (`timingSafeEqual`) and a
 * wrong secret reads as an unknown token (no oracle for which ids exist); a revoked or expired
 * token never authenticates; a token's binding never changes after creation.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isDnsLabel, isDnsSubdomain } from '../resources/names.ts';
import { TOKENS, tokenKey } from '../store/keys.ts';
import { type Store, TxnConflictError } from '../store/types.ts';
import type { WorkloadIdentity } from './spiffe.ts';

/** Default token lifetime, milliseconds (24 h). */
export const DEFAULT_TOKEN_TTL_MS = 24 * 3600 * 1000;
/** Longest token lifetime, milliseconds (1 year). */
export const MAX_TOKEN_TTL_MS = 365 * 24 * 3600 * 1000;

/** A token as stored (never the secret). */
export interface TokenRecord {
  readonly id: string;
  /** The service the token was made for (informational; the binding is namespace + account). */
  readonly service: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readonly revoked: boolean;
  readonly revokedAtMs?: number;
  /** SHA-256 of the secret, hex. */
  readonly secretSha256: string;
}

export type TokenState = 'active' | 'expired' | 'revoked';

/** A token as listed (admin API, CLI). Times are RFC 3339. */
export interface TokenInfo {
  readonly id: string;
  readonly service: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly revokedAt?: string;
  readonly state: TokenState;
}

/** A new token: `token` is shown once and cannot be recovered. */
export interface CreatedToken {
  readonly token: string;
  readonly info: TokenInfo;
}

/** What a token is created for. */
export interface TokenRequest {
  readonly service: string;
  /** Default `default`. */
  readonly namespace?: string;
  /** Default: the service name. */
  readonly serviceAccount?: string;
  /** Lifetime, milliseconds (default 24 h, at most 1 year). */
  readonly ttlMs?: number;
}

/** Why a token was refused. */
export type TokenFailure = 'malformed' | 'unknown' | 'expired' | 'revoked';

/** A token that does not authenticate; `message` says why, without revealing the secret. */
export class TokenError extends Error {
  readonly reason: TokenFailure;
  constructor(reason: TokenFailure, message: string) {
    super(message);
    this.name = 'TokenError';
    this.reason = reason;
  }
}

/** Invalid input to `create` (names, TTL); `message` names the field. */
export class TokenRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenRequestError';
  }
}

/** `revoke` of an id that does not exist. */
export class TokenNotFoundError extends Error {
  constructor(id: string) {
    super(`join token ${id} not found`);
    this.name = 'TokenNotFoundError';
  }
}

const TOKEN = /^([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;
const ID = /^[0-9a-f]{16}$/;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export class JoinTokens {
  readonly #store: Store;
  readonly #now: () => number;

  /** `now`: clock, ms since the epoch (default Date.now). */
  constructor(store: Store, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
  }

  /**
   * Mints a token bound to `namespace`/`serviceAccount` (defaults `default` / the service).
   * @throws TokenRequestError for a bad name or TTL.
   */
  async create(request: TokenRequest): Promise<CreatedToken> {
    const service = request.service ?? '';
    const namespace = request.namespace || 'default';
    const serviceAccount = request.serviceAccount || service;
    const ttlMs = request.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
    if (!isDnsSubdomain(service)) throw new TokenRequestError('service: must be a DNS-1123 subdomain');
    if (!isDnsLabel(namespace)) throw new TokenRequestError('namespace: must be a DNS-1123 label');
    if (!isDnsSubdomain(serviceAccount)) {
      throw new TokenRequestError('serviceAccount: must be a DNS-1123 subdomain');
    }
    if (!Number.isInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TOKEN_TTL_MS) {
      throw new TokenRequestError('ttl: must be positive and at most 1 year');
    }
    for (;;) {
      const id = randomBytes(8).toString('hex');
      const secret = randomBytes(32).toString('base64url');
      const now = this.#now();
      const record: TokenRecord = {
        id,
        service,
        namespace,
        serviceAccount,
        createdAtMs: now,
        expiresAtMs: now + ttlMs,
        revoked: false,
        secretSha256: sha256(secret).toString('hex'),
      };
      try {
        await this.#store.txn(
          [{ op: 'put', key: tokenKey(id), value: JSON.stringify(record) }],
          [{ key: tokenKey(id), modRevision: 0 }],
        );
      } catch (err) {
        if (err instanceof TxnConflictError) continue; // an id collision: draw again
        throw err;
      }
      return { token: `${id}.${secret}`, info: this.#info(record) };
    }
  }

  /** Every token (never a secret), oldest first. */
  async list(): Promise<TokenInfo[]> {
    const { items } = await this.#store.list(TOKENS);
    return items
      .map((kv) => parseRecord(kv.value))
      .filter((r): r is TokenRecord => r !== undefined)
      .sort((a, b) => a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : 1))
      .map((r) => this.#info(r));
  }

  /**
   * Revokes token `id` (idempotent: an already revoked token stays revoked at its first time).
   * @throws TokenNotFoundError when there is no such token.
   */
  async revoke(id: string): Promise<TokenInfo> {
    for (;;) {
      const kv = ID.test(id) ? await this.#store.get(tokenKey(id)) : undefined;
      const record = kv && parseRecord(kv.value);
      if (kv === undefined || record === undefined) throw new TokenNotFoundError(id);
      if (record.revoked) return this.#info(record);
      const revoked: TokenRecord = { ...record, revoked: true, revokedAtMs: this.#now() };
      try {
        await this.#store.txn(
          [{ op: 'put', key: kv.key, value: JSON.stringify(revoked) }],
          [{ key: kv.key, modRevision: kv.modRevision }],
        );
        return this.#info(revoked);
      } catch (err) {
        if (!(err instanceof TxnConflictError)) throw err;
      }
    }
  }

  /**
   * The identity `token` is bound to, with the token's id.
   * @throws TokenError: `malformed` (not `<id>.<secret>`), `unknown` (no such id, or a wrong
   * secret), `revoked`, `expired`.
   */
  async authenticate(token: string): Promise<WorkloadIdentity & { readonly tokenId: string }> {
    const m = TOKEN.exec(token.trim());
    if (m === null) throw new TokenError('malformed', 'malformed join token (expected <id>.<secret>)');
    const [, id, secret] = m as unknown as [string, string, string];
    const kv = await this.#store.get(tokenKey(id));
    const record = kv && parseRecord(kv.value);
    const expected = record && Buffer.from(record.secretSha256, 'hex');
    const given = sha256(secret);
    if (record === undefined || expected?.length !== given.length || !timingSafeEqual(expected, given)) {
      throw new TokenError('unknown', 'unknown join token');
    }
    if (record.revoked) throw new TokenError('revoked', `join token ${id} has been revoked`);
    if (this.#now() >= record.expiresAtMs) {
      throw new TokenError(
        'expired',
        `join token ${id} expired at ${new Date(record.expiresAtMs).toISOString()}`,
      );
    }
    return { namespace: record.namespace, serviceAccount: record.serviceAccount, tokenId: id };
  }

  #info(r: TokenRecord): TokenInfo {
    const state: TokenState = r.revoked ? 'revoked' : this.#now() >= r.expiresAtMs ? 'expired' : 'active';
    return {
      id: r.id,
      service: r.service,
      namespace: r.namespace,
      serviceAccount: r.serviceAccount,
      createdAt: new Date(r.createdAtMs).toISOString(),
      expiresAt: new Date(r.expiresAtMs).toISOString(),
      ...(r.revokedAtMs !== undefined && { revokedAt: new Date(r.revokedAtMs).toISOString() }),
      state,
    };
  }
}

function parseRecord(value: string): TokenRecord | undefined {
  try {
    const r = JSON.parse(value) as Partial<TokenRecord>;
    if (
      typeof r.id !== 'string' ||
      typeof r.namespace !== 'string' ||
      typeof r.serviceAccount !== 'string' ||
      typeof r.expiresAtMs !== 'number' ||
      typeof r.secretSha256 !== 'string'
    ) {
      return undefined;
    }
    return r as TokenRecord;
  } catch {
    return undefined;
  }
}
