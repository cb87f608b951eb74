/**
 * The valid examples in test/fixtures/resources/valid (one per kind, quoted by the README):
 * each validates, every kind has one, the result is deep-frozen and shares nothing with the
 * input, and validation is idempotent (validating the output again gives the same resource).
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KINDS, resourceId } from '../../../control-plane/resources/types.ts';
import { validateResources } from '../../../control-plane/resources/validate.ts';
import { FIXTURES, fixture, valid } from './helpers.ts';

const files = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.slice(0, -'.yaml'.length))
  .sort();

function isDeepFrozen(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return true;
  return Object.isFrozen(v) && Object.values(v).every(isDeepFrozen);
}

describe('valid fixtures', () => {
  it('there is one file per kind, named after it', () => {
    expect(files).toEqual(
      Object.keys(KINDS)
        .map((k) => k.toLowerCase())
        .sort(),
    );
  });

  it.each(files)('%s.yaml validates without errors', (name) => {
    const { resources, errors } = validateResources(fixture(name));
    expect(errors).toEqual([]);
    expect(resources).toHaveLength(1);
    expect(resources[0]!.kind.toLowerCase()).toBe(name);
  });

  it.each(files)('%s.yaml: the result is deep-frozen and not aliased to the input', (name) => {
    const input = fixture(name)[0] as Record<string, unknown>;
    const before = structuredClone(input);
    const r = valid(input);
    expect(isDeepFrozen(r)).toBe(true);
    expect(input).toEqual(before);
    expect(Object.isFrozen(input)).toBe(false);
    expect(r.spec).not.toBe(input.spec);
  });

  it.each(files)('%s.yaml: validating the result again gives the same resource', (name) => {
    const once = valid(fixture(name)[0]);
    const twice = valid(structuredClone(once));
    expect(twice).toEqual(once);
    expect(resourceId(twice)).toBe(resourceId(once));
  });
});
