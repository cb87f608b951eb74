/**
 * `GRPCRoute` (gateway.networking.k8s.io/v1): schema check by `@kubernetes-models/gateway-api`,
 * unknown fields, CRD defaults, then the CEL rules of apis/v1/grpcroute_types.go:
 * - a method match sets service, method or both; Exact values are a proto package-qualified
 *   service name and a method identifier; RegularExpression values must compile;
 * - filters: the member named by `type` is set and no other; header modifiers at most once;
 * - header match names unique per match (case-insensitive); rule names unique; at most 128
 *   matches across the rules; backendRefs to Services have a port.
 * Defaults: method/header match type Exact, backendRef group "" / kind Service / weight 1,
 * parentRef group gateway.networking.k8s.io / kind Gateway. A rule without matches matches every
 * request (no default match is added, as in the CRD).
 */
import { GRPCRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GRPCRoute';
import type { IGRPCRouteFilter } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GRPCRouteFilter';
import type { IGRPCRouteRule } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GRPCRouteRule';
import type { IGRPCRouteSpec } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GRPCRouteSpec';
import { checkGatewayApiSpec, type FieldTree } from '../gateway-api.ts';
import type { GRPCMethodMatch, GRPCRouteFilter, GRPCRouteRule, GRPCRouteSpec } from '../gateway-types.ts';
import { regexError } from '../names.ts';
import { type Issues, joinPath } from '../schema.ts';
import type { KindHandler } from './kind.ts';
import {
  backendObjectRefTree,
  checkBackendRef,
  checkFilterMembers,
  checkFilterRepeats,
  checkHeaderFilter,
  checkMirror,
  checkParentRefs,
  checkRules,
  checkValueMatches,
  defaultBackendObjectRef,
  defaultMirror,
  defaultParentRef,
  defaultSessionPersistence,
  defaultValueMatch,
  headerFilterTree,
  localObjectRefTree,
  mirrorTree,
  parentRefTree,
  sessionPersistenceTree,
} from './route-common.ts';

const filterTree = {
  type: true,
  requestHeaderModifier: headerFilterTree,
  responseHeaderModifier: headerFilterTree,
  requestMirror: mirrorTree,
  extensionRef: localObjectRefTree,
} as const satisfies FieldTree<IGRPCRouteFilter>;

/** Every field of GRPCRouteSpec the model knows. */
export const grpcRouteSpecTree = {
  parentRefs: parentRefTree,
  useDefaultGateways: true,
  hostnames: true,
  rules: {
    name: true,
    matches: {
      method: { type: true, service: true, method: true },
      headers: { type: true, name: true, value: true },
    },
    filters: filterTree,
    backendRefs: { ...backendObjectRefTree, weight: true, filters: filterTree },
    sessionPersistence: sessionPersistenceTree,
  },
} as const satisfies FieldTree<IGRPCRouteSpec>;

const MEMBERS: Readonly<Record<string, string>> = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestMirror: 'requestMirror',
  ExtensionRef: 'extensionRef',
};
const REPEATABLE: ReadonlySet<string> = new Set(['RequestMirror', 'ExtensionRef']);

/** Proto service names (`helloworld.Greeter`), case-insensitive as in the CRD. */
const SERVICE = /^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$/i;
const METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

function defaultFilter(f: Readonly<IGRPCRouteFilter>): GRPCRouteFilter {
  if (f.requestMirror !== undefined)
    return { ...f, requestMirror: defaultMirror(f.requestMirror) } as GRPCRouteFilter;
  return f as GRPCRouteFilter;
}

function defaultRule(r: Readonly<IGRPCRouteRule>): GRPCRouteRule {
  const out: Record<string, unknown> = { ...r };
  if (r.matches) {
    out.matches = r.matches.map((m) => {
      const match: Record<string, unknown> = { ...m };
      if (m.method) match.method = { ...m.method, type: m.method.type ?? 'Exact' };
      if (m.headers) match.headers = m.headers.map(defaultValueMatch);
      return match;
    });
  }
  if (r.filters) out.filters = r.filters.map(defaultFilter);
  if (r.backendRefs) {
    out.backendRefs = r.backendRefs.map((b) => {
      const ref: Record<string, unknown> = { ...b, ...defaultBackendObjectRef(b), weight: b.weight ?? 1 };
      if (b.filters) ref.filters = b.filters.map(defaultFilter);
      return ref;
    });
  }
  if (r.sessionPersistence) out.sessionPersistence = defaultSessionPersistence(r.sessionPersistence);
  return out as unknown as GRPCRouteRule;
}

