/**
 * The RBAC filter (`weft.filters.http.rbac`): a listener's `Rbac` config (Istio
 * AuthorizationPolicy semantics, proto/weft/v1/config.proto) compiled once into matchers, and the
 * per-request decision.
 *
 * Decision, in order:
 * 1. DENY rules: the first rule that matches denies (403 `RBAC_DENIED`, detail: the rule's name).
 * 2. ALLOW rules, when enforced (`allowEnforced`, or any ALLOW rule present, so that a hand-written
 *    config listing ALLOW rules never silently allows everything): the request must match one,
 *    else 403 `RBAC_DENIED` with detail `no ALLOW rule matched`. No ALLOW rule and enforcement on
 *    denies everything (Istio: an ALLOW policy without rules).
 * 3. Otherwise the request continues.
 *
 * A rule matches when one of `from` matches (or it is empty), one of `to` matches (or it is empty)
 * and every `when` holds. Within a source, operation or condition every present list must hold
 * (AND); within a list any value (OR); a `not*` list holds when no value matches. An empty list is
 * the same as an absent one (proto3 cannot tell them apart).
 *
 * Values are globs as in Istio: `*` alone (any present value), `prefix*`, `*suffix`, or exact.
 * - Principals are compared without `spiffe://` (`cluster.local/ns/default/sa/web`), on either
 *   side. A request without a verified peer (`sourcePrincipal` '') has no principal and no
 *   namespace: `principals`/`namespaces` (even `*`) never match it, `notPrincipals`/
 *   `notNamespaces` always do.
 * - The source namespace is the `/ns/<ns>/` segment of the principal.
 * - Methods are case-sensitive (RFC 9110 §9.1).
 * - Paths are matched on the normalized path (http/normalize.ts: unreserved percent-decoding,
 *   merged slashes, RFC 3986 §5.2.4 dot-segment removal; `%2F` is not a separator), query excluded.
 * - Header conditions: names case-insensitive; the value as Node joined repeated fields (`, `);
 *   an absent header matches no value, so `values` fails and `notValues` holds.
 *
 * Invariants: every invalid value is rejected by `compileRbac` (an `RbacConfigError` naming the
 * field), never at request time. Hot path: no regex, no closure, no result allocation; verdicts
 * and filter results are precomputed per rule; the path is normalized only when some rule looks
 * at paths, the principal parsed only when some rule has a `from`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Rbac, RbacCondition, RbacOperation, RbacRule, RbacSource } from '../config/types.ts';
import type { RequestContext } from '../http/context.ts';
import { normalizePath } from '../http/normalize.ts';
import { TOKEN } from '../router/match.ts';
import { CONTINUE, type FilterResult, type HttpFilter } from './filter.ts';

export const RBAC_FILTER_NAME = 'weft.filters.http.rbac';
/** The detail of a denial because ALLOW rules are enforced and none matched. */
export const NO_ALLOW_RULE = 'no ALLOW rule matched';

const SPIFFE_SCHEME = 'spiffe://';

/** A config value the RBAC compiler rejects; `field` is relative to the listener, e.g. `rbac.deny[0].to[0].paths[1]`. */
export class RbacConfigError extends Error {
  readonly field: string;
  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'RbacConfigError';
    this.field = field;
  }
}

const GlobKind = { Exact: 0, Prefix: 1, Suffix: 2, Any: 3 } as const;
type GlobKind = (typeof GlobKind)[keyof typeof GlobKind];

/** One compiled value: `*`, `prefix*`, `*suffix` or exact; `value` is the part without `*`. */
interface Glob {
  readonly kind: GlobKind;
  readonly value: string;
}

/** A compiled value list; `undefined` when the field is absent or empty (no condition). */
type Globs = readonly Glob[] | undefined;

interface CompiledSource {
  readonly principals: Globs;
  readonly notPrincipals: Globs;
  readonly namespaces: Globs;
  readonly notNamespaces: Globs;
}

interface CompiledOperation {
  readonly methods: Globs;
  readonly notMethods: Globs;
  readonly paths: Globs;
  readonly notPaths: Globs;
}

interface CompiledCondition {
  /** Lower-case header name. */
  readonly header: string;
  readonly values: Globs;
  readonly notValues: Globs;
}

/** The outcome of one authorization: allowed or not, and why (a rule name, or `NO_ALLOW_RULE`). */
export interface RbacVerdict {
  readonly allowed: boolean;
  /** The rule that decided ('' when nothing is enforced and no DENY rule matched). */
  readonly reason: string;
  /** What the filter answers: `CONTINUE` or a frozen `RBAC_DENIED` failure. */
  readonly result: FilterResult;
}

interface CompiledRule {
  readonly name: string;
  readonly from: readonly CompiledSource[];
  readonly to: readonly CompiledOperation[];
  readonly when: readonly CompiledCondition[];
  /** Precomputed: what a match of this rule means. */
  readonly verdict: RbacVerdict;
}

