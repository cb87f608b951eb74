/**
 * `HTTPRoute` (gateway.networking.k8s.io/v1): schema check by `@kubernetes-models/gateway-api`,
 * unknown fields, CRD defaults, then the CEL rules of apis/v1/httproute_types.go:
 * - Exact / PathPrefix values: start with `/`; no `//`, `/./`, `/../`, `%2f`, `%2F`, `#`; do
 *   not end in `/.` or `/..`; only path characters. RegularExpression values must compile
 *   (Weft's dialect is JavaScript's RegExp, matched against the whole path).
 * - Filters: the member named by `type` is set and no other; RequestHeaderModifier,
 *   ResponseHeaderModifier, RequestRedirect, URLRewrite and CORS at most once per list;
 *   RequestRedirect and URLRewrite not together; RequestRedirect not with backendRefs;
 *   ReplacePrefixMatch only with exactly one PathPrefix match; path modifier type and value agree.
 * - Header modifiers: one action per header name (case-insensitive).
 * - timeouts.backendRequest <= timeouts.request unless request is `0s` (disabled).
 * - retry.attempts 0..100 (GEP-1731 leaves the bound to implementations; Weft's matches
 *   BackendTrafficPolicy `retry.numRetries`).
 * - Rule names unique; at most 128 matches across the rules; backendRefs to Services have a port.
 * Maximum list sizes, weights 0..1000000, retry codes 400..599 (GEP-1731) and enums come from
 * the schema.
 */
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import type { IHTTPRouteFilter } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRouteFilter';
import type { IHTTPRouteRule } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRouteRule';
import type { IHTTPRouteSpec } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRouteSpec';
import { parseDurationMs } from '../duration.ts';
import { checkGatewayApiSpec, type FieldTree } from '../gateway-api.ts';
import type {
  HTTPBackendRef,
  HTTPCORSFilter,
  HTTPPathMatch,
  HTTPPathModifier,
  HTTPRouteFilter,
  HTTPRouteMatch,
  HTTPRouteRule,
  HTTPRouteSpec,
} from '../gateway-types.ts';
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

const pathModifierTree = { type: true, replaceFullPath: true, replacePrefixMatch: true } as const;

const filterTree = {
  type: true,
  requestHeaderModifier: headerFilterTree,
  responseHeaderModifier: headerFilterTree,
  requestMirror: mirrorTree,
  requestRedirect: { scheme: true, hostname: true, path: pathModifierTree, port: true, statusCode: true },
  urlRewrite: { hostname: true, path: pathModifierTree },
  cors: {
    allowOrigins: true,
    allowCredentials: true,
    allowMethods: true,
    allowHeaders: true,
    exposeHeaders: true,
    maxAge: true,
  },
  externalAuth: {
    protocol: true,
    backendRef: backendObjectRefTree,
    grpc: { allowedHeaders: true },
    http: { path: true, allowedHeaders: true, allowedResponseHeaders: true },
    forwardBody: { maxSize: true },
  },
  extensionRef: localObjectRefTree,
} as const satisfies FieldTree<IHTTPRouteFilter>;

const valueMatchTree = { type: true, name: true, value: true } as const;

/** Every field of HTTPRouteSpec the model knows (experimental channel included). */
export const httpRouteSpecTree = {
  parentRefs: parentRefTree,
  useDefaultGateways: true,
  hostnames: true,
  rules: {
    name: true,
    matches: {
      path: { type: true, value: true },
      headers: valueMatchTree,
      queryParams: valueMatchTree,
      method: true,
    },
    filters: filterTree,
    backendRefs: { ...backendObjectRefTree, weight: true, filters: filterTree },
    timeouts: { request: true, backendRequest: true },
    retry: { codes: true, attempts: true, backoff: true },
    sessionPersistence: sessionPersistenceTree,
  },
} as const satisfies FieldTree<IHTTPRouteSpec>;

