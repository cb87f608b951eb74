/**
 * Consistent hashing for the CONSISTENT_HASH load balancer: a ring of virtual nodes ("ketama" style).
 *
 * Each endpoint owns `VNODES_PER_WEIGHT_UNIT × weight` points on a 32-bit ring (weights reduced by their
 * gcd first, the whole ring capped at `MAX_RING_SIZE` points). A key maps to the first point at or after
 * its hash, wrapping around. A point's position depends only on its endpoint's key and its index, never
 * on the other endpoints, so removing one of N endpoints remaps only the keys that endpoint owned (≈1/N).
 * (Caveat: if the removal changes the weights' gcd, or the ring was capped and its scale changes, the
 * other endpoints' point counts change too and somewhat more keys move.)
 *
 * Invariants: a ring is immutable once built; `lookup` allocates nothing (typed arrays, a binary
 * search, a hash over UTF-16 code units).
 */
import type { UpstreamEndpoint } from './types.ts';

/** Virtual nodes per (gcd-reduced) unit of endpoint weight. */
export const VNODES_PER_WEIGHT_UNIT = 100;
/** Upper bound on the number of points on one ring; larger configs are scaled down proportionally. */
export const MAX_RING_SIZE = 1 << 17;
/** Owner ranks packed below a 32-bit position must stay under this (2^21 · 2^32 = 2^53, exact in a double). */
const OWNER_SPACE = 2 ** 21;

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * 32-bit FNV-1a over the string's UTF-16 code units, finished with murmur3's `fmix32` so that short
 * keys differing only in their last characters still spread over the whole ring.
 * For ASCII input the FNV-1a stage equals FNV-1a over the UTF-8 bytes. Returns an unsigned 32-bit integer.
 */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Greatest common divisor of positive integers. */
export function gcd(a: number, b: number): number {
  let x = a;
  let y = b;
  while (y !== 0) {
    const t = x % y;
    x = y;
    y = t;
  }
  return x;
}

/** An immutable hash ring over a fixed endpoint array. */
export class HashRing {
  /** Point positions, ascending as unsigned 32-bit integers. */
  readonly #points: Uint32Array;
  /** `#owners[i]` is the index into `#endpoints` owning `#points[i]`. */
  readonly #owners: Uint32Array;
  readonly #endpoints: readonly UpstreamEndpoint[];

  /**
   * Builds the ring; cost O(P log P) for P points. `endpoints` must be non-empty with positive
   * integer weights (the balancer checks this). Equal positions are ordered by endpoint key, so the
   * ring does not depend on the order of `endpoints`. Throws a `RangeError` for 2^21 or more endpoints.
   */
  constructor(endpoints: readonly UpstreamEndpoint[]) {
    if (endpoints.length >= OWNER_SPACE)
      throw new RangeError(`too many endpoints for a hash ring: ${endpoints.length}`);
    this.#endpoints = endpoints;
    let g = 0;
    for (const e of endpoints) g = gcd(e.weight, g);
    let units = 0;
    for (const e of endpoints) units += e.weight / g;
    const scale = Math.min(1, MAX_RING_SIZE / (units * VNODES_PER_WEIGHT_UNIT));
    // Pack (position, rank of the owner's key) into one exact double and sort natively: ties on
    // position are broken by key, so the ring does not depend on the order of `endpoints`.
    const byKey = endpoints
      .map((_, i) => i)
      .sort((a, b) => compareKeys(endpoints[a]!.key, endpoints[b]!.key));
    const counts = byKey.map((i) => {
      const w = endpoints[i]!.weight / g;
      return Math.max(1, Math.floor(w * VNODES_PER_WEIGHT_UNIT * scale));
    });
    const packed = new Float64Array(counts.reduce((a, b) => a + b, 0));
    let n = 0;
    byKey.forEach((owner, rank) => {
      const key = endpoints[owner]!.key;
      for (let i = 0; i < counts[rank]!; i++) packed[n++] = hash32(`${key}#${i}`) * OWNER_SPACE + rank;
    });
    packed.sort();
    this.#points = new Uint32Array(packed.length);
    this.#owners = new Uint32Array(packed.length);
    for (let i = 0; i < packed.length; i++) {
      const v = packed[i]!;
      const rank = v % OWNER_SPACE;
      this.#points[i] = (v - rank) / OWNER_SPACE;
      this.#owners[i] = byKey[rank]!;
    }
  }

  /** Number of points on the ring. */
  get size(): number {
    return this.#points.length;
  }

  /** The endpoint owning `key`: the first point clockwise from `hash32(key)`. */
  lookup(key: string): UpstreamEndpoint {
    const h = hash32(key);
    const points = this.#points;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    const at = lo === points.length ? 0 : lo;
    return this.#endpoints[this.#owners[at]!]!;
  }
}
