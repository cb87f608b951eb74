/**
 * What HTTPRoute and GRPCRoute share: field trees of the common types, the CEL rules of
 * gateway-api apis/v1 (shared_types.go, httproute_types.go) that the model's JSON schema lacks,
 * and the CRD defaults.
 *
 * Rules here run on schema-valid specs only (the model check ran first), so they may rely on
 * types and enums. Each records `<path>: <reason>` issues; none throws.
 */
import type { IBackendObjectReference } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/BackendObjectReference';
import type { IHTTPHeaderFilter } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPHeaderFilter';
import type { IHTTPRequestMirrorFilter } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRequestMirrorFilter';
import type { ILocalObjectReference } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/LocalObjectReference';
import type { IParentReference } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/ParentReference';
import type { ISessionPersistence } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/SessionPersistence';
import type { FieldTree } from '../gateway-api.ts';
import type {
  BackendObjectReference,
  HTTPHeaderFilter,
  HTTPRequestMirrorFilter,
  HTTPValueMatch,
  LocalObjectReference,
  ParentReference,
  SessionPersistence,
} from '../gateway-types.ts';
import { regexError } from '../names.ts';
import { type Issues, joinPath } from '../schema.ts';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';

// ---- field trees -----------------------------------------------------------------------------

export const parentRefTree = {
  group: true,
  kind: true,
  namespace: true,
  name: true,
  sectionName: true,
  port: true,
} as const satisfies FieldTree<IParentReference>;

export const backendObjectRefTree = {
  group: true,
  kind: true,
  name: true,
  namespace: true,
  port: true,
} as const satisfies FieldTree<IBackendObjectReference>;

export const localObjectRefTree = {
  group: true,
  kind: true,
  name: true,
} as const satisfies FieldTree<ILocalObjectReference>;

const headerTree = { name: true, value: true } as const;
export const headerFilterTree = {
  set: headerTree,
  add: headerTree,
  remove: true,
} as const satisfies FieldTree<IHTTPHeaderFilter>;

export const mirrorTree = {
  backendRef: backendObjectRefTree,
  percent: true,
  fraction: { numerator: true, denominator: true },
} as const satisfies FieldTree<IHTTPRequestMirrorFilter>;

export const sessionPersistenceTree = {
  sessionName: true,
  absoluteTimeout: true,
  idleTimeout: true,
  type: true,
  cookieConfig: { lifetimeType: true },
} as const satisfies FieldTree<ISessionPersistence>;

// ---- rules -----------------------------------------------------------------------------------

/** Raw (schema-valid, not yet defaulted) shapes the defaults read. */
type RawParentRef = Readonly<IParentReference>;
type RawBackendRef = Readonly<IBackendObjectReference>;

/** `core` and `""` both name the core group (GAMMA docs use `core`, conformance uses `""`). */
export function normalizeGroup(group: string | undefined, fallback: string): string {
  if (group === undefined) return fallback;
  return group === 'core' ? '' : group;
}

/**
 * CommonRouteSpec.parentRefs: two references to the same parent must both set sectionName or
 * port, and differ in them.
 */
export function checkParentRefs(refs: readonly ParentReference[], path: string, issues: Issues): void {
  const parentKey = (r: ParentReference) => `${r.group}/${r.kind}/${r.namespace ?? ''}/${r.name}`;
  const firstByParent = new Map<string, number>();
  const firstBySection = new Map<string, number>();
  refs.forEach((r, i) => {
    if (r.kind === 'Service' && r.group === GATEWAY_GROUP) {
      issues.add(
        joinPath(joinPath(path, i), 'group'),
        'a Service parent (GAMMA) is in the core group: set group "" (or core); the default gateway.networking.k8s.io has no Service kind',
      );
    }
    const parent = parentKey(r);
    const first = firstByParent.get(parent);
    if (first === undefined) firstByParent.set(parent, i);
    else {
      const f = refs[first]!;
      const consistent =
        (f.sectionName === undefined) === (r.sectionName === undefined) &&
        (f.port === undefined) === (r.port === undefined);
      if (!consistent || (r.sectionName === undefined && r.port === undefined)) {
        issues.add(
          joinPath(path, i),
          `refers to the same parent as ${joinPath(path, first)}; set sectionName or port on both (the same field on each)`,
        );
        return;
      }
    }
    const section = `${parent}#${r.sectionName ?? ''}#${r.port ?? ''}`;
    const same = firstBySection.get(section);
    if (same === undefined) firstBySection.set(section, i);
    else issues.add(joinPath(path, i), `duplicate parent reference (also at ${joinPath(path, same)})`);
  });
}

/** BackendObjectReference: a Service needs a port. */
export function checkBackendRef(ref: BackendObjectReference, path: string, issues: Issues): void {
  if (ref.group === '' && ref.kind === 'Service' && ref.port === undefined) {
    issues.add(joinPath(path, 'port'), 'is required for a Service backend');
  }
}

/**
 * HTTPHeaderFilter: names are unique within set, add and remove, and one header gets at most one
 * action (names compare case-insensitively).
 */
export function checkHeaderFilter(f: HTTPHeaderFilter, path: string, issues: Issues): void {
  const seen = new Map<string, string>();
  const visit = (name: string, where: string) => {
    const key = name.toLowerCase();
    const first = seen.get(key);
    if (first === undefined) seen.set(key, where);
    else issues.add(where, `header ${name} already has an action at ${first}; use one action per header`);
  };
  for (const [i, h] of (f.set ?? []).entries())
    visit(h.name, joinPath(joinPath(joinPath(path, 'set'), i), 'name'));
  for (const [i, h] of (f.add ?? []).entries())
    visit(h.name, joinPath(joinPath(joinPath(path, 'add'), i), 'name'));
  for (const [i, name] of (f.remove ?? []).entries()) visit(name, joinPath(joinPath(path, 'remove'), i));
}

