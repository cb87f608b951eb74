/**
 * Virtual host selection by request host (Gateway API hostname semantics, Envoy virtual hosts).
 *
 * Domains are exact names (`svc-b`, `api.example.com`), a leading wildcard (`*.example.com`,
 * which matches one or more labels before the suffix but not `example.com` itself) or `*` (any
 * host). Exact beats wildcard, the longest wildcard suffix beats shorter ones, `*` comes last.
 * Selection is exclusive: once a virtual host is chosen, the request never falls back to another.
 *
 * Invariants: domains are stored lower-case; each domain belongs to at most one virtual host;
 * the request host is already lower-case and has no port (the caller strips it).
 */
import { type ConfigLocation, invalid } from './config-error.ts';

/** One domain to index, with the field it came from for error messages. */
export interface DomainEntry<T> {
  readonly domain: string;
  readonly value: T;
  readonly where: ConfigLocation;
  readonly field: string;
}

interface WildcardEntry<T> {
  /** The suffix including its leading dot, e.g. `.example.com`. */
  readonly suffix: string;
  readonly value: T;
}

/** Precomputed host lookup: a Map for exact names, a list of wildcards longest first, then `*`. */
export class HostIndex<T> {
  readonly #exact: ReadonlyMap<string, T>;
  readonly #wildcards: readonly WildcardEntry<T>[];
  readonly #any: T | undefined;

  constructor(exact: ReadonlyMap<string, T>, wildcards: readonly WildcardEntry<T>[], any: T | undefined) {
    this.#exact = exact;
    this.#wildcards = wildcards;
    this.#any = any;
  }

  /** The value for `host` (lower-case, no port), or `undefined` when no domain matches. */
  select(host: string): T | undefined {
    const exact = this.#exact.get(host);
    if (exact !== undefined) return exact;
    const wildcards = this.#wildcards;
    for (let i = 0; i < wildcards.length; i++) {
      const w = wildcards[i]!;
      if (host.length > w.suffix.length && host.endsWith(w.suffix)) return w.value;
    }
    return this.#any;
  }
}

// A label of letters, digits, '-' and '_' (service names sometimes carry '_'); IP literals and
// bracketed IPv6 are allowed as exact names.
const EXACT_HOST =
  /^(?:[a-z0-9_](?:[-a-z0-9_]*[a-z0-9_])?)(?:\.[a-z0-9_](?:[-a-z0-9_]*[a-z0-9_])?)*$|^\[[0-9a-f:.]+\]$/;

/**
 * Builds the index. Domains are lower-cased; `[]` is not special here (the caller decides what an
 * empty domain list means).
 * @throws RouteConfigError for an empty or malformed domain (a `*` anywhere but a whole leading
 *   label, a port) or a domain listed twice, naming both places.
 */
export function buildHostIndex<T>(entries: readonly DomainEntry<T>[]): HostIndex<T> {
  const exact = new Map<string, T>();
  const wildcards: WildcardEntry<T>[] = [];
  let any: T | undefined;
  const seen = new Map<string, DomainEntry<T>>();

  for (const entry of entries) {
    const domain = entry.domain.toLowerCase();
    const previous = seen.get(domain);
    if (previous !== undefined) {
      const first = previous.where.virtualHost ?? '?';
      invalid(entry.where, entry.field, `domain "${domain}" is already served by virtual host "${first}"`);
    }
    seen.set(domain, entry);

    if (domain === '*') {
      any = entry.value;
    } else if (domain.startsWith('*.')) {
      const suffix = domain.slice(1);
      if (!EXACT_HOST.test(suffix.slice(1))) {
        invalid(entry.where, entry.field, `invalid wildcard domain "${entry.domain}"`);
      }
      wildcards.push({ suffix, value: entry.value });
    } else {
      if (!EXACT_HOST.test(domain)) {
        const hint = domain.includes('*')
          ? ' (a wildcard must be a whole leading label: "*.example.com")'
          : '';
        invalid(entry.where, entry.field, `invalid domain "${entry.domain}"${hint}`);
      }
      exact.set(domain, entry.value);
    }
  }

  // Longest suffix first; equal lengths cannot both match one host unless equal (rejected above).
  wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
  return new HostIndex(exact, wildcards, any);
}
