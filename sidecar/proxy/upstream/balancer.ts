/**
 * Load balancers over a fixed array of upstream endpoints: ROUND_ROBIN, LEAST_REQUEST, RANDOM,
 * CONSISTENT_HASH.
 *
 * Invariants:
 * - A balancer is built once per endpoint set and never changes its set; a new set means a new balancer.
 *   Weights are read once, at build time.
 * - `pick` allocates nothing and returns `undefined` only when the set is empty.
 * - Randomness comes from the caller's `PickContext.random` (in [0, 1)), so picks are reproducible in tests.
 *
 * Costs per pick: ROUND_ROBIN O(1) (equal weights, or a precomputed smooth weighted schedule; O(n) only
 * for weight sets too large to precompute), LEAST_REQUEST O(1), RANDOM O(1) equal / O(log n) weighted,
 * CONSISTENT_HASH O(|key| + log ring).
 */
import { gcd, HashRing } from './hash-ring.ts';
import type { PickContext, UpstreamEndpoint } from './types.ts';

/** The policies a balancer implements (`LB_POLICY_UNSPECIFIED` is resolved to ROUND_ROBIN before this). */
export type BalancerPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'CONSISTENT_HASH';

export const BALANCER_POLICIES: readonly BalancerPolicy[] = [
  'ROUND_ROBIN',
  'LEAST_REQUEST',
  'RANDOM',
  'CONSISTENT_HASH',
];

/** Chooses an endpoint for each new request. Immutable; safe to share. */
export interface Balancer {
  readonly policy: BalancerPolicy;
  /** Number of endpoints the balancer chooses from. */
  readonly size: number;
  /** An endpoint, or `undefined` when `size` is 0. Allocates nothing. */
  pick(ctx: PickContext): UpstreamEndpoint | undefined;
}

export interface BalancerOptions {
  /**
   * Used once at build time to choose where ROUND_ROBIN starts in its cycle, so that many proxies
   * built at the same moment do not all send their first request to the same endpoint. In [0, 1);
   * default `Math.random`. Pass `() => 0` for a cycle that starts at the first endpoint.
   */
  readonly random?: () => number;
}

/** Largest smooth-weighted-round-robin cycle (sum of gcd-reduced weights) that is precomputed. */
const MAX_SCHEDULE_LENGTH = 1 << 16;
/** Largest build cost (cycle length × endpoints) spent on precomputing a schedule. */
const MAX_SCHEDULE_BUILD_STEPS = 1 << 22;

/**
 * Builds a balancer for `policy` over a copy of `endpoints` (the caller passes only pickable endpoints).
 * Throws a `RangeError` if an endpoint's weight is not a positive safe integer, and a `TypeError` for
 * an unknown policy.
 */
export function createBalancer(
  policy: BalancerPolicy,
  endpoints: readonly UpstreamEndpoint[],
  options: BalancerOptions = {},
): Balancer {
  const list = Object.freeze([...endpoints]);
  const weights = list.map((e) => {
    if (!Number.isSafeInteger(e.weight) || e.weight < 1) {
      throw new RangeError(`endpoint ${e.key}: weight must be a positive integer, got ${e.weight}`);
    }
    return e.weight;
  });
  if (list.length === 0) return new EmptyBalancer(policy);
  const random = options.random ?? Math.random;
  switch (policy) {
    case 'ROUND_ROBIN':
      return createRoundRobin(list, weights, random());
    case 'LEAST_REQUEST':
      return new LeastRequestBalancer(list, weights);
    case 'RANDOM':
      return new RandomBalancer(list, weights);
    case 'CONSISTENT_HASH':
      return new ConsistentHashBalancer(list, weights);
    default:
      throw new TypeError(`unknown load balancing policy ${String(policy)}`);
  }
}

/** `floor(u × n)` clamped into [0, n), so a random source returning 1 cannot index past the end. */
function indexOf(u: number, n: number): number {
  const i = Math.floor(u * n);
  return Math.min(Math.max(i, 0), n - 1);
}

function allEqual(weights: readonly number[]): boolean {
  return weights.every((w) => w === weights[0]);
}

class EmptyBalancer implements Balancer {
  readonly size = 0;
  readonly policy: BalancerPolicy;
  constructor(policy: BalancerPolicy) {
    this.policy = policy;
  }
  pick(): undefined {
    return undefined;
  }
}

function createRoundRobin(
  list: readonly UpstreamEndpoint[],
  weights: readonly number[],
  u: number,
): Balancer {
  if (allEqual(weights)) return new ScheduleBalancer(list, null, indexOf(u, list.length));
  let g = 0;
  for (const w of weights) g = gcd(w, g);
  const reduced = weights.map((w) => w / g);
  const total = reduced.reduce((a, b) => a + b, 0);
  if (total <= MAX_SCHEDULE_LENGTH && total * list.length <= MAX_SCHEDULE_BUILD_STEPS) {
    return new ScheduleBalancer(list, smoothWeightedSchedule(reduced, total), indexOf(u, total));
  }
  return new SmoothWeightedBalancer(list, reduced, total);
}

/**
 * One full cycle of nginx's smooth weighted round robin: each step adds every weight to its endpoint's
 * running value, picks the largest (first on ties), and subtracts the total from it. Over `total`
 * steps endpoint i appears exactly `weights[i]` times, interleaved as evenly as possible.
 */