/** An `Rbac` config ready for `authorize`; immutable. */
export interface CompiledRbac {
  readonly deny: readonly CompiledRule[];
  readonly allow: readonly CompiledRule[];
  readonly allowEnforced: boolean;
  /** Some rule looks at paths: normalize the request path. */
  readonly usesPaths: boolean;
  /** Some rule has a source: derive principal and namespace. */
  readonly usesSource: boolean;
}

const ALLOWED: RbacVerdict = Object.freeze({ allowed: true, reason: '', result: CONTINUE });

function denied(reason: string): RbacVerdict {
  const result = Object.freeze({ kind: 'error', error: 'RBAC_DENIED', detail: reason } as const);
  return Object.freeze({ allowed: false, reason, result });
}

const NO_ALLOW: RbacVerdict = denied(NO_ALLOW_RULE);

// ---- compiling -------------------------------------------------------------------------------

/** `spiffe://td/ns/a/sa/b` → `td/ns/a/sa/b`; anything else unchanged. */
function withoutScheme(principal: string): string {
  return principal.startsWith(SPIFFE_SCHEME) ? principal.slice(SPIFFE_SCHEME.length) : principal;
}

function compileGlob(value: string, field: string): Glob {
  if (value === '') throw new RbacConfigError(field, 'must not be empty');
  if (value === '*') return { kind: GlobKind.Any, value: '' };
  const suffix = value.startsWith('*');
  const prefix = !suffix && value.endsWith('*');
  const core = suffix ? value.slice(1) : prefix ? value.slice(0, -1) : value;
  if (core.includes('*')) {
    throw new RbacConfigError(field, `may hold "*" only at its start or end (got ${JSON.stringify(value)})`);
  }
  return { kind: suffix ? GlobKind.Suffix : prefix ? GlobKind.Prefix : GlobKind.Exact, value: core };
}

function compileGlobs(
  values: readonly string[] | undefined,
  field: string,
  map?: (v: string) => string,
): Globs {
  if (values === undefined || values.length === 0) return undefined;
  return Object.freeze(values.map((v, i) => compileGlob(map ? map(v) : v, `${field}[${i}]`)));
}

function compileSource(s: RbacSource, field: string): CompiledSource {
  return {
    principals: compileGlobs(s.principals, `${field}.principals`, withoutScheme),
    notPrincipals: compileGlobs(s.notPrincipals, `${field}.notPrincipals`, withoutScheme),
    namespaces: compileGlobs(s.namespaces, `${field}.namespaces`),
    notNamespaces: compileGlobs(s.notNamespaces, `${field}.notNamespaces`),
  };
}

function compileOperation(o: RbacOperation, field: string): CompiledOperation {
  return {
    methods: compileGlobs(o.methods, `${field}.methods`),
    notMethods: compileGlobs(o.notMethods, `${field}.notMethods`),
    paths: compileGlobs(o.paths, `${field}.paths`),
    notPaths: compileGlobs(o.notPaths, `${field}.notPaths`),
  };
}

function compileCondition(c: RbacCondition, field: string): CompiledCondition {
  if (typeof c.header !== 'string' || !TOKEN.test(c.header)) {
    throw new RbacConfigError(`${field}.header`, `must be a header name (got ${JSON.stringify(c.header)})`);
  }
  const values = compileGlobs(c.values, `${field}.values`);
  const notValues = compileGlobs(c.notValues, `${field}.notValues`);
  if (values === undefined && notValues === undefined) {
    throw new RbacConfigError(field, 'set values or notValues');
  }
  return { header: c.header.toLowerCase(), values, notValues };
}

function compileRule(r: RbacRule, field: string, action: 'deny' | 'allow'): CompiledRule {
  const name = r.name || field;
  return {
    name,
    from: Object.freeze((r.from ?? []).map((s, i) => compileSource(s, `${field}.from[${i}]`))),
    to: Object.freeze((r.to ?? []).map((o, i) => compileOperation(o, `${field}.to[${i}]`))),
    when: Object.freeze((r.when ?? []).map((c, i) => compileCondition(c, `${field}.when[${i}]`))),
    verdict:
      action === 'deny' ? denied(name) : Object.freeze({ allowed: true, reason: name, result: CONTINUE }),
  };
}

/**
 * Compiles `rbac` once, for every request of a config version.
 * @throws RbacConfigError naming the field (`rbac.allow[1].when[0].header: …`) for a `*` inside a
 *   value, an empty value, an invalid header name, or a condition with neither values nor notValues.
 */
export function compileRbac(rbac: Rbac): CompiledRbac {
  const deny = (rbac.deny ?? []).map((r, i) => compileRule(r, `rbac.deny[${i}]`, 'deny'));
  const allow = (rbac.allow ?? []).map((r, i) => compileRule(r, `rbac.allow[${i}]`, 'allow'));
  const rules = [...deny, ...allow];
  return Object.freeze({
    deny: Object.freeze(deny),
    allow: Object.freeze(allow),
    allowEnforced: rbac.allowEnforced === true || allow.length > 0,
    usesPaths: rules.some((r) => r.to.some((o) => o.paths !== undefined || o.notPaths !== undefined)),
    usesSource: rules.some((r) => r.from.length > 0),
  });
}

