/**
 * validateResources: one apply as a batch. Errors of every document, documents named by where
 * parseDocuments found them, and no kind/namespace/name twice in one batch.
 */
import { describe, expect, it } from 'vitest';
import { parseDocuments } from '../../../control-plane/resources/parse.ts';
import { validateResources } from '../../../control-plane/resources/validate.ts';
import { doc } from './helpers.ts';

const svc = (name: string, namespace?: string) => ({
  ...doc('Service', { ports: [{ port: 80 }] }, name),
  metadata: namespace === undefined ? { name } : { name, namespace },
});

describe('validateResources', () => {
  it('returns the valid resources in order and the errors of the others', () => {
    const { resources, errors } = validateResources([
      svc('a'),
      { kind: 'Nope' },
      svc('b'),
      doc('Service', { ports: [{ port: 0 }] }, 'c'),
    ]);
    expect(resources.map((r) => r.metadata.name)).toEqual(['a', 'b']);
    expect(errors).toEqual([
      expect.stringMatching(/^doc #2: kind: unknown kind "Nope"/),
      'Service default/c: spec.ports[0].port: must be an integer 1..65535 (got 0)',
    ]);
  });

  it.each([
    [
      'the same name in one namespace',
      [svc('a'), svc('a')],
      ['Service default/a: metadata.name: defined twice in this apply (doc #1 and doc #2)'],
    ],
    [
      'the default namespace spelled out',
      [svc('a'), svc('a', 'default')],
      ['Service default/a: metadata.name: defined twice in this apply (doc #1 and doc #2)'],
    ],
  ])('rejects %s', (_name, docs, expected) => {
    expect(validateResources(docs).errors).toEqual(expected);
  });

  it.each([
    ['different namespaces', [svc('a', 'x'), svc('a', 'y')]],
    ['different kinds with one name', [svc('a'), doc('AuthorizationPolicy', {}, 'a')]],
  ])('accepts %s', (_name, docs) => {
    const { resources, errors } = validateResources(docs);
    expect(errors).toEqual([]);
    expect(resources).toHaveLength(2);
  });

  it('names documents by file and position when they came from parseDocuments', () => {
    const text =
      'apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n---\nkind: Foo\n---\napiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 81}]}\n';
    expect(validateResources(parseDocuments(text, 'app.yaml')).errors).toEqual([
      expect.stringMatching(/^app\.yaml doc #2: kind: unknown kind "Foo"/),
      'Service default/a: metadata.name: defined twice in this apply (app.yaml doc #1 and app.yaml doc #3)',
    ]);
  });
});