export function defaultGRPCRouteSpec(s: Readonly<IGRPCRouteSpec>): GRPCRouteSpec {
  const out: Record<string, unknown> = { ...s };
  if (s.parentRefs) out.parentRefs = s.parentRefs.map(defaultParentRef);
  if (s.rules) out.rules = s.rules.map(defaultRule);
  return out as unknown as GRPCRouteSpec;
}

function checkMethodMatch(m: GRPCMethodMatch, path: string, issues: Issues): void {
  if (m.service === undefined && m.method === undefined) {
    issues.add(path, 'set service, method or both');
    return;
  }
  for (const [field, value, pattern, what] of [
    ['service', m.service, SERVICE, 'a proto service name such as helloworld.Greeter'],
    ['method', m.method, METHOD, 'a proto method name such as SayHello'],
  ] as const) {
    if (value === undefined) continue;
    if (m.type === 'RegularExpression') {
      const why = regexError(value);
      if (why !== undefined) issues.add(joinPath(path, field), why);
    } else if (!pattern.test(value)) {
      issues.add(joinPath(path, field), `must be ${what} (got ${JSON.stringify(value)})`);
    }
  }
}

function checkFilters(filters: readonly GRPCRouteFilter[], path: string, issues: Issues): void {
  filters.forEach((f, i) => {
    const fpath = joinPath(path, i);
    const before = issues.count;
    checkFilterMembers(f, MEMBERS, fpath, issues);
    if (issues.count > before) return;
    if (f.type === 'RequestHeaderModifier')
      checkHeaderFilter(f.requestHeaderModifier, joinPath(fpath, 'requestHeaderModifier'), issues);
    if (f.type === 'ResponseHeaderModifier')
      checkHeaderFilter(f.responseHeaderModifier, joinPath(fpath, 'responseHeaderModifier'), issues);
    if (f.type === 'RequestMirror') checkMirror(f.requestMirror, joinPath(fpath, 'requestMirror'), issues);
  });
  checkFilterRepeats(filters, REPEATABLE, path, issues);
}

/** Gateway API CEL rules over a defaulted spec. */
export function checkGRPCRouteRules(spec: GRPCRouteSpec, issues: Issues): void {
  if (spec.parentRefs) checkParentRefs(spec.parentRefs, 'spec.parentRefs', issues);
  const rules = spec.rules ?? [];
  checkRules(rules, 0, 'spec.rules', issues);
  rules.forEach((rule, i) => {
    const path = joinPath('spec.rules', i);
    (rule.matches ?? []).forEach((m, j) => {
      const mpath = joinPath(joinPath(path, 'matches'), j);
      if (m.method) checkMethodMatch(m.method, joinPath(mpath, 'method'), issues);
      if (m.headers) checkValueMatches(m.headers, true, 'header', joinPath(mpath, 'headers'), issues);
    });
    checkFilters(rule.filters ?? [], joinPath(path, 'filters'), issues);
    (rule.backendRefs ?? []).forEach((b, k) => {
      const bpath = joinPath(joinPath(path, 'backendRefs'), k);
      checkBackendRef(b, bpath, issues);
      if (b.filters) checkFilters(b.filters, joinPath(bpath, 'filters'), issues);
    });
  });
}

export const grpcRoute: KindHandler = {
  check(spec, ctx, issues) {
    const before = issues.count;
    if (!checkGatewayApiSpec(GRPCRoute, grpcRouteSpecTree, spec, ctx, issues)) return undefined;
    const out = defaultGRPCRouteSpec(spec as IGRPCRouteSpec);
    checkGRPCRouteRules(out, issues);
    return issues.count > before ? undefined : out;
  },
};
