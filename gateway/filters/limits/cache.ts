/**
 * The edge response cache (`weft.filters.http.cache`): a shared cache per RFC 9111 for the GET and
 * HEAD requests of routes that opt in (`Route.cache`), on GATEWAY listeners.
 *
 * Decisions are http-cache-semantics' (shared-cache mode): whether a response may be stored
 * (status, `Cache-Control` private / no-store, RFC 9111 §3.5 for requests with `Authorization`:
 * only with `public`, `s-maxage` or `must-revalidate`), whether a stored one is fresh and its
 * `Vary` fields match the request (RFC 9111 §4.1), and the headers it is served with (`Age`,
 * RFC 9111 §5.1). A request that asks for revalidation (`no-cache`, `max-age=0`) or finds nothing
 * fresh goes upstream; conditional revalidation is not done (the fresh response replaces the entry).
 * An unsafe request (POST, PUT, DELETE, ...) answered with a non-error status drops the entries of
 * its target (RFC 9111 §4.4; `Location` / `Content-Location` targets are not followed).
 *
 * What is stored: complete 2xx/3xx/4xx GET responses the policy allows whose body, declared or
 * counted, is at most the route's `maxEntryBytes` (default 1 MiB); never a 206, never a response
 * with `Set-Cookie`, never a body cut short (the entry is kept only when the response ended whole).
 * HEAD is answered from a stored GET response. Entries are per route (key: route, host, target).
 * Fields other filters add per request (RateLimit-*) are not stored, and are added to hits. Memory: one `lru-cache` per listener with a byte
 * budget (`Listener.responseCacheMaxBytes`, default 64 MiB; body plus header bytes per entry),
 * least recently used entries evicted first; up to 8 variants (Vary) per URL.
 *
 * Responses carry `x-weft-cache: hit` (from the cache) or `miss` (from upstream).
 */
import CachePolicy from 'http-cache-semantics';
import { LRUCache } from 'lru-cache';
import { CONTINUE, type FilterResult, type HttpFilter } from '../../../sidecar/proxy/filters/filter.ts';
import {
  addResponseTap,
  type RequestContext,
  type ResponseTap,
} from '../../../sidecar/proxy/http/context.ts';
import type { HeaderMap } from '../../../sidecar/proxy/router/types.ts';
import type { EdgeRoutes } from './routes.ts';
import { publishCache } from './telemetry.ts';

export const CACHE_FILTER_NAME = 'weft.filters.http.cache';
export const CACHE_STATUS_HEADER = 'x-weft-cache';
export const DEFAULT_CACHE_MAX_BYTES = 64 * 1024 * 1024;
const MAX_VARIANTS = 8;

interface Entry {
  readonly policy: CachePolicy;
  readonly status: number;
  readonly body: Buffer;
  readonly size: number;
}

function headerBytes(headers: HeaderMap): number {
  let n = 0;
  for (const [k, v] of Object.entries(headers))
    n += k.length + (Array.isArray(v) ? v.join('').length : v.length) + 4;
  return n;
}

/** One listener's store: URL (host + target) → variants, bounded by a byte budget. */
export class ResponseStore {
  readonly maxBytes: number;
  readonly #lru: LRUCache<string, Entry[]>;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
    this.#lru = new LRUCache<string, Entry[]>({
      maxSize: maxBytes,
      sizeCalculation: (variants) =>
        Math.max(
          1,
          variants.reduce((n, e) => n + e.size, 0),
        ),
    });
  }

  /** A fresh variant that satisfies `request` without revalidation, if any. */
  find(key: string, request: CachePolicy.Request): Entry | undefined {
    const variants = this.#lru.get(key);
    if (variants === undefined) return undefined;
    return variants.find((e) => e.policy.satisfiesWithoutRevalidation(request));
  }

  /** Stores `entry`, replacing the variant its request would have been served by. */
  add(key: string, request: CachePolicy.Request, entry: Entry): void {
    const old = this.#lru.get(key) ?? [];
    const kept = old.filter(
      (e) => !e.policy.satisfiesWithoutRevalidation(request) && e.policy.timeToLive() > 0,
    );
    kept.unshift(entry);
    if (kept.length > MAX_VARIANTS) kept.length = MAX_VARIANTS;
    this.#lru.set(key, kept);
  }

  /** Drops every variant stored for `key`. */
  invalidate(key: string): void {
    this.#lru.delete(key);
  }

  /** Bytes held (bodies plus headers). */
  get sizeBytes(): number {
    return this.#lru.calculatedSize;
  }
}

