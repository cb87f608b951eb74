/**
 * JSON-schema checks for the Gateway API kinds, from `@kubernetes-models/gateway-api` (the CRD
 * OpenAPI schemas compiled with ajv), with its errors translated into Weft's
 * `<field path>: <reason>` form.
 *
 * The model ignores fields it does not know (the CRDs rely on the API server's pruning), so
 * unknown fields are found here by walking the input against a `FieldTree`: a literal listing of
 * the fields of each type, checked by the compiler against the model's TypeScript interfaces, so
 * it cannot fall behind a model upgrade without a type error. CEL rules are not in the model
 * either; each kind's module enforces them after this check passes.
 */
import { Issues, isPlainObject, joinPath, kindOf, show } from './schema.ts';

/** A model class: `new M(data).validate()` throws an error carrying ajv `errors`. */
export type GatewayApiModel<D> = new (data: D) => { validate(): void };

type TreeOf<V> = V extends readonly (infer E)[]
  ? TreeOf<E>
  : V extends object
    ? string extends keyof V
      ? 'map'
      : FieldTree<V>
    : true;
/** Every field of `T`, each `true` (a scalar or list of scalars), `'map'` (string map) or a nested tree. */
export type FieldTree<T> = { readonly [K in keyof T]-?: TreeOf<NonNullable<T[K]>> };
/** The runtime shape of a FieldTree. */
export type Tree = true | 'map' | { readonly [field: string]: Tree };

/** Records `unknown field` for every key of `value` that `tree` does not list. */
export function checkKnownFields(value: unknown, tree: Tree, path: string, issues: Issues): void {
  if (tree === true || tree === 'map') return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      checkKnownFields(v, tree, joinPath(path, i), issues);
    });
    return;
  }
  if (!isPlainObject(value)) return;
  for (const [key, v] of Object.entries(value)) {
    const sub = tree[key];
    if (sub === undefined)
      issues.add(joinPath(path, key), `unknown field (known: ${Object.keys(tree).join(', ')})`);
    else checkKnownFields(v, sub, joinPath(path, key), issues);
  }
}

interface AjvError {
  readonly instancePath: string;
  readonly keyword: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly message?: string;
}

/** Patterns of the Gateway API schemas, in words. */
const PATTERN_WORDS: Readonly<Record<string, string>> = {
  '^([0-9]{1,5}(h|m|s|ms)){1,4}$': 'a duration such as 10s, 1m30s or 500ms (GEP-2257)',
  '^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$':
    'a lower-case DNS hostname, optionally starting with "*." (no IPs, no port)',
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$':
    'a lower-case DNS hostname (no wildcard, no port)',
  "^[A-Za-z0-9!#$%&'*+\\-.^_\\x60|~]+$": 'an HTTP header name (RFC 9110 token)',
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$': "a DNS-1123 label (lower-case letters, digits and '-')",
  '^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$':
    'an API group ("" for core, or a DNS subdomain)',
  '^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$': "a kind name (letters, digits and '-')",
};

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
};

/** The value at a JSON pointer, and the pointer as a Weft field path (`spec.rules[0].name`). */
function resolvePointer(root: unknown, pointer: string): { path: string; value: unknown } {
  let path = '';
  let value: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(value)) {
      path = joinPath(path, Number(key));
      value = value[Number(key)];
    } else {
      path = joinPath(path, key);
      value = isPlainObject(value) ? value[key] : undefined;
    }
  }
  return { path, value };
}

