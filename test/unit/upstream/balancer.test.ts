import { describe, expect, it } from 'vitest';
import {
  BALANCER_POLICIES,
  type BalancerPolicy,
  createBalancer,
  smoothWeightedSchedule,
} from '../../../sidecar/proxy/upstream/balancer.ts';
import { ctx, fakeEndpoint, seeded, tally } from './helpers.ts';

const zero = () => 0;

describe('ROUND_ROBIN', () => {
  it('walks equal-weight endpoints in an exact cycle', () => {
    const eps = ['a', 'b', 'c'].map((k) => fakeEndpoint(k));
    const b = createBalancer('ROUND_ROBIN', eps, { random: zero });
    const picks = Array.from({ length: 9 }, () => b.pick(ctx(Math.random))?.key);
    expect(picks).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('starts the cycle at a build-time random offset', () => {
    const eps = ['a', 'b', 'c', 'd'].map((k) => fakeEndpoint(k));
    const b = createBalancer('ROUND_ROBIN', eps, { random: () => 0.5 });
    const picks = Array.from({ length: 5 }, () => b.pick(ctx(zero))?.key);
    expect(picks).toEqual(['c', 'd', 'a', 'b', 'c']);
  });

  it('interleaves weights like nginx smooth weighted round robin', () => {
    const eps = [fakeEndpoint('a', 5), fakeEndpoint('b', 1), fakeEndpoint('c', 1)];
    const b = createBalancer('ROUND_ROBIN', eps, { random: zero });
    const picks = Array.from({ length: 14 }, () => b.pick(ctx(zero))?.key).join('');
    expect(picks).toBe('aabacaa'.repeat(2));
  });

  it('gives exact proportions over every cycle (weights reduced by their gcd)', () => {
    const eps = [fakeEndpoint('a', 2), fakeEndpoint('b', 4), fakeEndpoint('c', 6)];
    const b = createBalancer('ROUND_ROBIN', eps, { random: () => 0.3 });
    for (let cycle = 0; cycle < 5; cycle++) {
      const counts = tally(6, () => b.pick(ctx(zero)));
      expect(Object.fromEntries(counts)).toEqual({ a: 1, b: 2, c: 3 });
    }
  });

  it('keeps exact proportions for weight sets too large to precompute', () => {
    const eps = [fakeEndpoint('a', 40_000), fakeEndpoint('b', 30_001)];
    const b = createBalancer('ROUND_ROBIN', eps, { random: zero });
    const counts = tally(70_001, () => b.pick(ctx(zero)));
    expect(Object.fromEntries(counts)).toEqual({ a: 40_000, b: 30_001 });
  });

  it('precomputed schedule matches the nginx definition', () => {
    expect([...smoothWeightedSchedule([5, 1, 1], 7)]).toEqual([0, 0, 1, 0, 2, 0, 0]);
    expect([...smoothWeightedSchedule([1, 1], 2)]).toEqual([0, 1]);
  });
});

describe('LEAST_REQUEST (power of two choices)', () => {
  it('prefers less loaded endpoints and never picks the most loaded', () => {
    const eps = [fakeEndpoint('idle', 1, 0), fakeEndpoint('light', 1, 5), fakeEndpoint('busy', 1, 10)];
    eps.push(fakeEndpoint('hot', 1, 20));
    const b = createBalancer('LEAST_REQUEST', eps);
    const random = seeded(7);
    const counts = tally(60_000, () => b.pick(ctx(random)));
    const share = (k: string) => (counts.get(k) ?? 0) / 60_000;
    // Of the 6 candidate pairs 'idle' is in 3 and wins them all, 'light' wins 2, 'busy' 1, 'hot' none.
    expect(share('idle')).toBeCloseTo(3 / 6, 1);
    expect(share('light')).toBeCloseTo(2 / 6, 1);
    expect(share('busy')).toBeCloseTo(1 / 6, 1);
    expect(counts.get('hot')).toBeUndefined();
  });

  it('compares load relative to weight', () => {
    const heavy = fakeEndpoint('heavy', 3, 4);
    const light = fakeEndpoint('light', 1, 1);
    const b = createBalancer('LEAST_REQUEST', [light, heavy]);
    const random = seeded(3);
    // (4+1)/3 < (1+1)/1, so the weight-3 endpoint wins despite more active requests.
    for (let i = 0; i < 100; i++) expect(b.pick(ctx(random))).toBe(heavy);
    heavy.activeRequests = 6; // (6+1)/3 > 2/1
    for (let i = 0; i < 100; i++) expect(b.pick(ctx(random))).toBe(light);
  });

  it('reads activeRequests live and spreads a growing load evenly', () => {
    const eps = ['a', 'b', 'c', 'd'].map((k) => fakeEndpoint(k));
    const b = createBalancer('LEAST_REQUEST', eps);
    const random = seeded(11);
    for (let i = 0; i < 400; i++) {
      const e = b.pick(ctx(random));
      if (e) e.activeRequests++;
    }
    for (const e of eps) expect(e.activeRequests).toBeGreaterThan(85);
  });

  it('returns the only endpoint of a set of one', () => {
    const only = fakeEndpoint('only', 1, 99);
    expect(createBalancer('LEAST_REQUEST', [only]).pick(ctx(seeded(1)))).toBe(only);
  });
});

describe('RANDOM', () => {
  it('is weighted by endpoint weight', () => {
    const eps = [fakeEndpoint('a', 1), fakeEndpoint('b', 2), fakeEndpoint('c', 7)];
    const b = createBalancer('RANDOM', eps);
    const random = seeded(5);
    const counts = tally(100_000, () => b.pick(ctx(random)));
    expect((counts.get('a') ?? 0) / 1e5).toBeCloseTo(0.1, 2);
    expect((counts.get('b') ?? 0) / 1e5).toBeCloseTo(0.2, 2);
    expect((counts.get('c') ?? 0) / 1e5).toBeCloseTo(0.7, 2);
  });

  it('maps the random value onto cumulative weights exactly', () => {
    const eps = [fakeEndpoint('a', 1), fakeEndpoint('b', 2), fakeEndpoint('c', 7)];
    const b = createBalancer('RANDOM', eps);
    const at = (u: number) => b.pick(ctx(() => u))?.key;
    expect([at(0), at(0.09), at(0.1), at(0.29), at(0.3), at(0.999), at(1)]).toEqual([
      'a',
      'a',
      'b',
      'b',
      'c',
      'c',
      'c',
    ]);
  });

  it('is uniform for equal weights and clamps a random source returning 1', () => {
    const eps = ['a', 'b', 'c', 'd'].map((k) => fakeEndpoint(k));
    const b = createBalancer('RANDOM', eps);
    expect([0, 0.25, 0.5, 0.99, 1].map((u) => b.pick(ctx(() => u))?.key)).toEqual(['a', 'b', 'c', 'd', 'd']);
  });
});

describe('CONSISTENT_HASH', () => {
  const ten = () => Array.from({ length: 10 }, (_, i) => fakeEndpoint(`10.0.0.${i + 1}:8080`));
  const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

  it('maps a key to the same endpoint every time, whatever the endpoint order', () => {
    const eps = ten();
    const b1 = createBalancer('CONSISTENT_HASH', eps);
    const b2 = createBalancer('CONSISTENT_HASH', [...eps].reverse());
    for (const k of keys.slice(0, 500)) {
      const first = b1.pick(ctx(Math.random, k));
      expect(b1.pick(ctx(Math.random, k))).toBe(first);
      expect(b2.pick(ctx(Math.random, k))).toBe(first);
    }
  });

  it('spreads keys roughly evenly', () => {
    const b = createBalancer('CONSISTENT_HASH', ten());
    const counts = tally(
      keys.length,
      (() => {
        let i = 0;
        return () => b.pick(ctx(zero, keys[i++]));
      })(),
    );
    expect(counts.size).toBe(10);
    for (const c of counts.values()) {
      expect(c).toBeGreaterThan(500);
      expect(c).toBeLessThan(1600);
    }
  });

  it('remaps only the keys of a removed endpoint (about 1/10)', () => {
    const eps = ten();
    const before = createBalancer('CONSISTENT_HASH', eps);
    const removed = eps[3]!;
    const after = createBalancer(
      'CONSISTENT_HASH',
      eps.filter((e) => e !== removed),
    );
    let moved = 0;
    for (const k of keys) {
      const was = before.pick(ctx(zero, k));
      const now = after.pick(ctx(zero, k));
      if (was !== now) {
        moved++;
        expect(was).toBe(removed);
      }
    }
    expect(moved / keys.length).toBeGreaterThan(0.05);
    expect(moved / keys.length).toBeLessThan(0.15);
  });

  it('gives a weight-3 endpoint about three times the keys', () => {
    const eps = [fakeEndpoint('a:1', 3), fakeEndpoint('b:1', 1)];
    const b = createBalancer('CONSISTENT_HASH', eps);
    let a = 0;
    for (const k of keys) if (b.pick(ctx(zero, k))?.key === 'a:1') a++;
    expect(a / keys.length).toBeGreaterThan(0.68);
    expect(a / keys.length).toBeLessThan(0.82);
  });

  it('falls back to weighted random without a hash key', () => {
    const eps = [fakeEndpoint('a:1', 1), fakeEndpoint('b:1', 3)];
    const b = createBalancer('CONSISTENT_HASH', eps);
    expect(b.pick(ctx(() => 0.2))?.key).toBe('a:1');
    expect(b.pick(ctx(() => 0.3))?.key).toBe('b:1');
  });
});

describe('every policy', () => {
  it.each(BALANCER_POLICIES)('%s picks nothing from an empty set', (policy: BalancerPolicy) => {
    const b = createBalancer(policy, []);
    expect(b.size).toBe(0);
    expect(b.policy).toBe(policy);
    expect(b.pick(ctx(Math.random, 'k'))).toBeUndefined();
  });

  it.each(BALANCER_POLICIES)('%s rejects a non-positive or fractional weight', (policy: BalancerPolicy) => {
    expect(() => createBalancer(policy, [fakeEndpoint('a:1', 0)])).toThrow(RangeError);
    expect(() => createBalancer(policy, [fakeEndpoint('a:1', 1.5)])).toThrow(/a:1.*weight/);
  });

  it.each(BALANCER_POLICIES)(
    '%s is not affected by later changes to the input array',
    (policy: BalancerPolicy) => {
      const eps = [fakeEndpoint('a:1')];
      const b = createBalancer(policy, eps);
      eps.length = 0;
      expect(b.pick(ctx(zero, 'k'))?.key).toBe('a:1');
    },
  );
});
