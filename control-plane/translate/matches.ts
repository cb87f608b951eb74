/**
 * Gateway API match conditions → proxy `RouteMatch` (HTTPRouteMatch, HTTPHeaderMatch,
 * HTTPQueryParamMatch, GRPCHeaderMatch). Field names and defaults as in apis/v1: path type
 * default PathPrefix, value default "/"; header and query-parameter type default Exact.
 *
 * Invariants: every match carries an explicit path (type and value), so the snapshot states
 * what the proxy will do; a value the proxy would reject (unknown type, regex that does not
 * compile) throws `UnsupportedValue`, which drops the rule (routes.ts).
 */
import type { HeaderMatch, MatchType, RouteMatch } from '../../sidecar/proxy/config/types.ts';
import { UnsupportedValue } from './filters.ts';
import type { HTTPRouteMatchView, ValueMatchView } from './specs.ts';

const MATCH_TYPES: Readonly<Record<string, MatchType>> = {
  Exact: 'EXACT',
  PathPrefix: 'PATH_PREFIX',
  RegularExpression: 'REGULAR_EXPRESSION',
};

/** Gateway API match type name → proxy MatchType; `allowed` limits the names (headers: no prefix). */
export function matchType(type: string | undefined, fallback: string, allowed: readonly string[]): MatchType {
  const name = type ?? fallback;
  const mapped = MATCH_TYPES[name];
  if (mapped === undefined || !allowed.includes(name)) throw new UnsupportedValue(`match type "${name}"`);
  return mapped;
}

/** Throws UnsupportedValue when `source` is not an ECMAScript regex (the proxy would NACK). */
export function checkRegex(source: string): void {
  if (source.length === 0) throw new UnsupportedValue('empty regular expression');
  try {
    new RegExp(source);
  } catch {
    throw new UnsupportedValue(`regular expression "${source}"`);
  }
}

/** HTTPHeaderMatch / HTTPQueryParamMatch / GRPCHeaderMatch → proxy header or query match. */
export function valueMatch(m: ValueMatchView): HeaderMatch {
  const type = matchType(m.type, 'Exact', ['Exact', 'RegularExpression']);
  if (type === 'REGULAR_EXPRESSION') checkRegex(m.value);
  return { name: m.name, type, value: m.value };
}

/** HTTPRouteMatch → RouteMatch. */
export function httpMatch(m: HTTPRouteMatchView): RouteMatch {
  const type = matchType(m.path?.type, 'PathPrefix', ['Exact', 'PathPrefix', 'RegularExpression']);
  const value = m.path?.value ?? '/';
  if (type === 'REGULAR_EXPRESSION') checkRegex(value);
  const headers = (m.headers ?? []).map(valueMatch);
  const queryParams = (m.queryParams ?? []).map(valueMatch);
  return {
    path: { type, value },
    ...(headers.length > 0 && { headers }),
    ...(queryParams.length > 0 && { queryParams }),
    ...(m.method !== undefined && { method: m.method }),
  };
}