/** Filter type → its member field. */
const MEMBERS: Readonly<Record<string, string>> = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestMirror: 'requestMirror',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  CORS: 'cors',
  ExternalAuth: 'externalAuth',
  ExtensionRef: 'extensionRef',
};
const REPEATABLE: ReadonlySet<string> = new Set(['RequestMirror', 'ExtensionRef']);

const DEFAULT_MATCH: HTTPRouteMatch = { path: { type: 'PathPrefix', value: '/' } };
const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$/;
const BANNED_IN_PATH = ['//', '/./', '/../', '%2f', '%2F', '#'] as const;

// ---- defaults --------------------------------------------------------------------------------

function defaultFilter(f: Readonly<IHTTPRouteFilter>): HTTPRouteFilter {
  if (f.requestMirror !== undefined)
    return { ...f, requestMirror: defaultMirror(f.requestMirror) } as HTTPRouteFilter;
  if (f.requestRedirect !== undefined) {
    return {
      ...f,
      requestRedirect: { ...f.requestRedirect, statusCode: f.requestRedirect.statusCode ?? 302 },
    } as HTTPRouteFilter;
  }
  if (f.cors !== undefined)
    return { ...f, cors: { ...f.cors, maxAge: f.cors.maxAge ?? 5 } as HTTPCORSFilter } as HTTPRouteFilter;
  return f as HTTPRouteFilter;
}

function defaultRule(r: Readonly<IHTTPRouteRule>): HTTPRouteRule {
  const out: Record<string, unknown> = { ...r };
  out.matches =
    r.matches === undefined || r.matches.length === 0
      ? [DEFAULT_MATCH]
      : r.matches.map((m) => {
          const match: Record<string, unknown> = {
            ...m,
            path: { type: m.path?.type ?? 'PathPrefix', value: m.path?.value ?? '/' } satisfies HTTPPathMatch,
          };
          if (m.headers) match.headers = m.headers.map(defaultValueMatch);
          if (m.queryParams) match.queryParams = m.queryParams.map(defaultValueMatch);
          return match;
        });
  if (r.filters) out.filters = r.filters.map(defaultFilter);
  if (r.backendRefs) {
    out.backendRefs = r.backendRefs.map((b) => {
      const ref: Record<string, unknown> = { ...b, ...defaultBackendObjectRef(b), weight: b.weight ?? 1 };
      if (b.filters) ref.filters = b.filters.map(defaultFilter);
      return ref;
    });
  }
  if (r.sessionPersistence) out.sessionPersistence = defaultSessionPersistence(r.sessionPersistence);
  return out as unknown as HTTPRouteRule;
}

/** CRD defaults: parentRef group/kind, one catch-all rule, match paths, backendRef weight 1, … */
export function defaultHTTPRouteSpec(s: Readonly<IHTTPRouteSpec>): HTTPRouteSpec {
  const out: Record<string, unknown> = { ...s };
  if (s.parentRefs) out.parentRefs = s.parentRefs.map(defaultParentRef);
  out.rules = (s.rules ?? [{}]).map(defaultRule);
  return out as unknown as HTTPRouteSpec;
}

// ---- CEL rules -------------------------------------------------------------------------------

function checkPathMatch(p: HTTPPathMatch, path: string, issues: Issues): void {
  const at = joinPath(path, 'value');
  if (p.type === 'RegularExpression') {
    const why = regexError(p.value);
    if (why !== undefined) issues.add(at, why);
    return;
  }
  const before = issues.count;
  if (!p.value.startsWith('/'))
    issues.add(
      at,
      `must be an absolute path starting with "/" for type ${p.type} (got ${JSON.stringify(p.value)})`,
    );
  for (const bad of BANNED_IN_PATH) {
    if (p.value.includes(bad))
      issues.add(
        at,
        `must not contain ${JSON.stringify(bad)} for type ${p.type} (got ${JSON.stringify(p.value)})`,
      );
  }
  for (const end of ['/..', '/.']) {
    if (p.value.endsWith(end))
      issues.add(
        at,
        `must not end with ${JSON.stringify(end)} for type ${p.type} (got ${JSON.stringify(p.value)})`,
      );
  }
  if (issues.count === before && !PATH_CHARS.test(p.value)) {
    issues.add(
      at,
      `must only contain path characters (RFC 3986 pchar and "/") for type ${p.type} (got ${JSON.stringify(p.value)})`,
    );
  }
}