export function smoothWeightedSchedule(weights: readonly number[], total: number): Uint32Array {
  const current = new Float64Array(weights.length);
  const schedule = new Uint32Array(total);
  for (let step = 0; step < total; step++) {
    let best = 0;
    for (let i = 0; i < weights.length; i++) {
      current[i]! += weights[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    schedule[step] = best;
  }
  return schedule;
}

/** Round robin walking a cycle: the endpoints themselves (equal weights) or a precomputed schedule. */
class ScheduleBalancer implements Balancer {
  readonly policy = 'ROUND_ROBIN';
  readonly #endpoints: readonly UpstreamEndpoint[];
  readonly #schedule: Uint32Array | null;
  readonly #length: number;
  #cursor: number;

  constructor(endpoints: readonly UpstreamEndpoint[], schedule: Uint32Array | null, start: number) {
    this.#endpoints = endpoints;
    this.#schedule = schedule;
    this.#length = schedule === null ? endpoints.length : schedule.length;
    this.#cursor = start;
  }

  get size(): number {
    return this.#endpoints.length;
  }

  pick(): UpstreamEndpoint {
    const at = this.#cursor;
    this.#cursor = at + 1 === this.#length ? 0 : at + 1;
    return this.#endpoints[this.#schedule === null ? at : this.#schedule[at]!]!;
  }
}

/** Live smooth weighted round robin, O(n) per pick; only for weight sets too large to precompute. */
class SmoothWeightedBalancer implements Balancer {
  readonly policy = 'ROUND_ROBIN';
  readonly #endpoints: readonly UpstreamEndpoint[];
  readonly #weights: Float64Array;
  readonly #current: Float64Array;
  readonly #total: number;

  constructor(endpoints: readonly UpstreamEndpoint[], weights: readonly number[], total: number) {
    this.#endpoints = endpoints;
    this.#weights = Float64Array.from(weights);
    this.#current = new Float64Array(weights.length);
    this.#total = total;
  }

  get size(): number {
    return this.#endpoints.length;
  }

  pick(): UpstreamEndpoint {
    const current = this.#current;
    const weights = this.#weights;
    let best = 0;
    for (let i = 0; i < current.length; i++) {
      current[i]! += weights[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= this.#total;
    return this.#endpoints[best]!;
  }
}

/**
 * Power of two choices: two distinct random endpoints, keep the one with the lower
 * `(activeRequests + 1) / weight`. The `+ 1` makes weights count even when both are idle; with equal
 * weights it is exactly "fewer active requests wins". Ties go to the first (random) choice.
 */
class LeastRequestBalancer implements Balancer {
  readonly policy = 'LEAST_REQUEST';
  readonly #endpoints: readonly UpstreamEndpoint[];
  readonly #weights: Float64Array;

  constructor(endpoints: readonly UpstreamEndpoint[], weights: readonly number[]) {
    this.#endpoints = endpoints;
    this.#weights = Float64Array.from(weights);
  }

  get size(): number {
    return this.#endpoints.length;
  }

  pick(ctx: PickContext): UpstreamEndpoint {
    const n = this.#endpoints.length;
    const i = indexOf(ctx.random(), n);
    if (n === 1) return this.#endpoints[0]!;
    let j = indexOf(ctx.random(), n - 1);
    if (j >= i) j++;
    const a = this.#endpoints[i]!;
    const b = this.#endpoints[j]!;
    return (a.activeRequests + 1) * this.#weights[j]! <= (b.activeRequests + 1) * this.#weights[i]! ? a : b;
  }
}

/** Weighted random choice: uniform for equal weights, else a binary search over cumulative weights. */
class WeightedChoice {
  readonly #endpoints: readonly UpstreamEndpoint[];
  /** `null` when all weights are equal. */
  readonly #cumulative: Float64Array | null;
  readonly #total: number;

  constructor(endpoints: readonly UpstreamEndpoint[], weights: readonly number[]) {
    this.#endpoints = endpoints;
    const cumulative = new Float64Array(weights.length);
    let sum = 0;
    weights.forEach((w, i) => {
      sum += w;
      cumulative[i] = sum;
    });
    this.#cumulative = allEqual(weights) ? null : cumulative;
    this.#total = sum;
  }

  choose(u: number): UpstreamEndpoint {
    const cumulative = this.#cumulative;
    if (cumulative === null) return this.#endpoints[indexOf(u, this.#endpoints.length)]!;
    const target = u * this.#total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid]! <= target) lo = mid + 1;
      else hi = mid;
    }
    return this.#endpoints[lo]!;
  }
}

class RandomBalancer implements Balancer {
  readonly policy = 'RANDOM';
  readonly size: number;
  readonly #choice: WeightedChoice;

  constructor(endpoints: readonly UpstreamEndpoint[], weights: readonly number[]) {
    this.size = endpoints.length;
    this.#choice = new WeightedChoice(endpoints, weights);
  }

  pick(ctx: PickContext): UpstreamEndpoint {
    return this.#choice.choose(ctx.random());
  }
}

/** Hash ring lookup on `ctx.hashKey`; requests without a key get a weighted random endpoint. */
class ConsistentHashBalancer implements Balancer {
  readonly policy = 'CONSISTENT_HASH';
  readonly size: number;
  readonly #ring: HashRing;
  readonly #fallback: WeightedChoice;

  constructor(endpoints: readonly UpstreamEndpoint[], weights: readonly number[]) {
    this.size = endpoints.length;
    this.#ring = new HashRing(endpoints);
    this.#fallback = new WeightedChoice(endpoints, weights);
  }

  pick(ctx: PickContext): UpstreamEndpoint {
    const key = ctx.hashKey;
    return key === undefined ? this.#fallback.choose(ctx.random()) : this.#ring.lookup(key);
  }
}