/** Collects one upstream response and stores it when it ended whole within the size cap. */
class StoreTap implements ResponseTap {
  readonly #store: ResponseStore;
  readonly #key: string;
  readonly #request: CachePolicy.Request;
  readonly #maxBytes: number;
  readonly #route: string;
  #policy: CachePolicy | undefined;
  #status = 0;
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(
    store: ResponseStore,
    key: string,
    request: CachePolicy.Request,
    maxBytes: number,
    route: string,
  ) {
    this.#store = store;
    this.#key = key;
    this.#request = request;
    this.#maxBytes = maxBytes;
    this.#route = route;
  }

  /** Runs first among the taps: what is stored is the upstream's head, without per-request fields. */
  head(status: number, headers: HeaderMap): void {
    const stored = { ...headers };
    headers[CACHE_STATUS_HEADER] = 'miss';
    if (this.#request.method !== 'GET' || status === 206 || headers['set-cookie'] !== undefined) return;
    const declared = headers['content-length'];
    if (typeof declared === 'string' && Number(declared) > this.#maxBytes) return;
    const policy = new CachePolicy(this.#request, { status, headers: stored }, { shared: true });
    if (!policy.storable() || policy.timeToLive() <= 0) return;
    this.#policy = policy;
    this.#status = status;
  }

  data(chunk: Buffer): void {
    if (this.#policy === undefined) return;
    this.#size += chunk.length;
    if (this.#size > this.#maxBytes) {
      this.#policy = undefined;
      this.#chunks = [];
      return;
    }
    this.#chunks.push(chunk);
  }

  end(): void {
    const policy = this.#policy;
    if (policy === undefined) return;
    const body = Buffer.concat(this.#chunks, this.#size);
    const size = body.length + headerBytes(policy.responseHeaders() as HeaderMap) + this.#key.length;
    if (size > this.#store.maxBytes) return;
    this.#store.add(this.#key, this.#request, { policy, status: this.#status, body, size });
    publishCache(this.#route, 'stored');
  }
}

/** Invalidates the target's entries when an unsafe request succeeds (RFC 9111 §4.4). */
class InvalidateTap implements ResponseTap {
  readonly #store: ResponseStore;
  readonly #key: string;
  constructor(store: ResponseStore, key: string) {
    this.#store = store;
    this.#key = key;
  }
  head(status: number): void {
    if (status < 400) this.#store.invalidate(this.#key);
  }
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** The cache filter of one GATEWAY listener for one config version. */
export class CacheFilter implements HttpFilter {
  readonly name = CACHE_FILTER_NAME;
  readonly #routes: EdgeRoutes;
  readonly #store: ResponseStore;

  constructor(routes: EdgeRoutes, store: ResponseStore) {
    this.#routes = routes;
    this.#store = store;
  }

  onRequest(ctx: RequestContext): FilterResult {
    const method = ctx.req.method ?? 'GET';
    const cacheable = method === 'GET' || method === 'HEAD';
    if (!cacheable && SAFE.has(method)) return CONTINUE;
    const route = this.#routes.lookup(ctx);
    const maxEntryBytes = route?.cacheMaxEntryBytes;
    if (route === undefined || maxEntryBytes === undefined) return CONTINUE;
    const url = ctx.req.url ?? '/';
    const key = `${route.name}\0${ctx.routeRequest?.host ?? ''}\0${url}`;
    if (!cacheable) {
      addResponseTap(ctx, new InvalidateTap(this.#store, key));
      return CONTINUE;
    }
    // Lookups compare as GET: a HEAD is served from the stored GET response (RFC 9110 §9.3.2).
    const request: CachePolicy.Request = { url, method: 'GET', headers: ctx.req.headers };
    const entry = this.#store.find(key, request);
    if (entry !== undefined) {
      publishCache(route.name, 'hit');
      const headers = entry.policy.responseHeaders() as Record<string, string | string[]>;
      headers[CACHE_STATUS_HEADER] = 'hit';
      // Other filters' response fields (e.g. RateLimit-*) are per request: they see hits too.
      const taps = ctx.responseTaps;
      if (taps !== undefined) for (const tap of taps) tap.head(entry.status, headers);
      return { kind: 'respond', status: entry.status, headers, body: entry.body };
    }
    publishCache(route.name, 'miss');
    const tap = new StoreTap(
      this.#store,
      key,
      { url, method, headers: ctx.req.headers },
      maxEntryBytes,
      route.name,
    );
    if (ctx.responseTaps === undefined) ctx.responseTaps = [tap];
    else ctx.responseTaps.unshift(tap); // before the others: it stores the upstream head as it came
    return CONTINUE;
  }
}
