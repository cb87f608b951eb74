/**
 * Turns the text of a `weft apply -f` input into documents: YAML (one or more `---`-separated
 * documents) or JSON (an object or an array; JSON is YAML 1.2, so one parser reads both).
 *
 * - Empty documents (nothing, or only comments) are skipped.
 * - A JSON/YAML array and a Kubernetes `List` (`kind: List`, `items: […]`) contribute their
 *   items, in order.
 * - Duplicate mapping keys are errors (a silently dropped key would be a silently dropped setting).
 * - Each returned object remembers where it came from (`route.yaml doc #2`, 1-based), which
 *   `validateResources` uses to name documents in errors; see `sourceOf`.
 *
 * Spec: YAML 1.2 core schema (`yaml` package defaults: `yes`/`on` stay strings), at most 100
 * alias expansions per document.
 */
import { parseAllDocuments } from 'yaml';

const ORIGIN = new WeakMap<object, string>();

/** Where `parseDocuments` found this document (`route.yaml doc #2`, `list.json [3]`), if it did. */
export function sourceOf(doc: unknown): string | undefined {
  return typeof doc === 'object' && doc !== null ? ORIGIN.get(doc) : undefined;
}

function isList(v: unknown): v is { items: unknown[] } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return o.kind === 'List' && Array.isArray(o.items);
}

function collect(value: unknown, where: string, out: unknown[]): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      collect(v, `${where} [${i}]`, out);
    });
    return;
  }
  if (isList(value)) {
    value.items.forEach((v, i) => {
      collect(v, `${where} items[${i}]`, out);
    });
    return;
  }
  if (typeof value === 'object' && value !== null) ORIGIN.set(value, where);
  out.push(value);
}

/**
 * Parses `text` (YAML or JSON) into its documents, flattening arrays and `List`s.
 * `source` names the input in messages (a file name, `-` for stdin, `request body`).
 * @throws Error `<source>: line L, column C: <problem>` on the first syntax error, or
 *   `<source>: document N: <problem>` for a bad alias (unknown anchor, too many expansions).
 */
export function parseDocuments(text: string, source: string): unknown[] {
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [];
  const out: unknown[] = [];
  list.forEach((doc, i) => {
    const error = doc.errors[0];
    if (error !== undefined) {
      const pos = error.linePos?.[0];
      const where = pos ? `line ${pos.line}, column ${pos.col}` : `document ${i + 1}`;
      const message = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      throw new Error(`${source}: ${where}: ${message}`);
    }
    if (doc.contents === null) return;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      throw new Error(`${source}: document ${i + 1}: ${(err as Error).message}`);
    }
    if (value === null || value === undefined) return;
    collect(value, list.length > 1 || !Array.isArray(value) ? `${source} doc #${i + 1}` : source, out);
  });
  return out;
}
