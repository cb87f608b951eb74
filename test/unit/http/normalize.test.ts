/**
 * Path normalization for authorization (sidecar/proxy/http/normalize.ts): percent-encoding
 * normalization (RFC 3986 §6.2.2), merged slashes, and RFC 3986 §5.2.4 dot-segment removal,
 * checked against the RFC's own examples and, for generated paths, against the WHATWG URL parser
 * that Node ships (a second implementation of the same dot-segment rules).
 */
import { describe, expect, it } from 'vitest';
import {
  mergeSlashes,
  normalizePath,
  normalizePercentEncoding,
  removeDotSegments,
} from '../../../sidecar/proxy/http/normalize.ts';

describe('remove_dot_segments (RFC 3986 §5.2.4)', () => {
  it.each([
    // The RFC's two worked examples.
    ['/a/b/c/./../../g', '/a/g'],
    ['mid/content=5/../6', 'mid/6'],
    // §5.4.1 / §5.4.2 reference resolution results, path part only (base /b/c/d;p).
    ['/b/c/g', '/b/c/g'],
    ['/b/c/./g', '/b/c/g'],
    ['/b/c/.', '/b/c/'],
    ['/b/c/./', '/b/c/'],
    ['/b/c/..', '/b/'],
    ['/b/c/../', '/b/'],
    ['/b/c/../g', '/b/g'],
    ['/b/c/../..', '/'],
    ['/b/c/../../g', '/g'],
    ['/b/c/../../../g', '/g'],
    ['/b/c/../../../../g', '/g'],
    ['/./g', '/g'],
    ['/../g', '/g'],
    ['/b/c/g.', '/b/c/g.'],
    ['/b/c/.g', '/b/c/.g'],
    ['/b/c/g..', '/b/c/g..'],
    ['/b/c/..g', '/b/c/..g'],
    ['/b/c/./../g', '/b/g'],
    ['/b/c/./g/.', '/b/c/g/'],
    ['/b/c/g/./h', '/b/c/g/h'],
    ['/b/c/g/../h', '/b/c/h'],
    // Relative inputs (rule A and D).
    ['../a', 'a'],
    ['./a', 'a'],
    ['.', ''],
    ['..', ''],
    // Nothing to do.
    ['/', '/'],
    ['/a/b', '/a/b'],
    ['*', '*'],
  ])('%s → %s', (input, expected) => {
    expect(removeDotSegments(input)).toBe(expected);
  });
});

describe('percent-encoding normalization (RFC 3986 §6.2.2.1, §6.2.2.2)', () => {
  it.each([
    ['/%61%62%63', '/abc'], // ALPHA
    ['/%41%5A%30%39', '/AZ09'], // ALPHA, DIGIT
    ['/%2D%2e%5F%7e', '/-._~'], // the other unreserved characters, any hex case
    ['/a%2fb', '/a%2Fb'], // %2F stays encoded, hex upper-cased
    ['/%20%3f%23', '/%20%3F%23'], // reserved and other characters stay encoded
    ['/%e2%82%ac', '/%E2%82%AC'], // non-ASCII bytes stay encoded
    ['/100%', '/100%25'], // a lone % is encoded
    ['/%zz/%4', '/%25zz/%254'], // so are the % of invalid triplets
    ['/%%34%31', '/%2541'], // never a new triplet from decoded characters (idempotence)
    ['/plain', '/plain'],
  ])('%s → %s', (input, expected) => {
    expect(normalizePercentEncoding(input)).toBe(expected);
  });
});

describe('merged slashes', () => {
  it.each([
    ['//admin', '/admin'],
    ['/a///b//', '/a/b/'],
    ['/a/b', '/a/b'],
  ])('%s → %s', (input, expected) => {
    expect(mergeSlashes(input)).toBe(expected);
  });
});

describe('normalizePath', () => {
  it.each([
    ['/a/../admin', '/admin'],
    ['/%2e%2e/admin', '/admin'],
    ['/api/%2E%2e/admin', '/admin'],
    ['/api/.%2e/admin', '/admin'],
    ['//admin', '/admin'],
    ['/a//../admin', '/admin'], // slashes merge first, as nginx, Tomcat and Go's path.Clean
    ['/./admin/./', '/admin/'],
    ['/ad%6Din', '/admin'],
    ['/a%2F..%2Fadmin', '/a%2F..%2Fadmin'], // %2F is not a separator: no dot segment here
    ['/a%2f%2e%2e%2fadmin', '/a%2F..%2Fadmin'],
    ['/admin', '/admin'],
  ])('%s → %s', (input, expected) => {
    expect(normalizePath(input)).toBe(expected);
  });

  it('returns an already normal path itself (no allocation on the hot path)', () => {
    const path = '/api/v1/items/42';
    expect(normalizePath(path)).toBe(path);
  });

  /** Deterministic PRNG (mulberry32), so a failing case replays. */
  function rng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  // Segments that are either plain or pure dot segments (WHATWG keeps %2e inside other segments
  // encoded, while RFC 3986 decodes it: only the dot-segment rules are compared).
  const SEGMENTS = ['a', 'b', 'c.d', '.', '..', '%2e', '%2E', '%2e%2e', '.%2E', '%2e.', ''];

  it('agrees with the WHATWG URL parser on dot segments (1000 generated paths)', () => {
    const random = rng(20261130);
    for (let n = 0; n < 1000; n++) {
      const count = 1 + Math.floor(random() * 6);
      const parts: string[] = [];
      for (let i = 0; i < count; i++) {
        // No empty segments inside: WHATWG keeps `//`, which normalizePath merges.
        const s = SEGMENTS[Math.floor(random() * (SEGMENTS.length - 1))] as string;
        parts.push(s);
      }
      if (random() < 0.2) parts.push(''); // a trailing slash
      const path = `/${parts.join('/')}`;
      expect(normalizePath(path), path).toBe(new URL(path, 'http://x').pathname);
    }
  });

  it('is idempotent and leaves no // and no dot segment (1000 generated paths)', () => {
    const random = rng(7);
    const alphabet = ['/', '/', 'a', '.', '%2e', '%2F', '%41', '%', '~', '3', '4', '%34'];
    for (let n = 0; n < 1000; n++) {
      let path = '/';
      const len = Math.floor(random() * 12);
      for (let i = 0; i < len; i++) path += alphabet[Math.floor(random() * alphabet.length)];
      const once = normalizePath(path);
      expect(normalizePath(once), path).toBe(once);
      expect(once.includes('//'), path).toBe(false);
      expect(
        once.split('/').some((s) => s === '.' || s === '..'),
        path,
      ).toBe(false);
    }
  });
});