// ---- matching --------------------------------------------------------------------------------

/** The request as the rules see it (one per request). `undefined`: the value is absent. */
interface Subject {
  readonly principal: string | undefined;
  readonly namespace: string | undefined;
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

function globMatches(g: Glob, v: string): boolean {
  switch (g.kind) {
    case GlobKind.Exact:
      return v === g.value;
    case GlobKind.Prefix:
      return v.startsWith(g.value);
    case GlobKind.Suffix:
      return v.endsWith(g.value);
    default:
      return true;
  }
}

/** True when `v` is present and some glob matches it. */
function anyMatches(globs: readonly Glob[], v: string | undefined): boolean {
  if (v === undefined) return false;
  for (const g of globs) if (globMatches(g, v)) return true;
  return false;
}

/** A present list must match; a present `not` list must not. */
function holds(yes: Globs, no: Globs, v: string | undefined): boolean {
  return (yes === undefined || anyMatches(yes, v)) && (no === undefined || !anyMatches(no, v));
}

function sourceMatches(s: CompiledSource, x: Subject): boolean {
  return (
    holds(s.principals, s.notPrincipals, x.principal) && holds(s.namespaces, s.notNamespaces, x.namespace)
  );
}

function operationMatches(o: CompiledOperation, x: Subject): boolean {
  return holds(o.methods, o.notMethods, x.method) && holds(o.paths, o.notPaths, x.path);
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function anySource(from: readonly CompiledSource[], x: Subject): boolean {
  for (const s of from) if (sourceMatches(s, x)) return true;
  return false;
}

function anyOperation(to: readonly CompiledOperation[], x: Subject): boolean {
  for (const o of to) if (operationMatches(o, x)) return true;
  return false;
}

function ruleMatches(r: CompiledRule, x: Subject): boolean {
  if (r.from.length > 0 && !anySource(r.from, x)) return false;
  if (r.to.length > 0 && !anyOperation(r.to, x)) return false;
  for (const c of r.when) if (!holds(c.values, c.notValues, headerValue(x.headers, c.header))) return false;
  return true;
}

/** `td/ns/<ns>/...` → `<ns>`; undefined when the principal has no namespace segment. */
function namespaceOf(principal: string): string | undefined {
  const at = principal.indexOf('/ns/');
  if (at === -1) return undefined;
  const start = at + 4;
  const end = principal.indexOf('/', start);
  const ns = end === -1 ? principal.slice(start) : principal.slice(start, end);
  return ns === '' ? undefined : ns;
}

/**
 * Authorizes one request.
 * @param sourcePrincipal the verified peer's SPIFFE ID (with or without `spiffe://`), '' when none.
 * @param method the request method as received.
 * @param path the request path as received, without the query (normalized here when needed).
 * @param headers the request headers (lower-case names, as Node parses them).
 */
export function authorize(
  rbac: CompiledRbac,
  sourcePrincipal: string,
  method: string,
  path: string,
  headers: IncomingHttpHeaders,
): RbacVerdict {
  if (rbac.deny.length === 0 && !rbac.allowEnforced) return ALLOWED;
  let principal: string | undefined;
  let namespace: string | undefined;
  if (rbac.usesSource && sourcePrincipal !== '') {
    principal = withoutScheme(sourcePrincipal);
    namespace = namespaceOf(principal);
  }
  const x: Subject = {
    principal,
    namespace,
    method,
    path: rbac.usesPaths ? normalizePath(path) : path,
    headers,
  };
  for (const r of rbac.deny) if (ruleMatches(r, x)) return r.verdict;
  if (!rbac.allowEnforced) return ALLOWED;
  for (const r of rbac.allow) if (ruleMatches(r, x)) return r.verdict;
  return NO_ALLOW;
}

class RbacFilter implements HttpFilter {
  readonly name = RBAC_FILTER_NAME;
  readonly #rbac: CompiledRbac;

  constructor(rbac: CompiledRbac) {
    this.#rbac = rbac;
  }

  onRequest(ctx: RequestContext): FilterResult {
    // The pipeline parses the target (routeRequest) before any filter runs.
    const path = ctx.routeRequest?.path ?? '';
    const { req } = ctx;
    return authorize(this.#rbac, ctx.sourcePrincipal, req.method ?? '', path, req.headers).result;
  }
}

/**
 * The RBAC filter for one listener's `rbac` config, compiled now.
 * @throws RbacConfigError when the config has an invalid value (see `compileRbac`).
 */
export function createRbacFilter(rbac: Rbac): HttpFilter {
  return new RbacFilter(compileRbac(rbac));
}
