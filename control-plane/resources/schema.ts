/**
 * A small declarative schema kit for Weft's own kinds, JSON-Schema-like: objects with known
 * fields (unknown fields are errors), required / optional / defaulted fields, strings, integers,
 * enums, lists, maps, durations, and refinements for cross-field rules.
 *
 * `check` never throws and never mutates its input: it returns a fresh value with defaults
 * applied, or `undefined` after recording at least one issue. Every issue carries the field path
 * in the user's terms (`spec.ports[1].port`) and a reason (`must be 1..65535 (got 70000)`).
 * A field set to `null` counts as absent (as in Kubernetes). Refinements run only when the
 * value they refine passed its own checks, so they may assume its shape.
 */
import { parseDurationMs } from './duration.ts';

/** One problem: where (`spec.rules[0].timeouts`) and why. */
export interface Issue {
  readonly path: string;
  readonly reason: string;
}

/** Collects issues while a resource is checked. */
export class Issues {
  readonly list: Issue[] = [];
  add(path: string, reason: string): void {
    this.list.push({ path, reason });
  }
  get count(): number {
    return this.list.length;
  }
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** `joinPath('spec', 'ports')` → `spec.ports`; `joinPath('spec.ports', 1)` → `spec.ports[1]`. */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (!IDENT.test(key)) return `${base}[${JSON.stringify(key)}]`;
  return base === '' ? key : `${base}.${key}`;
}

/** A JSON value's kind in words, for "must be X (got Y)". */
export function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number') return `number ${v}`;
  return `${typeof v} ${String(v)}`;
}

/** Short rendering of a user value inside a reason. */
export function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A checker for values of type `T`. */
export interface Schema<T> {
  /** What a valid value looks like, in words ("an integer 1..65535"). */
  readonly describe: string;
  /** Returns the checked copy (defaults applied), or `undefined` after adding issues at `path`. */
  check(value: unknown, path: string, issues: Issues): T | undefined;
}

/** A field that may be absent; absent stays absent. */
export interface Optional<T> {
  readonly tag: 'optional';
  readonly schema: Schema<T>;
}
/** A field that may be absent in input and is always present in output. */
export interface Defaulted<T> {
  readonly tag: 'default';
  readonly schema: Schema<T>;
  readonly value: T;
}

export function optional<T>(schema: Schema<T>): Optional<T> {
  return { tag: 'optional', schema };
}
export function withDefault<T>(schema: Schema<T>, value: NoInfer<T>): Defaulted<T> {
  return { tag: 'default', schema, value };
}

type AnyField = Schema<unknown> | Optional<unknown> | Defaulted<unknown>;
type Shape = Readonly<Record<string, AnyField>>;
type OutOf<F> =
  F extends Optional<infer T> ? T : F extends Defaulted<infer T> ? T : F extends Schema<infer T> ? T : never;
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends Optional<unknown> ? K : never }[keyof S];
type RequiredKeys<S extends Shape> = Exclude<keyof S, OptionalKeys<S>>;
type Flatten<T> = { [K in keyof T]: T[K] } & {};
/** The checked value of `obj(shape)`. */
export type ObjOut<S extends Shape> = Flatten<
  { readonly [K in RequiredKeys<S>]: OutOf<S[K]> } & { readonly [K in OptionalKeys<S>]?: OutOf<S[K]> }
>;

function fail<T>(issues: Issues, path: string, reason: string): T | undefined {
  issues.add(path, reason);
  return undefined;
}

/**
 * An object with exactly these fields. Options: `refine` for rules across fields (runs only
 * when every field passed); `describe` for docs.
 */
export function obj<S extends Shape>(
  shape: S,
  opts: {
    readonly refine?: (v: ObjOut<S>, path: string, issues: Issues) => void;
    readonly describe?: string;
  } = {},
): Schema<ObjOut<S>> {
  const known = Object.keys(shape);
  return {
    describe: opts.describe ?? 'an object',
    check(value, path, issues) {
      if (!isPlainObject(value)) return fail(issues, path, `must be an object (got ${kindOf(value)})`);
      const before = issues.count;
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value)) {
        if (!(key in shape)) issues.add(joinPath(path, key), `unknown field (known: ${known.join(', ')})`);
      }
      for (const key of known) {
        const field = shape[key]!;
        const raw = value[key];
        const fpath = joinPath(path, key);
        if (raw === undefined || raw === null) {
          if ('tag' in field) {
            if (field.tag === 'default') out[key] = structuredClone(field.value);
            continue;
          }
          issues.add(fpath, 'is required');
          continue;
        }
        const schema = 'tag' in field ? field.schema : field;
        const checked = schema.check(raw, fpath, issues);
        if (checked !== undefined) out[key] = checked;
      }
      if (issues.count > before) return undefined;
      const result = out as ObjOut<S>;
      opts.refine?.(result, path, issues);
      return issues.count > before ? undefined : result;
    },
  };
}