/** One ajv error as a Weft issue. */
function translate(e: AjvError, root: unknown): { path: string; reason: string } {
  const { path, value } = resolvePointer(root, e.instancePath);
  const p = e.params;
  switch (e.keyword) {
    case 'required':
      return { path: joinPath(path, String(p.missingProperty)), reason: 'is required' };
    case 'type':
      return {
        path,
        reason: `must be ${TYPE_WORDS[String(p.type)] ?? String(p.type)} (got ${kindOf(value)})`,
      };
    case 'enum':
      return {
        path,
        reason: `must be one of ${(p.allowedValues as unknown[]).map(String).join(', ')} (got ${show(value)})`,
      };
    case 'minimum':
    case 'maximum':
      return { path, reason: `must be ${String(p.comparison)} ${String(p.limit)} (got ${show(value)})` };
    case 'minLength':
      return {
        path,
        reason: p.limit === 1 ? 'must not be empty' : `must be at least ${String(p.limit)} characters long`,
      };
    case 'maxLength':
      return {
        path,
        reason: `must be at most ${String(p.limit)} characters long (got ${(value as string).length})`,
      };
    case 'minItems':
      return {
        path,
        reason: p.limit === 1 ? 'must not be empty' : `must have at least ${String(p.limit)} items`,
      };
    case 'maxItems':
      return {
        path,
        reason: `must have at most ${String(p.limit)} items (got ${(value as unknown[]).length})`,
      };
    case 'maxProperties':
      return { path, reason: `must have at most ${String(p.limit)} entries` };
    case 'pattern': {
      const words = PATTERN_WORDS[String(p.pattern)];
      return {
        path,
        reason: words
          ? `must be ${words} (got ${show(value)})`
          : `must match ${String(p.pattern)} (got ${show(value)})`,
      };
    }
    case 'format':
      return {
        path,
        reason: p.format === 'int32' ? 'must be a 32-bit integer' : `must be in ${String(p.format)} format`,
      };
    default:
      return { path, reason: e.message ?? `fails ${e.keyword}` };
  }
}

/**
 * The structural check of a Gateway API spec: unknown fields, then the model's JSON schema.
 * Unknown fields under a value of the wrong type are not reported (the type error is).
 * Returns true when the spec passed both.
 */
export function checkGatewayApiSpec<D>(
  Model: GatewayApiModel<D>,
  tree: Tree,
  spec: unknown,
  meta: { readonly name: string; readonly namespace: string },
  issues: Issues,
): boolean {
  const unknown = new Issues();
  checkKnownFields(spec, tree, 'spec', unknown);
  const schema = new Issues();
  const mistyped = checkModelSchema(Model, spec, meta, schema);
  const under = (path: string) => mistyped.some((t) => path.startsWith(`${t}.`) || path.startsWith(`${t}[`));
  for (const i of unknown.list) if (!under(i.path)) issues.add(i.path, i.reason);
  for (const i of schema.list) issues.add(i.path, i.reason);
  return unknown.count === 0 && schema.count === 0;
}

/**
 * Runs the model's schema check on `{metadata, spec}` and adds each problem under `spec…`.
 * Identical problems are reported once; at a path with a type error only the type error is kept.
 * Returns the paths that had a type error.
 */
export function checkModelSchema<D>(
  Model: GatewayApiModel<D>,
  spec: unknown,
  meta: { readonly name: string; readonly namespace: string },
  issues: Issues,
): string[] {
  const mistyped: string[] = [];
  try {
    new Model({ metadata: { name: meta.name, namespace: meta.namespace }, spec } as D).validate();
  } catch (err) {
    const errors = (err as { errors?: unknown }).errors;
    if (!Array.isArray(errors)) {
      issues.add('spec', `schema check failed: ${(err as Error).message}`);
      return mistyped;
    }
    const root = { spec };
    const typed = new Set(
      errors.filter((e: AjvError) => e.keyword === 'type').map((e: AjvError) => e.instancePath),
    );
    const seen = new Set<string>();
    for (const e of errors as AjvError[]) {
      if (!e.instancePath.startsWith('/spec') && e.instancePath !== '') continue;
      if (e.keyword !== 'type' && typed.has(e.instancePath)) continue;
      const { path, reason } = translate(e, root);
      const key = `${path}\0${reason}`;
      if (seen.has(key)) continue;
      seen.add(key);
      issues.add(path, reason);
      if (e.keyword === 'type') mistyped.push(path);
    }
  }
  return mistyped;
}
