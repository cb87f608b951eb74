/**
 * Property tests (fast-check) for resource validation (control-plane/resources/validate.ts):
 * whatever a user sends, validation answers (never throws), every error names the resource and
 * the field, and a valid result validates again to itself. Inputs: arbitrary JSON, and the
 * valid example of every kind (test/fixtures/resources/valid) with one value replaced anywhere
 * in it by arbitrary JSON, or one field removed.
 */
import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateResource } from '../../../control-plane/resources/validate.ts';
import { FIXTURES, fixture } from '../resources/helpers.ts';

const examples = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => fixture(f.slice(0, -'.yaml'.length))[0] as Record<string, unknown>);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path to a value inside `v` (object keys and array indexes). */
function pathsOf(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [at];
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) out.push(...pathsOf(x, [...at, i]));
  } else if (typeof v === 'object' && v !== null)
    for (const [k, x] of Object.entries(v)) out.push(...pathsOf(x, [...at, k]));
  return out;
}

/** A copy of `doc` with the value at `path` replaced by `value`, or removed when `value` is undefined. */
function mutate(doc: unknown, path: (string | number)[], value: Json | undefined): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(doc) as Record<string | number, unknown>;
  let parent = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else parent[last] = value;
  return copy;
}

const mutated = fc
  .constantFrom(...examples)
  .chain((example) =>
    fc.tuple(
      fc.constant(example),
      fc.constantFrom(...pathsOf(example).filter((p) => p.length > 0)),
      fc.option(fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>, { nil: undefined }),
    ),
  )
  .map(([example, path, value]) => mutate(example, path, value));

/** Checks the contract of one validation answer; returns whether it was valid. */
function checkAnswer(input: unknown): boolean {
  const result = validateResource(input);
  if (result.ok) {
    const again = validateResource(structuredClone(result.resource));
    expect(again.ok).toBe(true);
    if (again.ok) expect(again.resource).toEqual(result.resource);
    return true;
  }
  expect(result.errors.length).toBeGreaterThan(0);
  for (const e of result.errors) {
    // "<Kind> <ns>/<name>: <field>: <reason>" or "<where>: <reason>"
    expect(e).toMatch(/^\S.*: \S/);
    expect(e).not.toMatch(/undefined|\[object Object\]/);
  }
  return false;
}

describe('resource validation (properties)', () => {
  it('answers arbitrary JSON with a result, never an exception', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        checkAnswer(v);
      }),
      { numRuns: 1000 },
    );
  });

  it('answers every one-value mutation of a valid resource with valid-and-stable or named errors', () => {
    let rejected = 0;
    fc.assert(
      fc.property(mutated, (doc) => {
        if (!checkAnswer(doc)) rejected++;
      }),
      { numRuns: 3000 },
    );
    // The mutations do reach the validator's checks (most random replacements are invalid).
    expect(rejected).toBeGreaterThan(1000);
  });
});