function checkPathModifier(m: HTTPPathModifier, path: string, issues: Issues): void {
  const fields = m as Readonly<Record<string, unknown>>;
  const own = m.type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
  const other = own === 'replaceFullPath' ? 'replacePrefixMatch' : 'replaceFullPath';
  if (fields[own] === undefined) issues.add(joinPath(path, own), `is required when type is ${m.type}`);
  if (fields[other] !== undefined)
    issues.add(joinPath(path, other), `must not be set when type is ${m.type}`);
}

/**
 * Where a filter list uses ReplacePrefixMatch, e.g. `…filters[0].urlRewrite.path.replacePrefixMatch`.
 * Runs on filters whose own checks may have failed, so a member may be missing.
 */
function prefixReplacements(filters: readonly HTTPRouteFilter[], path: string): string[] {
  const found: string[] = [];
  filters.forEach((f, i) => {
    let member: string | undefined;
    const redirect =
      f.type === 'RequestRedirect' ? (f.requestRedirect as typeof f.requestRedirect | undefined) : undefined;
    const rewrite = f.type === 'URLRewrite' ? (f.urlRewrite as typeof f.urlRewrite | undefined) : undefined;
    if (redirect?.path?.type === 'ReplacePrefixMatch') member = 'requestRedirect';
    if (rewrite?.path?.type === 'ReplacePrefixMatch') member = 'urlRewrite';
    if (member !== undefined) found.push(`${joinPath(path, i)}.${member}.path.replacePrefixMatch`);
  });
  return found;
}

function checkFilters(filters: readonly HTTPRouteFilter[], path: string, issues: Issues): void {
  filters.forEach((f, i) => {
    const fpath = joinPath(path, i);
    const before = issues.count;
    checkFilterMembers(f, MEMBERS, fpath, issues);
    if (issues.count > before) return;
    switch (f.type) {
      case 'RequestHeaderModifier':
        checkHeaderFilter(f.requestHeaderModifier, joinPath(fpath, 'requestHeaderModifier'), issues);
        break;
      case 'ResponseHeaderModifier':
        checkHeaderFilter(f.responseHeaderModifier, joinPath(fpath, 'responseHeaderModifier'), issues);
        break;
      case 'RequestMirror':
        checkMirror(f.requestMirror, joinPath(fpath, 'requestMirror'), issues);
        break;
      case 'RequestRedirect':
        if (f.requestRedirect.path)
          checkPathModifier(
            f.requestRedirect.path,
            joinPath(joinPath(fpath, 'requestRedirect'), 'path'),
            issues,
          );
        break;
      case 'URLRewrite':
        if (f.urlRewrite.path)
          checkPathModifier(f.urlRewrite.path, joinPath(joinPath(fpath, 'urlRewrite'), 'path'), issues);
        break;
      case 'CORS':
        for (const field of ['allowOrigins', 'allowMethods'] as const) {
          const values = f.cors[field];
          if (values?.includes('*') && values.length > 1) {
            issues.add(joinPath(joinPath(fpath, 'cors'), field), '"*" cannot be combined with other values');
          }
        }
        break;
      default:
        break;
    }
  });
  checkFilterRepeats(filters, REPEATABLE, path, issues);
  const redirect = filters.findIndex((f) => f.type === 'RequestRedirect');
  const rewrite = filters.findIndex((f) => f.type === 'URLRewrite');
  if (redirect >= 0 && rewrite >= 0) {
    issues.add(
      joinPath(path, Math.max(redirect, rewrite)),
      `RequestRedirect and URLRewrite cannot be used together (see ${joinPath(path, Math.min(redirect, rewrite))})`,
    );
  }
}

