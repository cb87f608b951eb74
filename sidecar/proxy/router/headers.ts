/**
 * Compiled Gateway API HTTPHeaderFilter (RequestHeaderModifier / ResponseHeaderModifier, on a
 * route or on one backend).
 *
 * `apply` edits a lower-case HeaderMap in place, in Envoy's order: remove, then set, then add.
 * - remove deletes the field;
 * - set replaces every value of the field with one value;
 * - add appends a value: an absent field gets the value, a present one becomes an array (a new
 *   array, never the caller's, so repeated fields such as Set-Cookie stay intact).
 * Invariants: names are validated RFC 9110 tokens stored lower-case; values are validated field
 * values (no CR, LF or NUL), so nothing can throw or inject a header at request time.
 */
import type { HeaderModifier } from '../config/types.ts';
import { type ConfigLocation, invalid } from './config-error.ts';
import { TOKEN } from './match.ts';
import type { CompiledHeaderModifier, HeaderMap } from './types.ts';

// RFC 9110 §5.5 field-value: visible characters, obs-text, SP and HTAB (the set Node accepts).
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

class HeaderModifierImpl implements CompiledHeaderModifier {
  readonly #remove: readonly string[];
  readonly #setNames: readonly string[];
  readonly #setValues: readonly string[];
  readonly #addNames: readonly string[];
  readonly #addValues: readonly string[];

  constructor(
    remove: readonly string[],
    set: readonly (readonly [string, string])[],
    add: readonly (readonly [string, string])[],
  ) {
    this.#remove = remove;
    this.#setNames = set.map((entry) => entry[0]);
    this.#setValues = set.map((entry) => entry[1]);
    this.#addNames = add.map((entry) => entry[0]);
    this.#addValues = add.map((entry) => entry[1]);
  }

  apply(headers: HeaderMap): void {
    const remove = this.#remove;
    for (let i = 0; i < remove.length; i++) Reflect.deleteProperty(headers, remove[i]!);
    const setNames = this.#setNames;
    for (let i = 0; i < setNames.length; i++) headers[setNames[i]!] = this.#setValues[i]!;
    const addNames = this.#addNames;
    for (let i = 0; i < addNames.length; i++) {
      const name = addNames[i]!;
      const value = this.#addValues[i]!;
      const existing = Object.hasOwn(headers, name) ? headers[name] : undefined;
      if (existing === undefined) headers[name] = value;
      else if (Array.isArray(existing)) headers[name] = [...existing, value];
      else headers[name] = [existing, value];
    }
  }
}

function checkName(name: unknown, where: ConfigLocation, field: string): string {
  if (typeof name !== 'string' || !TOKEN.test(name)) {
    invalid(where, field, `${JSON.stringify(name)} is not a valid header name`);
  }
  return name.toLowerCase();
}

function compileValues(
  entries: HeaderModifier['set'],
  where: ConfigLocation,
  field: string,
): (readonly [string, string])[] {
  return (entries ?? []).map((entry, i) => {
    const name = checkName(entry.name, where, `${field}[${i}].name`);
    const value = typeof entry.value === 'string' ? entry.value : '';
    if (!FIELD_VALUE.test(value)) {
      invalid(
        where,
        `${field}[${i}].value`,
        'header value must not contain control characters (CR, LF, NUL)',
      );
    }
    return [name, value] as const;
  });
}

/**
 * Compiles a HeaderModifier at `field` (e.g. `requestHeaderModifier`). Returns `undefined` when
 * there is nothing to do, so callers can skip it cheaply.
 * @throws RouteConfigError for a name that is not a token or a value with control characters.
 */
export function compileHeaderModifier(
  cfg: HeaderModifier | undefined,
  where: ConfigLocation,
  field: string,
): CompiledHeaderModifier | undefined {
  if (cfg === undefined) return undefined;
  const set = compileValues(cfg.set, where, `${field}.set`);
  const add = compileValues(cfg.add, where, `${field}.add`);
  const remove = [...new Set((cfg.remove ?? []).map((n, i) => checkName(n, where, `${field}.remove[${i}]`)))];
  if (set.length === 0 && add.length === 0 && remove.length === 0) return undefined;
  return new HeaderModifierImpl(remove, set, add);
}
