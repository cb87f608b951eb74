/**
 * Match precedence across all routes of a virtual host (Gateway API v1 HTTPRoute, CONVENTIONS B1).
 *
 * Each match of each route is one candidate. Candidates are ordered, continuing on ties, by:
 *  1. path type: Exact, then RegularExpression, then PathPrefix (regex precedence is
 *     implementation-specific in the spec; Weft follows Envoy Gateway, so a catch-all `/` prefix
 *     never hides a regex route);
 *  2. for RegularExpression and PathPrefix, the longer configured value (in characters) first;
 *  3. a method condition before none;
 *  4. more header conditions first;
 *  5. more query-parameter conditions first;
 *  6. list order: route index in the virtual host, then match index in the route. The control
 *     plane lists routes oldest first, then by namespace/name, as the spec's tie-breaks require.
 * The sort happens once at compile time; `match()` then returns the first candidate that holds.
 */
import type { CompiledMatch } from './match.ts';
import { PathKind } from './match.ts';

/** A candidate with its position in list order (route index, then match index). */
export interface OrderedCandidate {
  readonly match: CompiledMatch;
  readonly order: number;
}

/** Negative when `a` must be tried before `b`. Total order: ties fall back to list order. */
export function comparePrecedence(a: OrderedCandidate, b: OrderedCandidate): number {
  const ma = a.match;
  const mb = b.match;
  if (ma.pathKind !== mb.pathKind) return ma.pathKind - mb.pathKind;
  if (ma.pathKind !== PathKind.Exact && ma.pathLength !== mb.pathLength) {
    return mb.pathLength - ma.pathLength;
  }
  const methodA = ma.method === undefined ? 0 : 1;
  const methodB = mb.method === undefined ? 0 : 1;
  if (methodA !== methodB) return methodB - methodA;
  if (ma.headers.length !== mb.headers.length) return mb.headers.length - ma.headers.length;
  if (ma.queryParams.length !== mb.queryParams.length) return mb.queryParams.length - ma.queryParams.length;
  return a.order - b.order;
}

/** Returns a new array of `candidates` in precedence order (the input is not modified). */
export function sortByPrecedence<C extends OrderedCandidate>(candidates: readonly C[]): C[] {
  return [...candidates].sort(comparePrecedence);
}
