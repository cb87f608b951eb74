/**
 * Compiled HTTPRouteMatch conditions and the per-request scan (Gateway API v1 HTTPRoute).
 *
 * Inside one match, path, headers, query parameters and method are ANDed. Path types:
 * - EXACT: string equality with the path as received.
 * - PATH_PREFIX: element-wise; `/abc` (or `/abc/`, a trailing slash is ignored) matches `/abc`,
 *   `/abc/` and `/abc/def` but not `/abcd`; `/` matches every path.
 * - REGULAR_EXPRESSION: ECMAScript regex, anchored to the whole path.
 * Headers: names case-insensitive, EXACT or anchored REGULAR_EXPRESSION on the value as Node
 * joined it (repeated fields joined with ", "). Query parameters: names case-sensitive, values
 * form-decoded, the first occurrence wins. Only the first entry for a given header (or query
 * parameter) name counts; later duplicates are ignored, as the spec requires.
 *
 * Hot path: no closures, no regex compiled per request; the query string is parsed at most once
 * per request and only when a candidate that reached its query conditions needs it.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { RouteMatch as RouteMatchConfig } from '../config/types.ts';
import { type ConfigLocation, compileAnchoredRegex, invalid } from './config-error.ts';
import type { RouteRequest } from './types.ts';

export const PathKind = { Exact: 0, Regex: 1, Prefix: 2 } as const;
export type PathKind = (typeof PathKind)[keyof typeof PathKind];

/** A compiled header or query-parameter condition: exactly one of `exact` / `regex` is set. */
export interface ValueMatch {
  readonly name: string;
  readonly exact: string | undefined;
  readonly regex: RegExp | undefined;
}

/** One compiled HTTPRouteMatch. */
export interface CompiledMatch {
  readonly pathKind: PathKind;
  /** Exact: the path. Prefix: the prefix without its trailing slash (`''` for `/`). Regex: the source. */
  readonly path: string;
  readonly pathRegex: RegExp | undefined;
  /** The configured path value's length in characters (precedence: longest prefix first). */
  readonly pathLength: number;
  readonly method: string | undefined;
  readonly headers: readonly ValueMatch[];
  readonly queryParams: readonly ValueMatch[];
}

/** RFC 9110 §5.6.2 token: header names and methods. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

// Gateway API HTTPPathMatch value rules (CEL on Exact and PathPrefix values).
const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$/;
const FORBIDDEN_PATH_PARTS = ['//', '/./', '/../', '%2f', '%2F', '#'] as const;

/**
 * Checks an Exact / PathPrefix value or a rewrite path the way Gateway API's CEL rules do.
 * @throws RouteConfigError when the value does not start with `/`, has characters outside a URL
 *   path, or contains `//`, `/./`, `/../`, `%2f` or `#`, or ends with `/.` or `/..`.
 */
export function checkPathValue(value: string, where: ConfigLocation, field: string): void {
  if (!value.startsWith('/')) invalid(where, field, `path "${value}" must start with "/"`);
  if (!PATH_CHARS.test(value)) {
    invalid(where, field, `path "${value}" has characters not allowed in a URL path`);
  }
  for (const part of FORBIDDEN_PATH_PARTS) {
    if (value.includes(part)) invalid(where, field, `path "${value}" must not contain "${part}"`);
  }
  if (value.endsWith('/..') || value.endsWith('/.')) {
    invalid(where, field, `path "${value}" must not end with a dot segment`);
  }
}

/** A PathPrefix value without its trailing slash; `/` becomes `''` (matches every path). */
export function normalizePrefix(prefix: string): string {
  return prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
}

/** Element-wise prefix test; `prefix` is normalised (see `normalizePrefix`). */
export function prefixMatches(prefix: string, path: string): boolean {
  if (prefix.length === 0) return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path.charCodeAt(prefix.length) === 47; /* '/' */
}

