/**
 * Gateway API HTTPPathModifier, shared by URLRewrite and RequestRedirect.
 *
 * - REPLACE_FULL_PATH: the whole path becomes the value.
 * - REPLACE_PREFIX_MATCH: the matched PathPrefix is replaced element-wise, trailing slashes of
 *   both the prefix and the replacement ignored, following the table in the spec
 *   (apis/v1/httproute_types.go, HTTPPathModifier.ReplacePrefixMatch):
 *     /foo/bar  prefix /foo  → /xyz/bar with /xyz or /xyz/,   → /bar with "" or /
 *     /foo      prefix /foo  → /xyz with /xyz,                → /  with "" or /
 *     /foo/     prefix /foo  → /xyz/ with /xyz,               → /  with "" or /
 *   It is only valid when every match of the route is a PathPrefix; the compiler rejects others.
 * The query string is never touched here.
 */
import type { PathModifier } from '../config/types.ts';
import { type ConfigLocation, invalid } from './config-error.ts';
import { checkPathValue, normalizePrefix } from './match.ts';

/** A compiled path modifier: the kind and the value (normalised for prefix replacement). */
export interface CompiledPathModifier {
  readonly replacePrefix: boolean;
  /** Full path, or the replacement prefix without trailing slash (`''` for `/` or empty). */
  readonly value: string;
}

/**
 * Compiles a PathModifier at `field` (e.g. `urlRewrite.path`).
 * @throws RouteConfigError for an unknown type, a full path that is not an absolute path, or a
 *   replacement prefix that is neither empty nor an absolute path.
 */
export function compilePathModifier(
  cfg: PathModifier,
  where: ConfigLocation,
  field: string,
): CompiledPathModifier {
  const value = typeof cfg.value === 'string' ? cfg.value : '';
  if (cfg.type === 'REPLACE_FULL_PATH') {
    checkPathValue(value, where, `${field}.value`);
    return { replacePrefix: false, value };
  }
  if (cfg.type === 'REPLACE_PREFIX_MATCH') {
    if (value !== '') checkPathValue(value, where, `${field}.value`);
    return { replacePrefix: true, value: normalizePrefix(value) };
  }
  return invalid(
    where,
    `${field}.type`,
    `unknown path modifier type ${String(cfg.type)} (use REPLACE_FULL_PATH or REPLACE_PREFIX_MATCH)`,
  );
}

/**
 * The new path for `path`. `matchedPrefix` is the normalised PathPrefix that matched (`''` for
 * `/`); it must be an element-wise prefix of `path`, which the router guarantees.
 */
export function applyPathModifier(mod: CompiledPathModifier, path: string, matchedPrefix: string): string {
  if (!mod.replacePrefix) return mod.value;
  const rest = path.slice(matchedPrefix.length);
  const out = mod.value + rest;
  return out.length === 0 ? '/' : out;
}

// Gateway API PreciseHostname (RFC 1123 labels, lower-case).
const PRECISE_HOSTNAME = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Lower-cases and checks a hostname for URLRewrite or RequestRedirect.
 * @throws RouteConfigError when it is not an RFC 1123 host name.
 */
export function compileHostname(hostname: string, where: ConfigLocation, field: string): string {
  const host = hostname.toLowerCase();
  if (!PRECISE_HOSTNAME.test(host) || host.length > 253) {
    invalid(where, field, `"${hostname}" is not a valid host name`);
  }
  return host;
}