function checkRule(rule: HTTPRouteRule, path: string, issues: Issues): void {
  rule.matches.forEach((m, j) => {
    const mpath = joinPath(joinPath(path, 'matches'), j);
    checkPathMatch(m.path, joinPath(mpath, 'path'), issues);
    if (m.headers) checkValueMatches(m.headers, true, 'header', joinPath(mpath, 'headers'), issues);
    if (m.queryParams)
      checkValueMatches(m.queryParams, false, 'query parameter', joinPath(mpath, 'queryParams'), issues);
  });
  const filters = rule.filters ?? [];
  const backendRefs = rule.backendRefs ?? [];
  checkFilters(filters, joinPath(path, 'filters'), issues);
  if (backendRefs.length > 0) {
    filters.forEach((f, i) => {
      if (f.type === 'RequestRedirect')
        issues.add(
          joinPath(joinPath(path, 'filters'), i),
          'RequestRedirect cannot be used together with backendRefs',
        );
    });
  }
  const replacements = prefixReplacements(filters, joinPath(path, 'filters'));
  backendRefs.forEach((b: HTTPBackendRef, k) => {
    const bpath = joinPath(joinPath(path, 'backendRefs'), k);
    checkBackendRef(b, bpath, issues);
    if (b.filters) {
      checkFilters(b.filters, joinPath(bpath, 'filters'), issues);
      replacements.push(...prefixReplacements(b.filters, joinPath(bpath, 'filters')));
    }
  });
  const onePrefix = rule.matches.length === 1 && rule.matches[0]!.path.type === 'PathPrefix';
  if (!onePrefix) {
    const got = rule.matches.map((m) => m.path.type).join(', ');
    for (const at of replacements) {
      issues.add(
        at,
        `ReplacePrefixMatch needs exactly one match, with a PathPrefix path (got ${rule.matches.length} matches: ${got})`,
      );
    }
  }
  const t = rule.timeouts;
  if (t?.request !== undefined && t.backendRequest !== undefined) {
    const request = parseDurationMs(t.request);
    if (request !== 0 && parseDurationMs(t.backendRequest) > request) {
      issues.add(
        joinPath(joinPath(path, 'timeouts'), 'backendRequest'),
        `${t.backendRequest} exceeds request (${t.request})`,
      );
    }
  }
  const attempts = rule.retry?.attempts;
  if (attempts !== undefined && (attempts < 0 || attempts > MAX_RETRY_ATTEMPTS)) {
    issues.add(
      joinPath(joinPath(path, 'retry'), 'attempts'),
      `must be an integer 0..${MAX_RETRY_ATTEMPTS} (got ${attempts})`,
    );
  }
}

/** GEP-1731 leaves `attempts` unbounded; Weft takes 0..100, as BackendTrafficPolicy numRetries. */
const MAX_RETRY_ATTEMPTS = 100;

/** Gateway API CEL rules over a defaulted spec. */
export function checkHTTPRouteRules(spec: HTTPRouteSpec, issues: Issues): void {
  if (spec.parentRefs) checkParentRefs(spec.parentRefs, 'spec.parentRefs', issues);
  checkRules(spec.rules, 1, 'spec.rules', issues);
  for (const [i, rule] of spec.rules.entries()) checkRule(rule, joinPath('spec.rules', i), issues);
}

export const httpRoute: KindHandler = {
  check(spec, ctx, issues) {
    const before = issues.count;
    if (!checkGatewayApiSpec(HTTPRoute, httpRouteSpecTree, spec, ctx, issues)) return undefined;
    const out = defaultHTTPRouteSpec(spec as IHTTPRouteSpec);
    checkHTTPRouteRules(out, issues);
    return issues.count > before ? undefined : out;
  },
};