/** HTTPRequestMirrorFilter: percent xor fraction; numerator <= denominator. */
export function checkMirror(m: HTTPRequestMirrorFilter, path: string, issues: Issues): void {
  checkBackendRef(m.backendRef, joinPath(path, 'backendRef'), issues);
  if (m.percent !== undefined && m.fraction !== undefined)
    issues.add(path, 'set only one of percent, fraction');
  if (m.fraction !== undefined) {
    const denominator = m.fraction.denominator;
    if (m.fraction.numerator > denominator) {
      issues.add(
        joinPath(joinPath(path, 'fraction'), 'numerator'),
        `must be <= denominator (${denominator}) (got ${m.fraction.numerator})`,
      );
    }
  }
}

/**
 * Filter union consistency: the member named by `type` is set and no other member is.
 * `members` maps each filter type to its member field.
 */
export function checkFilterMembers(
  f: { readonly type: string },
  members: Readonly<Record<string, string>>,
  path: string,
  issues: Issues,
): void {
  const own = members[f.type];
  const fields = f as Readonly<Record<string, unknown>>;
  for (const [type, field] of Object.entries(members)) {
    if (field !== own && fields[field] !== undefined)
      issues.add(
        joinPath(path, field),
        `must not be set when type is ${f.type} (it belongs to type ${type})`,
      );
  }
  if (own !== undefined && fields[own] === undefined)
    issues.add(joinPath(path, own), `is required when type is ${f.type}`);
}

/** A filter type may appear at most once in a list unless it is in `repeatable`. */
export function checkFilterRepeats(
  filters: readonly { readonly type: string }[],
  repeatable: ReadonlySet<string>,
  path: string,
  issues: Issues,
): void {
  const first = new Map<string, number>();
  filters.forEach((f, i) => {
    if (repeatable.has(f.type)) return;
    const at = first.get(f.type);
    if (at === undefined) first.set(f.type, i);
    else issues.add(joinPath(path, i), `${f.type} filter cannot be repeated (also at ${joinPath(path, at)})`);
  });
}

/** Header / query parameter matches: unique names; RegularExpression values compile. */
export function checkValueMatches(
  matches: readonly { readonly name: string; readonly type?: string; readonly value: string }[],
  caseInsensitive: boolean,
  what: string,
  path: string,
  issues: Issues,
): void {
  const first = new Map<string, number>();
  matches.forEach((m, i) => {
    const key = caseInsensitive ? m.name.toLowerCase() : m.name;
    const at = first.get(key);
    if (at === undefined) first.set(key, i);
    else
      issues.add(
        joinPath(joinPath(path, i), 'name'),
        `duplicate ${what} ${m.name} (also at ${joinPath(path, at)})`,
      );
    if (m.type === 'RegularExpression') {
      const why = regexError(m.value);
      if (why !== undefined) issues.add(joinPath(joinPath(path, i), 'value'), why);
    }
  });
}

/** Rule names are unique within a route; at most 128 matches across all rules. */
export function checkRules(
  rules: readonly { readonly name?: string; readonly matches?: readonly unknown[] }[],
  defaultMatches: number,
  path: string,
  issues: Issues,
): void {
  const first = new Map<string, number>();
  let total = 0;
  rules.forEach((r, i) => {
    total += r.matches?.length ?? defaultMatches;
    if (r.name === undefined) return;
    const at = first.get(r.name);
    if (at === undefined) first.set(r.name, i);
    else
      issues.add(
        joinPath(joinPath(path, i), 'name'),
        `duplicate rule name ${JSON.stringify(r.name)} (also at ${joinPath(path, at)})`,
      );
  });
  if (total > 128) issues.add(path, `must have at most 128 matches in total across all rules (got ${total})`);
}

// ---- defaults --------------------------------------------------------------------------------

export function defaultParentRef(r: RawParentRef): ParentReference {
  const kind = r.kind ?? 'Gateway';
  return { ...r, group: normalizeGroup(r.group, GATEWAY_GROUP), kind };
}

export function defaultBackendObjectRef(r: RawBackendRef): BackendObjectReference {
  return { ...r, group: normalizeGroup(r.group, ''), kind: r.kind ?? 'Service' };
}

export function defaultLocalObjectRef(r: Readonly<ILocalObjectReference>): LocalObjectReference {
  return r as LocalObjectReference;
}

export function defaultHeaderFilter(f: Readonly<IHTTPHeaderFilter>): HTTPHeaderFilter {
  return f as HTTPHeaderFilter;
}

export function defaultMirror(m: Readonly<IHTTPRequestMirrorFilter>): HTTPRequestMirrorFilter {
  const out: HTTPRequestMirrorFilter = {
    ...m,
    backendRef: defaultBackendObjectRef(m.backendRef),
  } as HTTPRequestMirrorFilter;
  if (m.fraction === undefined) return out;
  return {
    ...out,
    fraction: { numerator: m.fraction.numerator, denominator: m.fraction.denominator ?? 100 },
  };
}

export function defaultValueMatch(m: {
  readonly name: string;
  readonly type?: string;
  readonly value: string;
}): HTTPValueMatch {
  return { ...m, type: (m.type ?? 'Exact') as HTTPValueMatch['type'] };
}

export function defaultSessionPersistence(s: Readonly<ISessionPersistence>): SessionPersistence {
  const out = { ...s, type: s.type ?? 'Cookie' } as SessionPersistence;
  if (s.cookieConfig === undefined) return out;
  return { ...out, cookieConfig: { lifetimeType: s.cookieConfig.lifetimeType ?? 'Session' } };
}
