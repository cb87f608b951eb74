/**
 * Shared helpers for the resource validation tests: envelopes for each kind, and the errors or
 * the validated resource of one document.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseDocuments } from '../../../control-plane/resources/parse.ts';
import type { Resource } from '../../../control-plane/resources/types.ts';
import { KINDS, type Kind } from '../../../control-plane/resources/types.ts';
import { validateResource } from '../../../control-plane/resources/validate.ts';

/** A document of `kind` named `name` in the default namespace with this spec. */
export function doc(kind: Kind, spec: unknown, name = 'r'): Record<string, unknown> {
  return { apiVersion: KINDS[kind], kind, metadata: { name }, spec };
}

/** The errors of one document ([] when valid). */
export function errorsOf(d: unknown): string[] {
  const r = validateResource(d);
  return r.ok ? [] : r.errors;
}

/** The validated resource; fails the test with the errors when invalid. */
export function valid(d: unknown): Resource {
  const r = validateResource(d);
  if (!r.ok) throw new Error(`expected valid, got:\n${r.errors.join('\n')}`);
  return r.resource;
}

/** The validated spec of one document, as a plain value for deep comparisons. */
export function specOf(d: unknown): unknown {
  return valid(d).spec;
}

export const FIXTURES = fileURLToPath(new URL('../../fixtures/resources/valid/', import.meta.url));

/** The documents of a valid fixture file, e.g. `fixture('httproute')`. */
export function fixture(name: string): unknown[] {
  return parseDocuments(readFileSync(`${FIXTURES}${name}.yaml`, 'utf8'), `${name}.yaml`);
}

/** The first document of a fixture file, as a fresh mutable object. */
export function fixtureDoc(name: string): Record<string, unknown> {
  return structuredClone(fixture(name)[0]) as Record<string, unknown>;
}
