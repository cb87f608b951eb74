/**
 * API-key authentication: keys per client, stored only as SHA-256 digests (config `ApiKeySet`).
 *
 * A presented key is hashed once (SHA-256; the keys Weft makes carry 256 random bits, so a fast
 * hash is the standard choice), the digest is looked up, and the stored digest is compared with
 * `crypto.timingSafeEqual`. A client may hold several keys at once (rotation with overlap), each
 * with its own `expiresAt` and scopes. Every use is published on `weft:apikey` (client id, key id,
 * result: never the key) for the per-key usage metric.
 *
 * Invariants: the key never appears in an error, a log line, a metric or a header we set.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKeySet } from '../../../sidecar/proxy/config/types.ts';
import { publishApiKeyUse } from '../../../sidecar/proxy/telemetry/channels.ts';
import { EdgeAuthConfigError } from './config-error.ts';
import { type CompiledSource, compileSources } from './sources.ts';

/** The key's owner and rights once a key matched. */
export interface ApiKeyIdentity {
  readonly clientId: string;
  readonly plan: string;
  readonly keyId: string;
  readonly scopes: ReadonlySet<string>;
}

interface KeyEntry extends ApiKeyIdentity {
  readonly digest: Buffer;
  /** Epoch ms after which the key is refused; Infinity when it never expires. */
  readonly expiresAtMs: number;
}

export type ApiKeyCheck =
  | { readonly ok: true; readonly identity: ApiKeyIdentity }
  | { readonly ok: false; readonly reason: 'unknown key' | 'expired key' };

export interface CompiledApiKeySet {
  readonly name: string;
  readonly sources: readonly CompiledSource[];
  /** Checks a presented key at `nowMs` and publishes the use. */
  check(key: string, nowMs: number): ApiKeyCheck;
}

/** `x-api-key` (the common default). */
const X_API_KEY: CompiledSource = { header: 'x-api-key', prefix: '', queryParam: '', cookie: '' };
const SHA256_HEX = /^[0-9a-f]{64}$/;
const UNKNOWN: ApiKeyCheck = Object.freeze({ ok: false, reason: 'unknown key' });
const EXPIRED: ApiKeyCheck = Object.freeze({ ok: false, reason: 'expired key' });

/** Lower-case hex SHA-256 of a key: what the config stores. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * Compiles one key set; `field` names it (`authProviders.apiKeySets[0]`).
 * @throws EdgeAuthConfigError for a missing name or id, a digest that is not 64 hex digits, the
 *   same digest twice, an `expiresAt` that is not an RFC 3339 time, or duplicate client/key ids.
 */
export function compileApiKeySet(set: ApiKeySet, field: string): CompiledApiKeySet {
  if (!set.name) throw new EdgeAuthConfigError(`${field}.name`, 'is required');
  const byDigest = new Map<string, KeyEntry>();
  const clientIds = new Set<string>();
  (set.clients ?? []).forEach((client, i) => {
    const at = `${field}.clients[${i}]`;
    if (!client.id) throw new EdgeAuthConfigError(`${at}.id`, 'is required');
    if (clientIds.has(client.id)) throw new EdgeAuthConfigError(`${at}.id`, `duplicate client ${client.id}`);
    clientIds.add(client.id);
    const keyIds = new Set<string>();
    (client.keys ?? []).forEach((key, j) => {
      const kat = `${at}.keys[${j}]`;
      if (!key.id) throw new EdgeAuthConfigError(`${kat}.id`, 'is required');
      if (keyIds.has(key.id)) throw new EdgeAuthConfigError(`${kat}.id`, `duplicate key id ${key.id}`);
      keyIds.add(key.id);
      const hex = (key.sha256 ?? '').toLowerCase();
      if (!SHA256_HEX.test(hex)) {
        throw new EdgeAuthConfigError(`${kat}.sha256`, 'must be the SHA-256 of the key as 64 hex digits');
      }
      if (byDigest.has(hex)) throw new EdgeAuthConfigError(`${kat}.sha256`, 'the same key is listed twice');
      let expiresAtMs = Number.POSITIVE_INFINITY;
      if (key.expiresAt) {
        expiresAtMs = Date.parse(key.expiresAt);
        if (Number.isNaN(expiresAtMs) || !/^\d{4}-\d{2}-\d{2}T/.test(key.expiresAt)) {
          throw new EdgeAuthConfigError(
            `${kat}.expiresAt`,
            `must be an RFC 3339 time such as 2030-01-31T00:00:00Z (got ${JSON.stringify(key.expiresAt)})`,
          );
        }
      }
      byDigest.set(hex, {
        clientId: client.id,
        plan: client.plan ?? '',
        keyId: key.id,
        scopes: new Set(key.scopes ?? []),
        digest: Buffer.from(hex, 'hex'),
        expiresAtMs,
      });
    });
  });
  const name = set.name;
  return {
    name,
    sources: compileSources(set.sources, `${field}.sources`, X_API_KEY),
    check(key: string, nowMs: number): ApiKeyCheck {
      const digest = createHash('sha256').update(key, 'utf8').digest();
      const entry = byDigest.get(digest.toString('hex'));
      if (entry === undefined || !timingSafeEqual(digest, entry.digest)) {
        publishApiKeyUse(name, '', '', 'unknown');
        return UNKNOWN;
      }
      if (nowMs >= entry.expiresAtMs) {
        publishApiKeyUse(name, entry.clientId, entry.keyId, 'expired');
        return EXPIRED;
      }
      publishApiKeyUse(name, entry.clientId, entry.keyId, 'ok');
      return { ok: true, identity: entry };
    },
  };
}