function compileValueMatches(
  entries: readonly { readonly name: string; readonly type?: string; readonly value: string }[],
  kind: 'headers' | 'queryParams',
  where: ConfigLocation,
  field: string,
): ValueMatch[] {
  const out: ValueMatch[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const at = `${field}.${kind}[${i}]`;
    if (typeof entry.name !== 'string' || entry.name.length === 0) {
      invalid(where, `${at}.name`, 'is required');
    }
    if (kind === 'headers' && !TOKEN.test(entry.name)) {
      invalid(where, `${at}.name`, `"${entry.name}" is not a valid header name`);
    }
    const name = kind === 'headers' ? entry.name.toLowerCase() : entry.name;
    const value = typeof entry.value === 'string' ? entry.value : '';
    const type = entry.type ?? 'MATCH_TYPE_UNSPECIFIED';
    let match: ValueMatch;
    if (type === 'EXACT' || type === 'MATCH_TYPE_UNSPECIFIED') {
      match = { name, exact: value, regex: undefined };
    } else if (type === 'REGULAR_EXPRESSION') {
      match = { name, exact: undefined, regex: compileAnchoredRegex(value, where, `${at}.value`) };
    } else {
      invalid(where, `${at}.type`, `${type} is not supported here (use EXACT or REGULAR_EXPRESSION)`);
    }
    // Gateway API: only the first entry with an equivalent name is considered.
    if (seen.has(name)) continue;
    seen.add(name);
    out.push(match);
  }
  return out;
}

/**
 * Compiles one RouteMatch (absent or `{}` means PathPrefix `/`). `field` is its location, e.g.
 * `matches[0]`.
 * @throws RouteConfigError for a bad path value or type, a bad regex, a header name that is not a
 *   token, a query parameter without a name, or a method that is not a token.
 */
export function compileMatch(cfg: RouteMatchConfig, where: ConfigLocation, field: string): CompiledMatch {
  const pathType = cfg.path?.type ?? 'MATCH_TYPE_UNSPECIFIED';
  const pathValue = cfg.path?.value || '/';
  let pathKind: PathKind;
  let path: string;
  let pathRegex: RegExp | undefined;
  if (pathType === 'EXACT') {
    checkPathValue(pathValue, where, `${field}.path.value`);
    pathKind = PathKind.Exact;
    path = pathValue;
  } else if (pathType === 'PATH_PREFIX' || pathType === 'MATCH_TYPE_UNSPECIFIED') {
    checkPathValue(pathValue, where, `${field}.path.value`);
    pathKind = PathKind.Prefix;
    path = normalizePrefix(pathValue);
  } else if (pathType === 'REGULAR_EXPRESSION') {
    pathKind = PathKind.Regex;
    path = pathValue;
    pathRegex = compileAnchoredRegex(pathValue, where, `${field}.path.value`);
  } else {
    return invalid(where, `${field}.path.type`, `unknown path match type ${String(pathType)}`);
  }

  const method = cfg.method || undefined;
  if (method !== undefined && !TOKEN.test(method)) {
    invalid(where, `${field}.method`, `"${method}" is not a valid method`);
  }

  return {
    pathKind,
    path,
    pathRegex,
    pathLength: pathValue.length,
    method,
    headers: compileValueMatches(cfg.headers ?? [], 'headers', where, field),
    queryParams: compileValueMatches(cfg.queryParams ?? [], 'queryParams', where, field),
  };
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.join(', ');
  return undefined;
}

function valueMatches(m: ValueMatch, value: string): boolean {
  return m.regex === undefined ? value === m.exact : m.regex.test(value);
}

/** Anything with a compiled match; `findFirst` returns the first that matches. */
export interface MatchCandidate {
  readonly match: CompiledMatch;
}

/**
 * Scans `candidates` in order (already sorted by precedence) and returns the first whose match
 * holds for `req`, or `undefined`.
 */
export function findFirst<C extends MatchCandidate>(
  candidates: readonly C[],
  req: RouteRequest,
): C | undefined {
  let query: URLSearchParams | undefined;
  outer: for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    const m = c.match;
    switch (m.pathKind) {
      case PathKind.Exact:
        if (req.path !== m.path) continue;
        break;
      case PathKind.Prefix:
        if (!prefixMatches(m.path, req.path)) continue;
        break;
      default:
        if (!m.pathRegex!.test(req.path)) continue;
    }
    if (m.method !== undefined && m.method !== req.method) continue;
    for (let h = 0; h < m.headers.length; h++) {
      const hm = m.headers[h]!;
      const value = headerValue(req.headers, hm.name);
      if (value === undefined || !valueMatches(hm, value)) continue outer;
    }
    if (m.queryParams.length > 0) {
      query ??= new URLSearchParams(req.query);
      for (let q = 0; q < m.queryParams.length; q++) {
        const qm = m.queryParams[q]!;
        const value = query.get(qm.name);
        if (value === null || !valueMatches(qm, value)) continue outer;
      }
    }
    return c;
  }
  return undefined;
}