/** Adds a rule to a schema; the rule runs only on values that passed `schema`. */
export function refine<T>(
  schema: Schema<T>,
  rule: (v: T, path: string, issues: Issues) => void,
  describe?: string,
): Schema<T> {
  return {
    describe: describe ?? schema.describe,
    check(value, path, issues) {
      const checked = schema.check(value, path, issues);
      if (checked === undefined) return undefined;
      const before = issues.count;
      rule(checked, path, issues);
      return issues.count > before ? undefined : checked;
    },
  };
}

export interface StrOptions {
  readonly minLength?: number;
  readonly maxLength?: number;
  /** Pattern the whole string must match, with its description for the error. */
  readonly pattern?: RegExp;
  /** Words for the expected form, e.g. "a DNS-1123 label". */
  readonly describe?: string;
  /** Extra rule: returns a reason when the string is invalid. */
  readonly rule?: (s: string) => string | undefined;
}

/** A schema whose checked value is then reshaped by `fn` (e.g. to fill a default from a sibling). */
export function transform<T, U>(schema: Schema<T>, fn: (v: T) => U): Schema<U> {
  return {
    describe: schema.describe,
    check(value, path, issues) {
      const checked = schema.check(value, path, issues);
      return checked === undefined ? undefined : fn(checked);
    },
  };
}

/** A string. Without `minLength`, the empty string is allowed. */
export function str(o: StrOptions = {}): Schema<string> {
  const describe = o.describe ?? 'a string';
  return {
    describe,
    check(value, path, issues) {
      if (typeof value !== 'string') return fail(issues, path, `must be ${describe} (got ${kindOf(value)})`);
      if (o.minLength !== undefined && value.length < o.minLength) {
        return fail(
          issues,
          path,
          o.minLength === 1 ? 'must not be empty' : `must be at least ${o.minLength} characters long`,
        );
      }
      if (o.maxLength !== undefined && value.length > o.maxLength) {
        return fail(issues, path, `must be at most ${o.maxLength} characters long (got ${value.length})`);
      }
      if (o.pattern !== undefined && !o.pattern.test(value)) {
        return fail(issues, path, `must be ${describe} (got ${show(value)})`);
      }
      const why = o.rule?.(value);
      if (why !== undefined) return fail(issues, path, `${why} (got ${show(value)})`);
      return value;
    },
  };
}

/** One of the listed strings (case-sensitive). */
export function enumOf<const V extends string>(...values: readonly V[]): Schema<V> {
  const set = new Set<string>(values);
  const describe = `one of ${values.join(', ')}`;
  return {
    describe,
    check(value, path, issues) {
      if (typeof value !== 'string' || !set.has(value))
        return fail(issues, path, `must be ${describe} (got ${show(value)})`);
      return value as V;
    },
  };
}

/** An integer within [min, max] (inclusive). */
export function int(min = 0, max = 2 ** 31 - 1): Schema<number> {
  const describe = max >= 2 ** 31 - 1 ? `an integer >= ${min}` : `an integer ${min}..${max}`;
  return {
    describe,
    check(value, path, issues) {
      if (typeof value !== 'number' || !Number.isInteger(value))
        return fail(issues, path, `must be ${describe} (got ${kindOf(value)})`);
      if (value < min || value > max) return fail(issues, path, `must be ${describe} (got ${value})`);
      return value;
    },
  };
}

/** A number (fractions allowed) within [min, max]. */
export function num(min: number, max: number): Schema<number> {
  const describe = `a number ${min}..${max}`;
  return {
    describe,
    check(value, path, issues) {
      if (typeof value !== 'number' || !Number.isFinite(value))
        return fail(issues, path, `must be ${describe} (got ${kindOf(value)})`);
      if (value < min || value > max) return fail(issues, path, `must be ${describe} (got ${value})`);
      return value;
    },
  };
}

/** Any value, kept as is (for fields that are accepted and then ignored). */
export function anything(): Schema<unknown> {
  return { describe: 'any value', check: (value) => value };
}

export function bool(): Schema<boolean> {
  return {
    describe: 'true or false',
    check(value, path, issues) {
      if (typeof value !== 'boolean')
        return fail(issues, path, `must be true or false (got ${kindOf(value)})`);
      return value;
    },
  };
}

export interface ListOptions<T> {
  readonly minItems?: number;
  readonly maxItems?: number;
  /**
   * Items must be unique by each of these keys; `what` names the key in the error ("port"),
   * `field` (optional) is the item field the error points at.
   */
  readonly uniqueBy?: readonly UniqueKey<T>[];
}

