/**
 * parseDocuments: YAML multi-document streams, JSON objects and arrays, Kubernetes `List`s,
 * skipped empty documents, and syntax errors that name the source, line and column.
 */
import { describe, expect, it } from 'vitest';
import { parseDocuments, sourceOf } from '../../../control-plane/resources/parse.ts';

describe('parseDocuments: what counts as a document', () => {
  it.each([
    ['one YAML document', 'kind: A\n', [{ kind: 'A' }]],
    ['YAML documents separated by ---', 'kind: A\n---\nkind: B\n', [{ kind: 'A' }, { kind: 'B' }]],
    ['a leading --- and a trailing ---', '---\nkind: A\n---\n', [{ kind: 'A' }]],
    [
      'empty and comment-only documents are skipped',
      '---\n# nothing\n---\n\n---\nkind: A\n---\n# end\n',
      [{ kind: 'A' }],
    ],
    ['an empty input', '', []],
    ['a JSON object', '{"kind": "A", "spec": {"n": 1}}', [{ kind: 'A', spec: { n: 1 } }]],
    ['a JSON array', '[{"kind": "A"}, {"kind": "B"}]', [{ kind: 'A' }, { kind: 'B' }]],
    [
      'a Kubernetes List',
      'apiVersion: v1\nkind: List\nitems:\n- {kind: A}\n- {kind: B}\n',
      [{ kind: 'A' }, { kind: 'B' }],
    ],
    [
      'a List inside a multi-document stream',
      'kind: A\n---\nkind: List\nitems: [{kind: B}]\n',
      [{ kind: 'A' }, { kind: 'B' }],
    ],
    ['YAML 1.2 scalars: yes/on stay strings', 'a: yes\nb: on\nc: 010\n', [{ a: 'yes', b: 'on', c: 10 }]],
    ['anchors and aliases', 'a: &x {n: 1}\nb: *x\n', [{ a: { n: 1 }, b: { n: 1 } }]],
  ])('%s', (_name, text, expected) => {
    expect(parseDocuments(text, 'in.yaml')).toEqual(expected);
  });

  it('keeps a non-object document for the validator to reject', () => {
    expect(parseDocuments('just a string\n', 'in.yaml')).toEqual(['just a string']);
  });
});

describe('parseDocuments: errors name the source, line and column', () => {
  it.each([
    ['duplicate keys', 'kind: A\nkind: B\n', 'route.yaml: line 2, column 1: Map keys must be unique'],
    ['an unclosed flow sequence', 'kind: A\nitems: [1, 2\n', /^route\.yaml: line 3, column 1: /],
    ['bad JSON', '{"kind": "A",, }', /^route\.yaml: line 1, column 14: /],
    [
      'a bad indentation in the second document',
      'kind: A\n---\na: b: c\n',
      /^route\.yaml: line 3, column 4: Nested mappings/,
    ],
    ['an unknown alias', 'a: *nothing\n', /^route\.yaml: document 1: Unresolved alias/],
  ])('%s', (_name, text, message) => {
    expect(() => parseDocuments(text, 'route.yaml')).toThrow(message);
  });
});

describe('sourceOf', () => {
  it('remembers where each document came from (1-based)', () => {
    const docs = parseDocuments(
      '---\n# skipped\n---\nkind: A\n---\nkind: List\nitems: [{kind: B}]\n',
      'f.yaml',
    );
    expect(docs.map(sourceOf)).toEqual(['f.yaml doc #2', 'f.yaml doc #3 items[0]']);
    expect(parseDocuments('[{"kind": "A"}]', 'f.json').map(sourceOf)).toEqual(['f.json [0]']);
    expect(sourceOf({ kind: 'A' })).toBeUndefined();
  });
});
