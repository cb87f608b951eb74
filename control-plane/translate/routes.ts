/**
 * HTTPRoute rules → proxy `Route`s (Gateway API v1 HTTPRoute, apis/v1/httproute_types.go).
 *
 * One rule becomes one Route named `<namespace>/<route>/rule-<i>` (or `<namespace>/<route>/<name>`
 * when the rule has a `name`), with:
 * - matches: path (`Exact` | `PathPrefix` | `RegularExpression`, default PathPrefix "/"),
 *   headers and queryParams (`Exact` default | `RegularExpression`) and method, field for field;
 *   a rule without matches matches everything (the proxy reads an empty list as PathPrefix "/");
 * - the action: a redirect when the rule has a RequestRedirect filter, otherwise forwarding to
 *   its weighted backendRefs (none: the proxy answers 500, as Gateway API requires);
 * - header modifiers, URL rewrite (dropped next to a redirect, which CEL forbids anyway);
 * - timeouts: `request` → requestMs, `backendRequest` → backendRequestMs (GEP-2257; "0s" = 0 =
 *   disabled);
 * - retry (GEP-1731, retry.ts) and RequestMirror filters (mirrors.ts);
 * - the route-level settings of the BackendTrafficPolicy on the parent Service (resilience.ts):
 *   retry when the rule has none, a request timeout when the rule has none, fault injection.
 * Invariants: a rule with a value the translator cannot express (unknown enum, invalid regex,
 * bad duration, backendRequest > request) is dropped whole and never half-translated;
 * `translateRouteRules` preserves route then rule order.
 */
import type { Route, RouteMatch, RouteTimeouts } from '../../sidecar/proxy/config/types.ts';
import { parseDurationMs } from '../resources/duration.ts';
import { ruleFilters, UnsupportedValue, weightedClusters } from './filters.ts';
import { grpcRuleParts } from './grpc.ts';
import { httpMatch } from './matches.ts';
import { ruleMirrors } from './mirrors.ts';
import { applyRoutePolicy, type RoutePolicy } from './resilience.ts';
import { httpRouteRetry } from './retry.ts';
import type { ServiceIndex } from './services.ts';
import {
  type BackendRefView,
  type FilterView,
  type HTTPRouteRetryView,
  type HTTPRouteRuleView,
  namespaceOf,
  type RouteResource,
} from './specs.ts';

function timeouts(t: HTTPRouteRuleView['timeouts']): RouteTimeouts | undefined {
  if (t === undefined || (t.request === undefined && t.backendRequest === undefined)) return undefined;
  const parse = (s: string): number => {
    try {
      return parseDurationMs(s);
    } catch (err) {
      throw new UnsupportedValue((err as Error).message);
    }
  };
  const requestMs = t.request === undefined ? undefined : parse(t.request);
  const backendRequestMs = t.backendRequest === undefined ? undefined : parse(t.backendRequest);
  if (requestMs && backendRequestMs !== undefined && backendRequestMs > requestMs) {
    throw new UnsupportedValue(
      `timeouts.backendRequest ${t.backendRequest} exceeds timeouts.request ${t.request}`,
    );
  }
  return {
    ...(requestMs !== undefined && { requestMs }),
    ...(backendRequestMs !== undefined && { backendRequestMs }),
  };
}

/** The kind-independent parts of a rule, as HTTPRoute and GRPCRoute share them. */
export interface RuleParts {
  readonly matches: readonly RouteMatch[];
  readonly filters?: readonly FilterView[];
  readonly backendRefs?: readonly BackendRefView[];
  readonly timeouts?: RouteTimeouts;
  /** The rule's own retry stanza (HTTPRoute only); set even when it turns retries off. */
  readonly retry?: HTTPRouteRetryView;
}

function httpRuleParts(rule: HTTPRouteRuleView): RuleParts {
  const t = timeouts(rule.timeouts);
  return {
    matches: (rule.matches ?? []).map(httpMatch),
    ...(rule.filters !== undefined && { filters: rule.filters }),
    ...(rule.backendRefs !== undefined && { backendRefs: rule.backendRefs }),
    ...(t !== undefined && { timeouts: t }),
    ...(rule.retry !== undefined && { retry: rule.retry }),
  };
}

/** Assembles one proxy Route from a rule's parts. */
function buildRoute(
  services: ServiceIndex,
  parts: RuleParts,
  routeName: string,
  routeNamespace: string,
  parentPort: number | undefined,
  policy: RoutePolicy | undefined,
): Route {
  const f = ruleFilters(parts.filters);
  const clusters = weightedClusters(services, parts.backendRefs ?? [], routeNamespace, parentPort);
  const action =
    f.redirect !== undefined ? { redirect: f.redirect } : { route: clusters.length > 0 ? { clusters } : {} };
  const retry = parts.retry === undefined ? undefined : httpRouteRetry(parts.retry);
  const mirrors =
    f.redirect === undefined ? ruleMirrors(services, parts.filters, routeNamespace, parentPort) : [];
  const route: Route = {
    name: routeName,
    ...(parts.matches.length > 0 && { matches: parts.matches }),
    ...action,
    ...(f.requestHeaderModifier !== undefined && { requestHeaderModifier: f.requestHeaderModifier }),
    ...(f.responseHeaderModifier !== undefined && { responseHeaderModifier: f.responseHeaderModifier }),
    ...(f.urlRewrite !== undefined && f.redirect === undefined && { urlRewrite: f.urlRewrite }),
    ...(parts.timeouts !== undefined && { timeouts: parts.timeouts }),
    ...(retry !== undefined && { retry }),
    ...(mirrors.length > 0 && { mirrors }),
  };
  return applyRoutePolicy(route, policy, parts.retry !== undefined);
}

/** Called for each rule left out, with its route name and why. */
export type OnDroppedRule = (routeName: string, reason: string) => void;

/**
 * Every rule of `routes` (in the given order) as proxy Routes for a parent Service routed on
 * `parentPort`, with the parent's route-level `policy` (resilience.ts). Rules with unsupported
 * values are left out and reported to `onDropped`.
 */
export function translateRouteRules(
  services: ServiceIndex,
  routes: readonly RouteResource[],
  parentPort: number | undefined,
  onDropped?: OnDroppedRule,
  policy?: RoutePolicy,
): Route[] {
  const out: Route[] = [];
  for (const r of routes) {
    const ns = namespaceOf(r);
    ruleThunks(r).forEach((rule, i) => {
      const name = `${ns}/${r.metadata.name}/${rule.name ?? `rule-${i}`}`;
      try {
        out.push(buildRoute(services, rule.parts(), name, ns, parentPort, policy));
      } catch (err) {
        if (!(err instanceof UnsupportedValue)) throw err;
        onDropped?.(name, err.message);
      }
    });
  }
  return out;
}

/** A route's rules, each with its `name` and a deferred translation into rule parts. */
function ruleThunks(
  r: RouteResource,
): { readonly name: string | undefined; readonly parts: () => RuleParts }[] {
  if (r.kind === 'HTTPRoute') {
    return (r.spec.rules ?? []).map((rule) => ({ name: rule.name, parts: () => httpRuleParts(rule) }));
  }
  return (r.spec.rules ?? []).map((rule) => ({ name: rule.name, parts: () => grpcRuleParts(rule) }));
}