/** A list of items. */
export function list<T>(item: Schema<T>, o: ListOptions<T> = {}): Schema<readonly T[]> {
  return {
    describe: `a list of ${item.describe}`,
    check(value, path, issues) {
      if (!Array.isArray(value)) return fail(issues, path, `must be a list (got ${kindOf(value)})`);
      if (o.minItems !== undefined && value.length < o.minItems) {
        return fail(
          issues,
          path,
          o.minItems === 1 ? 'must not be empty' : `must have at least ${o.minItems} items`,
        );
      }
      if (o.maxItems !== undefined && value.length > o.maxItems) {
        return fail(issues, path, `must have at most ${o.maxItems} items (got ${value.length})`);
      }
      const before = issues.count;
      const out: T[] = [];
      value.forEach((v, i) => {
        const checked = item.check(v, joinPath(path, i), issues);
        if (checked !== undefined) out.push(checked);
      });
      if (issues.count > before) return undefined;
      for (const u of o.uniqueBy ?? []) checkUnique(out, path, u, issues);
      return issues.count > before ? undefined : out;
    },
  };
}

export interface UniqueKey<T> {
  readonly key: (item: T) => string | undefined;
  readonly what: string;
  readonly field?: string;
}

/** Records a `duplicate` issue for each item whose key was already seen (undefined keys are skipped). */
export function checkUnique<T>(items: readonly T[], path: string, u: UniqueKey<T>, issues: Issues): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const k = u.key(item);
    if (k === undefined) return;
    const first = seen.get(k);
    const at = u.field === undefined ? joinPath(path, i) : joinPath(joinPath(path, i), u.field);
    if (first === undefined) seen.set(k, i);
    else issues.add(at, `duplicate ${u.what} ${k} (also at ${joinPath(path, first)})`);
  });
}

/** A string-keyed map (labels, selectors). */
export function map<V>(
  value: Schema<V>,
  key: Schema<string> = str({ minLength: 1 }),
  maxEntries?: number,
): Schema<Readonly<Record<string, V>>> {
  return {
    describe: `a map of ${value.describe}`,
    check(v, path, issues) {
      if (!isPlainObject(v)) return fail(issues, path, `must be a map (got ${kindOf(v)})`);
      const entries = Object.entries(v);
      if (maxEntries !== undefined && entries.length > maxEntries) {
        return fail(issues, path, `must have at most ${maxEntries} entries (got ${entries.length})`);
      }
      const before = issues.count;
      const out: Record<string, V> = {};
      for (const [k, raw] of entries) {
        const kpath = joinPath(path, k);
        const keyIssues = new Issues();
        key.check(k, kpath, keyIssues);
        for (const issue of keyIssues.list) issues.add(path, `key ${show(k)}: ${issue.reason}`);
        const checked = value.check(raw, kpath, issues);
        if (checked !== undefined) out[k] = checked;
      }
      return issues.count > before ? undefined : out;
    },
  };
}

/** A GEP-2257 duration string (`10s`, `1m30s`, `500ms`), optionally bounded (inclusive). */
export function duration(bounds: { readonly min?: string; readonly max?: string } = {}): Schema<string> {
  const minMs = bounds.min === undefined ? undefined : parseDurationMs(bounds.min);
  const maxMs = bounds.max === undefined ? undefined : parseDurationMs(bounds.max);
  const range =
    minMs !== undefined && maxMs !== undefined
      ? ` ${bounds.min}..${bounds.max}`
      : minMs !== undefined
        ? ` of at least ${bounds.min}`
        : maxMs !== undefined
          ? ` of at most ${bounds.max}`
          : '';
  const describe = `a duration${range} such as 10s, 1m30s or 500ms (GEP-2257)`;
  return {
    describe,
    check(value, path, issues) {
      if (typeof value !== 'string') return fail(issues, path, `must be ${describe} (got ${kindOf(value)})`);
      let ms: number;
      try {
        ms = parseDurationMs(value);
      } catch {
        return fail(issues, path, `must be ${describe} (got ${show(value)})`);
      }
      if ((minMs !== undefined && ms < minMs) || (maxMs !== undefined && ms > maxMs)) {
        return fail(issues, path, `must be ${describe} (got ${show(value)})`);
      }
      return value;
    },
  };
}

/** Requires exactly one (or, with `atMostOne`, at most one) of the named fields to be set. */
export function exactlyOneOf(
  v: object,
  fields: readonly string[],
  path: string,
  issues: Issues,
  atMostOne = false,
): void {
  const set = fields.filter((f) => (v as Record<string, unknown>)[f] !== undefined);
  if (set.length > 1) issues.add(path, `set only one of ${fields.join(', ')} (got ${set.join(' and ')})`);
  else if (set.length === 0 && !atMostOne) issues.add(path, `set one of ${fields.join(', ')}`);
}
