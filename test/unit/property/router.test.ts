/**
 * Property tests (fast-check) for the route matcher (sidecar/proxy/router), against a reference
 * model of Gateway API path precedence: an Exact match wins, else the longest PathPrefix that
 * matches element-wise (`/abc` matches `/abc` and `/abc/x`, never `/abcd`). The compiled table
 * must agree with the model for any set of routes, in any order, on any request path, and must
 * never throw on a request.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Route } from '../../../sidecar/proxy/config/types.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';

interface PathRule {
  readonly type: 'EXACT' | 'PATH_PREFIX';
  readonly value: string;
}

/** Few distinct segments, so that generated rules and paths overlap often. */
const segment = fc.constantFrom('a', 'ab', 'b', 'api', 'v1', 'x');
const path = fc.array(segment, { maxLength: 4 }).map((s) => `/${s.join('/')}`);
const rule: fc.Arbitrary<PathRule> = fc.record({
  type: fc.constantFrom('EXACT' as const, 'PATH_PREFIX' as const),
  value: path,
});
/** Rules with pairwise distinct (type, normalized value), so that no tie is left to list order. */
const rules = fc.uniqueArray(rule, {
  minLength: 1,
  maxLength: 8,
  selector: (r) =>
    `${r.type} ${r.type === 'PATH_PREFIX' && r.value !== '/' ? r.value.replace(/\/$/, '') : r.value}`,
});

function elementWise(prefix: string, p: string): boolean {
  const pre = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return pre === '' || p === pre || p.startsWith(`${pre}/`);
}

/** The reference model: the winning rule for `p`, or undefined. */
function model(all: readonly PathRule[], p: string): PathRule | undefined {
  const exact = all.find((r) => r.type === 'EXACT' && r.value === p);
  if (exact !== undefined) return exact;
  let best: PathRule | undefined;
  for (const r of all) {
    if (r.type !== 'PATH_PREFIX' || !elementWise(r.value, p)) continue;
    if (best === undefined || r.value.replace(/\/$/, '').length > best.value.replace(/\/$/, '').length)
      best = r;
  }
  return best;
}

const nameOf = (r: PathRule): string => `${r.type}:${r.value}`;

function winner(all: readonly PathRule[], p: string): string | undefined {
  const routes: Route[] = all.map((r) => ({
    name: nameOf(r),
    matches: [{ path: { type: r.type, value: r.value } }],
    route: { clusters: [{ name: 'c' }] },
  }));
  const table = compileRouteTable({ name: 't', virtualHosts: [{ name: 'vh', domains: ['*'], routes }] });
  return table.match({ host: 'h', path: p, query: '', method: 'GET', headers: {} })?.routeName;
}

describe('route matcher (properties)', () => {
  it('agrees with the reference model of Exact > longest element-wise PathPrefix', () => {
    fc.assert(
      fc.property(rules, path, (all, p) => {
        const expected = model(all, p);
        expect(winner(all, p)).toBe(expected === undefined ? undefined : nameOf(expected));
      }),
      { numRuns: 1500 },
    );
  });

  it('does not depend on the order routes are listed in', () => {
    fc.assert(
      fc.property(
        rules.chain((all) => fc.tuple(fc.constant(all), fc.shuffledSubarray(all, { minLength: all.length }))),
        path,
        ([all, shuffled], p) => {
          expect(winner(shuffled, p)).toBe(winner(all, p));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('never throws on an arbitrary request path, method or header set', () => {
    const table = compileRouteTable({
      name: 't',
      virtualHosts: [
        {
          name: 'vh',
          domains: ['*'],
          routes: [
            {
              name: 'r',
              matches: [
                {
                  path: { type: 'REGULAR_EXPRESSION', value: '/re/[a-z]+' },
                  headers: [{ name: 'x', value: 'y' }],
                },
                { path: { type: 'PATH_PREFIX', value: '/api' }, queryParams: [{ name: 'q', value: '1' }] },
              ],
              route: { clusters: [{ name: 'c' }] },
            },
          ],
        },
      ],
    });
    fc.assert(
      fc.property(
        fc.string(),
        fc.string(),
        fc.string(),
        fc.dictionary(fc.string(), fc.string()),
        (p, q, method, headers) => {
          table.match({ host: 'h', path: p, query: q, method, headers });
        },
      ),
      { numRuns: 2000 },
    );
  });
});
