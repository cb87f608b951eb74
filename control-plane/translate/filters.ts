/**
 * Gateway API filters and backendRefs → proxy route fields (HTTPRouteFilter, GRPCRouteFilter,
 * HTTPBackendRef / GRPCBackendRef).
 *
 * Translated: RequestHeaderModifier, ResponseHeaderModifier (on rules and on backendRefs),
 * RequestRedirect (→ redirect action), URLRewrite (→ urlRewrite); RequestMirror is translated
 * by mirrors.ts (it needs the Service index).
 * Ignored for now (later): CORS, ExtensionRef, ExternalAuth; on backendRefs every filter but the
 * two header modifiers.
 *
 * Invariants: output objects carry only fields that were set (proto3 JSON, stable snapshots);
 * an unsupported enum value throws `UnsupportedValue`, which drops the whole rule (routes.ts):
 * a rule is translated completely or not at all, never half.
 */
import type {
  HeaderModifier,
  PathModifier,
  RedirectAction,
  UrlRewrite,
  WeightedCluster,
} from '../../sidecar/proxy/config/types.ts';
import { resolveBackendRef } from './backends.ts';
import type { ServiceIndex } from './services.ts';
import type { BackendRefView, FilterView, HeaderFilterView, PathModifierView } from './specs.ts';

/** A value the translator cannot express (the validator should have rejected it). */
export class UnsupportedValue extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedValue';
  }
}

/** HTTPHeaderFilter → HeaderModifier, or undefined when it changes nothing. */
export function headerModifier(f: HeaderFilterView | undefined): HeaderModifier | undefined {
  if (f === undefined) return undefined;
  const set = (f.set ?? []).map((h) => ({ name: h.name, value: h.value }));
  const add = (f.add ?? []).map((h) => ({ name: h.name, value: h.value }));
  const remove = [...(f.remove ?? [])];
  if (set.length + add.length + remove.length === 0) return undefined;
  return {
    ...(set.length > 0 && { set }),
    ...(add.length > 0 && { add }),
    ...(remove.length > 0 && { remove }),
  };
}

/** HTTPPathModifier → PathModifier. */
function pathModifier(p: PathModifierView): PathModifier {
  if (p.type === 'ReplaceFullPath') return { type: 'REPLACE_FULL_PATH', value: p.replaceFullPath ?? '/' };
  if (p.type === 'ReplacePrefixMatch')
    return { type: 'REPLACE_PREFIX_MATCH', value: p.replacePrefixMatch ?? '/' };
  throw new UnsupportedValue(`path modifier type "${p.type}"`);
}

/** The rule-level effect of a rule's filters. */
export interface RuleFilters {
  readonly requestHeaderModifier?: HeaderModifier;
  readonly responseHeaderModifier?: HeaderModifier;
  readonly redirect?: RedirectAction;
  readonly urlRewrite?: UrlRewrite;
}

/** Filters that Gateway API defines but Weft does not translate yet (accepted, no effect). */
const LATER: ReadonlySet<string> = new Set(['CORS', 'ExtensionRef', 'ExternalAuth']);

/** A rule's `filters[]` → route fields. At most one filter of each kind counts (CEL enforces one). */
export function ruleFilters(filters: readonly FilterView[] | undefined): RuleFilters {
  let out: {
    requestHeaderModifier?: HeaderModifier;
    responseHeaderModifier?: HeaderModifier;
    redirect?: RedirectAction;
    urlRewrite?: UrlRewrite;
  } = {};
  for (const f of filters ?? []) {
    switch (f.type) {
      case 'RequestHeaderModifier': {
        const m = headerModifier(f.requestHeaderModifier);
        if (m !== undefined && out.requestHeaderModifier === undefined)
          out = { ...out, requestHeaderModifier: m };
        break;
      }
      case 'ResponseHeaderModifier': {
        const m = headerModifier(f.responseHeaderModifier);
        if (m !== undefined && out.responseHeaderModifier === undefined)
          out = { ...out, responseHeaderModifier: m };
        break;
      }
      case 'RequestRedirect': {
        const r = f.requestRedirect ?? {};
        out = {
          ...out,
          redirect: {
            ...(r.scheme !== undefined && { scheme: r.scheme }),
            ...(r.hostname !== undefined && { hostname: r.hostname }),
            ...(r.port !== undefined && { port: r.port }),
            ...(r.path !== undefined && { path: pathModifier(r.path) }),
            ...(r.statusCode !== undefined && { statusCode: r.statusCode }),
          },
        };
        break;
      }
      case 'URLRewrite': {
        const w = f.urlRewrite ?? {};
        const rewrite: UrlRewrite = {
          ...(w.hostname !== undefined && { hostname: w.hostname }),
          ...(w.path !== undefined && { path: pathModifier(w.path) }),
        };
        if (rewrite.hostname !== undefined || rewrite.path !== undefined)
          out = { ...out, urlRewrite: rewrite };
        break;
      }
      case 'RequestMirror':
        break; // mirrors.ts
      default:
        if (!LATER.has(f.type)) throw new UnsupportedValue(`filter type "${f.type}"`);
    }
  }
  return out;
}

/**
 * backendRefs → weighted clusters for a parent routed on `parentPort`. An unresolvable ref keeps
 * its weight and gets `invalidReason`, so its share of traffic gets 500 (Gateway API).
 */
export function weightedClusters(
  services: ServiceIndex,
  refs: readonly BackendRefView[],
  routeNamespace: string,
  parentPort: number | undefined,
): WeightedCluster[] {
  return refs.map((ref) => {
    const weight = ref.weight ?? 1;
    const b = resolveBackendRef(services, ref, routeNamespace, parentPort);
    if (!b.ok) {
      const port = ref.port === undefined ? '' : `:${ref.port}`;
      return {
        name: `invalid|${ref.namespace ?? routeNamespace}/${ref.name}${port}`,
        weight,
        invalidReason: b.message,
      };
    }
    const f = backendFilters(ref.filters);
    return { name: b.clusterName, weight, ...f };
  });
}

/** Per-backendRef filters: only the two header modifiers apply (others: later). */
function backendFilters(
  filters: readonly FilterView[] | undefined,
): Pick<WeightedCluster, 'requestHeaderModifier' | 'responseHeaderModifier'> {
  const f = ruleFilters(
    (filters ?? []).filter((x) => x.type === 'RequestHeaderModifier' || x.type === 'ResponseHeaderModifier'),
  );
  return {
    ...(f.requestHeaderModifier !== undefined && { requestHeaderModifier: f.requestHeaderModifier }),
    ...(f.responseHeaderModifier !== undefined && { responseHeaderModifier: f.responseHeaderModifier }),
  };
}
