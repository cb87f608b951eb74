/**
 * JSON Web Key Sets (RFC 7517) for JWT verification: inline (`LocalJwks`) or fetched from a URI
 * (`RemoteJwks`). Key selection by `kid`/`alg`/`use` is jose's `createLocalJWKSet`; HMAC keys are
 * never selected from a set (jose refuses secret algorithms there).
 *
 * Remote key sets, the rules:
 * - the first request waits for the first fetch; later requests never wait for a refresh of keys
 *   they already have: after `cacheMs` the set is refreshed in the background;
 * - a token whose `kid` matches no key triggers one refetch, at most once per `cooldownMs`
 *   (so a flood of made-up `kid`s costs one fetch per cooldown); requests that meet a refetch in
 *   flight wait for it (single flight);
 * - a failed fetch (network, status ≠ 200, not a key set) keeps the last good keys and is retried
 *   no sooner than `cooldownMs` later: the JWKS endpoint going down does not fail requests.
 * Sets are shared across config versions by URI (`JwksRegistry`), so a reload keeps its keys.
 */
import type { webcrypto } from 'node:crypto';
import {
  createLocalJWKSet,
  errors,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
} from 'jose';

/** What jwtVerify accepts as a key resolver. */
export type KeyResolver = (
  header: JWSHeaderParameters,
  token: FlattenedJWSInput,
) => Promise<webcrypto.CryptoKey>;

type LocalSet = ReturnType<typeof createLocalJWKSet>;

export interface RemoteJwksOptions {
  /** Age after which keys are refreshed in the background (ms). */
  readonly cacheMs: number;
  /** Minimum time between refetches for an unknown kid, and after a failed fetch (ms). */
  readonly cooldownMs: number;
  /** One fetch (ms). */
  readonly timeoutMs: number;
}

/** Thrown when a remote set has never been fetched successfully (the token cannot be checked). */
export class JwksUnavailableError extends Error {
  constructor(uri: string, cause?: unknown) {
    super(`JWKS ${uri} unavailable`, { cause });
    this.name = 'JwksUnavailableError';
  }
}

function noop(): void {}

/** A key set given inline (config `localJwks`). */
export function localJwks(json: string): KeyResolver {
  const set = createLocalJWKSet(JSON.parse(json) as JSONWebKeySet);
  return (header, token) => set(header, token);
}

/** A remote key set: see the module comment for its caching rules. */
export class RemoteJwks {
  readonly uri: string;
  #options: RemoteJwksOptions;
  #set: LocalSet | undefined;
  /** performance-independent wall clock of the last successful fetch, and of the last attempt. */
  #fetchedAtMs = 0;
  #attemptedAtMs = Number.NEGATIVE_INFINITY;
  #kidRefetchAtMs = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | undefined;
  #lastError: unknown;
  /** Bound once: what `jwtVerify` calls. */
  readonly resolve: KeyResolver = (header, token) => this.#resolve(header, token);

  constructor(uri: string, options: RemoteJwksOptions) {
    this.uri = uri;
    this.#options = options;
  }

  /** New options from a new config version (the keys are kept). */
  setOptions(options: RemoteJwksOptions): void {
    this.#options = options;
  }

  /** Whether a set has been fetched at least once. */
  get loaded(): boolean {
    return this.#set !== undefined;
  }

  /** Starts a fetch unless one is in flight; never rejects. */
  prefetch(): void {
    this.#refresh().catch(noop);
  }

  async #resolve(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<webcrypto.CryptoKey> {
    const now = Date.now();
    if (this.#set === undefined) {
      if (this.#inflight === undefined && now - this.#attemptedAtMs < this.#options.cooldownMs) {
        throw new JwksUnavailableError(this.uri, this.#lastError);
      }
      await this.#refresh().catch(noop);
      if (this.#set === undefined) throw new JwksUnavailableError(this.uri, this.#lastError);
    } else if (
      now - this.#fetchedAtMs >= this.#options.cacheMs &&
      now - this.#attemptedAtMs >= this.#options.cooldownMs
    ) {
      this.prefetch(); // stale: refresh in the background, answer with the keys we have
    }
    const set = this.#set as LocalSet;
    try {
      return await set(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      if (this.#inflight !== undefined) {
        await this.#inflight.catch(noop);
      } else if (now - this.#kidRefetchAtMs >= this.#options.cooldownMs) {
        this.#kidRefetchAtMs = now;
        await this.#refresh().catch(noop);
      } else {
        throw err;
      }
      return (this.#set as LocalSet)(header, token);
    }
  }

  /** One fetch at a time; on success the new set replaces the old, on failure the old stays. */
  #refresh(): Promise<void> {
    if (this.#inflight !== undefined) return this.#inflight;
    this.#attemptedAtMs = Date.now();
    const run = this.#fetch().then(
      (set) => {
        this.#set = set;
        this.#fetchedAtMs = Date.now();
        this.#lastError = undefined;
      },
      (err: unknown) => {
        this.#lastError = err;
        throw err;
      },
    );
    const inflight = run.finally(() => {
      if (this.#inflight === inflight) this.#inflight = undefined;
    });
    this.#inflight = inflight;
    return inflight;
  }

  async #fetch(): Promise<LocalSet> {
    const res = await fetch(this.uri, {
      redirect: 'manual',
      headers: { accept: 'application/jwk-set+json, application/json' },
      signal: AbortSignal.timeout(this.#options.timeoutMs),
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`JWKS ${this.uri} answered ${res.status}`);
    }
    return createLocalJWKSet((await res.json()) as JSONWebKeySet);
  }
}

/**
 * Remote key sets shared across config versions, one per URI: `use` returns the set for a URI
 * (made on first use), `retain` drops the sets no longer named by the config in force.
 */
export class JwksRegistry {
  readonly #sets = new Map<string, RemoteJwks>();
  readonly #prefetch: boolean;

  /** `prefetch` (default true): a new set starts loading when first named, before any request. */
  constructor(options: { readonly prefetch?: boolean } = {}) {
    this.#prefetch = options.prefetch ?? true;
  }

  use(uri: string, options: RemoteJwksOptions): RemoteJwks {
    let set = this.#sets.get(uri);
    if (set === undefined) {
      set = new RemoteJwks(uri, options);
      this.#sets.set(uri, set);
      if (this.#prefetch) set.prefetch();
    } else {
      set.setOptions(options);
    }
    return set;
  }

  /** Keeps only the sets for `uris`. */
  retain(uris: ReadonlySet<string>): void {
    for (const uri of this.#sets.keys()) if (!uris.has(uri)) this.#sets.delete(uri);
  }
}
