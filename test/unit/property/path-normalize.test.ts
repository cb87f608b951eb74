/**
 * Property tests (fast-check) for the path normalization that authorization decisions use
 * (sidecar/proxy/http/normalize.ts): idempotence, the shape of the result, and that no
 * disguise of a protected path (dot segments, repeated slashes, percent-encoded unreserved
 * characters in either case) normalizes to anything but the path itself.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizePath } from '../../../sidecar/proxy/http/normalize.ts';

/** Paths over an alphabet rich in the characters normalization cares about. */
const hostilePath = fc
  .array(
    fc.constantFrom('/', '.', '%', '2', 'e', 'E', 'f', 'F', 'a', '4', '1', '~', '-', '_', 'x', '%2e', '%2F'),
    {
      maxLength: 40,
    },
  )
  .map((parts) => `/${parts.join('')}`);

const segment = fc.stringMatching(/^[a-z0-9_~-]{1,8}$/);
const cleanPath = fc.array(segment, { minLength: 1, maxLength: 6 }).map((s) => `/${s.join('/')}`);

/** Percent-encodes one unreserved character, upper- or lower-case hex. */
function encode(c: string, upper: boolean): string {
  const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${upper ? hex.toUpperCase() : hex}`;
}

/** What may stand between two separators and disappear on normalization. */
const noise = fc.constantFrom('', '/', './', '%2e/', '%2E/', 'junk/../', 'junk/%2e%2e/', 'a/b/../../');

/** A disguise of one segment: noise in front, some characters percent-encoded. */
const disguisedSegment = (s: string) =>
  fc
    .tuple(
      noise,
      fc.array(fc.constantFrom('plain', 'lower', 'upper'), { minLength: s.length, maxLength: s.length }),
    )
    .map(
      ([prefix, how]) =>
        prefix + [...s].map((c, i) => (how[i] === 'plain' ? c : encode(c, how[i] === 'upper'))).join(''),
    );

/** A clean path and a disguise of it. */
const disguised = fc
  .array(segment, { minLength: 1, maxLength: 6 })
  .chain((segments) =>
    fc
      .tuple(...segments.map(disguisedSegment))
      .map((parts) => ({ path: `/${segments.join('/')}`, out: `/${parts.join('/')}` })),
  );

describe('normalizePath (properties)', () => {
  it('is idempotent', () => {
    fc.assert(
      fc.property(hostilePath, (p) => normalizePath(normalizePath(p)) === normalizePath(p)),
      {
        numRuns: 2000,
      },
    );
  });

  it('never leaves `//`, a `.` or `..` segment, or a lower-case percent triplet', () => {
    fc.assert(
      fc.property(hostilePath, (p) => {
        const n = normalizePath(p);
        expect(n.startsWith('/')).toBe(true);
        expect(n).not.toContain('//');
        expect(n.split('/').filter((s) => s === '.' || s === '..')).toEqual([]);
        expect(n).not.toMatch(/%[0-9A-F]?[a-f]/);
      }),
      { numRuns: 2000 },
    );
  });

  it('returns a clean path unchanged', () => {
    fc.assert(fc.property(cleanPath, (p) => normalizePath(p) === p));
  });

  it('undoes every disguise of a clean path: encodings, dot segments and doubled slashes', () => {
    fc.assert(
      fc.property(disguised, ({ path, out }) => {
        expect(normalizePath(out)).toBe(path);
      }),
      { numRuns: 2000 },
    );
  });

  it('never turns an encoded slash into a separator', () => {
    fc.assert(
      fc.property(segment, segment, (a, b) => {
        const n = normalizePath(`/${a}%2f${b}`);
        expect(n).toBe(`/${a}%2F${b}`);
        expect(n.split('/')).toHaveLength(2);
      }),
    );
  });
});
