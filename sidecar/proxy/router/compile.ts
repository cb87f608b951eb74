/**
 * The router compiler: RouteConfiguration → immutable RouteTable (Gateway API v1 HTTPRoute).
 *
 * Compilation does all the work a request would otherwise repeat: virtual hosts go into a host
 * index (host.ts), every match of every route becomes one candidate sorted by the spec's
 * precedence (precedence.ts), regexes are compiled, header names lower-cased, weights summed,
 * redirects and rewrites validated. `match()` then selects a virtual host and returns the first
 * candidate whose conditions hold (match.ts), allocating nothing but a lazily parsed query.
 *
 * Invariants: a compiled table is never mutated; every invalid input throws a RouteConfigError
 * here, naming the route and field, so nothing throws at request time. A route with several
 * matches yields one RouteMatchResult per match (they share the action's backends, modifiers and
 * timeouts; REPLACE_PREFIX_MATCH needs to know which prefix matched).
 * Decisions beyond the spec: an empty `domains` list means `*` (HTTPRoute without hostnames);
 * a route with no action forwards to no backend (500), as a rule without backendRefs does.
 */
import type { Route, RouteConfiguration, RouteTimeouts, UrlRewrite, VirtualHost } from '../config/types.ts';
import {
  bindRedirect,
  compileDirect,
  compileFault,
  compileForward,
  compileMirrors,
  compileRedirect,
  compileRetryPolicy,
} from './actions.ts';
import { type ConfigLocation, invalid } from './config-error.ts';
import { compileHeaderModifier } from './headers.ts';
import { buildHostIndex, type DomainEntry, type HostIndex } from './host.ts';
import { type CompiledMatch, compileMatch, findFirst, PathKind } from './match.ts';
import { sortByPrecedence } from './precedence.ts';
import {
  applyPathModifier,
  type CompiledPathModifier,
  compileHostname,
  compilePathModifier,
} from './rewrite.ts';
import type {
  CompiledFault,
  CompiledHeaderModifier,
  CompiledMirror,
  CompiledRetryPolicy,
  RouteAction,
  RouteMatchResult,
  RouteRequest,
  RouteTable,
} from './types.ts';

interface CompiledRewrite {
  readonly host: string | undefined;
  readonly path: CompiledPathModifier | undefined;
}

class RouteResult implements RouteMatchResult {
  readonly routeName: string;
  readonly virtualHost: string;
  readonly action: RouteAction;
  readonly requestHeaderModifier: CompiledHeaderModifier | undefined;
  readonly responseHeaderModifier: CompiledHeaderModifier | undefined;
  readonly timeouts: Required<RouteTimeouts>;
  readonly fault: CompiledFault | undefined;
  readonly mirrors: readonly CompiledMirror[];
  readonly retry: CompiledRetryPolicy | undefined;
  readonly #rewrite: CompiledRewrite | undefined;
  readonly #matchedPrefix: string;

  constructor(shared: SharedRouteParts, action: RouteAction, matchedPrefix: string) {
    this.routeName = shared.routeName;
    this.virtualHost = shared.virtualHost;
    this.action = action;
    this.requestHeaderModifier = shared.requestHeaderModifier;
    this.responseHeaderModifier = shared.responseHeaderModifier;
    this.timeouts = shared.timeouts;
    this.fault = shared.fault;
    this.mirrors = shared.mirrors;
    this.retry = shared.retry;
    this.#rewrite = shared.rewrite;
    this.#matchedPrefix = matchedPrefix;
  }

  rewrite(req: RouteRequest): { readonly path: string; readonly host: string | undefined } | undefined {
    const rw = this.#rewrite;
    if (rw === undefined) return undefined;
    const path = rw.path === undefined ? req.path : applyPathModifier(rw.path, req.path, this.#matchedPrefix);
    return { path, host: rw.host };
  }
}

interface SharedRouteParts {
  readonly routeName: string;
  readonly virtualHost: string;
  readonly requestHeaderModifier: CompiledHeaderModifier | undefined;
  readonly responseHeaderModifier: CompiledHeaderModifier | undefined;
  readonly timeouts: Required<RouteTimeouts>;
  readonly rewrite: CompiledRewrite | undefined;
  readonly fault: CompiledFault | undefined;
  readonly mirrors: readonly CompiledMirror[];
  readonly retry: CompiledRetryPolicy | undefined;
}

interface Candidate {
  readonly match: CompiledMatch;
  readonly order: number;
  readonly result: RouteResult;
}

interface CompiledVirtualHost {
  readonly name: string;
  readonly candidates: readonly Candidate[];
}

class CompiledRouteTable implements RouteTable {
  readonly name: string;
  readonly #hosts: HostIndex<CompiledVirtualHost>;

  constructor(name: string, hosts: HostIndex<CompiledVirtualHost>) {
    this.name = name;
    this.#hosts = hosts;
  }

  match(req: RouteRequest): RouteMatchResult | undefined {
    const vhost = this.#hosts.select(req.host);
    if (vhost === undefined) return undefined;
    return findFirst(vhost.candidates, req)?.result;
  }
}

function compileTimeouts(cfg: RouteTimeouts | undefined, where: ConfigLocation): Required<RouteTimeouts> {
  const requestMs = cfg?.requestMs ?? 0;
  const backendRequestMs = cfg?.backendRequestMs ?? 0;
  for (const [field, value] of [
    ['timeouts.requestMs', requestMs],
    ['timeouts.backendRequestMs', backendRequestMs],
  ] as const) {
    if (!Number.isInteger(value) || value < 0) {
      invalid(where, field, `must be a non-negative integer (0 disables), got ${String(value)}`);
    }
  }
  if (requestMs > 0 && backendRequestMs > requestMs) {
    invalid(
      where,
      'timeouts.backendRequestMs',
      `${backendRequestMs} must not exceed timeouts.requestMs ${requestMs}`,
    );
  }
  return Object.freeze({ requestMs, backendRequestMs });
}

function compileUrlRewrite(cfg: UrlRewrite | undefined, where: ConfigLocation): CompiledRewrite | undefined {
  if (cfg === undefined) return undefined;
  const host = cfg.hostname ? compileHostname(cfg.hostname, where, 'urlRewrite.hostname') : undefined;
  const path = cfg.path === undefined ? undefined : compilePathModifier(cfg.path, where, 'urlRewrite.path');
  if (host === undefined && path === undefined) return undefined;
  return { host, path };
}

function requirePrefixMatches(matches: readonly CompiledMatch[], where: ConfigLocation, field: string): void {
  matches.forEach((m, j) => {
    if (m.pathKind !== PathKind.Prefix) {
      const type = m.pathKind === PathKind.Exact ? 'EXACT' : 'REGULAR_EXPRESSION';
      invalid(where, field, `REPLACE_PREFIX_MATCH needs PATH_PREFIX matches, but matches[${j}] is ${type}`);
    }
  });
}

/** Compiles one route into its candidates; `order` is the list position of its first match. */
function compileRoute(
  route: Route,
  routeName: string,
  vhostName: string,
  where: ConfigLocation,
  order: number,
) {
  if ([route.route, route.redirect, route.directResponse].filter((a) => a !== undefined).length > 1) {
    invalid(where, 'route', 'only one of route, redirect and directResponse may be set');
  }
  if (route.redirect !== undefined && route.urlRewrite !== undefined) {
    invalid(where, 'urlRewrite', 'a route with a redirect must not also rewrite the URL (Gateway API)');
  }

  const matchConfigs = route.matches !== undefined && route.matches.length > 0 ? route.matches : [{}];
  const matches = matchConfigs.map((m, j) => compileMatch(m, where, `matches[${j}]`));
  const rewrite = compileUrlRewrite(route.urlRewrite, where);
  if (rewrite?.path?.replacePrefix) requirePrefixMatches(matches, where, 'urlRewrite.path.type');
  const redirect =
    route.redirect === undefined ? undefined : compileRedirect(route.redirect, where, 'redirect');
  if (redirect?.path?.replacePrefix) requirePrefixMatches(matches, where, 'redirect.path.type');

  const timeouts = compileTimeouts(route.timeouts, where);
  const shared: SharedRouteParts = {
    routeName,
    virtualHost: vhostName,
    requestHeaderModifier: compileHeaderModifier(route.requestHeaderModifier, where, 'requestHeaderModifier'),
    responseHeaderModifier: compileHeaderModifier(
      route.responseHeaderModifier,
      where,
      'responseHeaderModifier',
    ),
    timeouts,
    rewrite,
    fault: compileFault(route.fault, where, 'fault'),
    mirrors: compileMirrors(route.mirrors, where, 'mirrors'),
    retry: compileRetryPolicy(route.retry, timeouts.requestMs, where, 'retry'),
  };
  let sharedAction: RouteAction | undefined;
  if (route.directResponse !== undefined) {
    sharedAction = compileDirect(route.directResponse, where, 'directResponse');
  } else if (redirect === undefined) {
    sharedAction = compileForward(route.route ?? {}, where, 'route');
  }

  return matches.map((match, j): Candidate => {
    const matchedPrefix = match.pathKind === PathKind.Prefix ? match.path : '';
    const action = sharedAction ?? bindRedirect(redirect!, matchedPrefix);
    return { match, order: order + j, result: new RouteResult(shared, action, matchedPrefix) };
  });
}

function compileVirtualHost(vh: VirtualHost, vhostName: string, routeConfig: string): CompiledVirtualHost {
  const candidates: Candidate[] = [];
  (vh.routes ?? []).forEach((route, i) => {
    const routeName = route.name || `${vhostName}/routes[${i}]`;
    const where: ConfigLocation = { routeConfig, virtualHost: vhostName, route: routeName };
    candidates.push(...compileRoute(route, routeName, vhostName, where, candidates.length));
  });
  return { name: vhostName, candidates: sortByPrecedence(candidates) };
}

/**
 * Compiles a RouteConfiguration into an immutable RouteTable.
 *
 * `table.match({host, path, query, method, headers})` returns the RouteMatchResult of the
 * highest-precedence match in the virtual host selected by `host`, or `undefined` (404 NO_ROUTE).
 * @throws RouteConfigError (an Error) naming route config, virtual host, route and field, for:
 *   a missing config name; a malformed or duplicate domain; a bad path value, match type, regex,
 *   header name or method; more than one action; a redirect together with a URL rewrite; a bad
 *   redirect scheme, host, port or status; REPLACE_PREFIX_MATCH on a non-PathPrefix match; a bad
 *   weight or a cluster without a name; bad header modifier names or values; negative timeouts or
 *   `backendRequestMs > requestMs`; a direct response status outside 200–599; a fault percent
 *   outside [0, 100] or abort status outside 200–599; a mirror without a cluster name; an invalid
 *   retry policy (see `compileRetryPolicy`).
 */
export function compileRouteTable(config: RouteConfiguration): RouteTable {
  const routeConfig = typeof config.name === 'string' ? config.name : '';
  if (routeConfig.length === 0) {
    invalid({ routeConfig, virtualHost: undefined, route: undefined }, 'name', 'is required');
  }

  const domains: DomainEntry<CompiledVirtualHost>[] = [];
  (config.virtualHosts ?? []).forEach((vh, i) => {
    const vhostName = vh.name || `virtualHosts[${i}]`;
    const compiled = compileVirtualHost(vh, vhostName, routeConfig);
    const where: ConfigLocation = { routeConfig, virtualHost: vhostName, route: undefined };
    const list = vh.domains !== undefined && vh.domains.length > 0 ? vh.domains : ['*'];
    list.forEach((domain, j) => {
      if (typeof domain !== 'string' || domain.length === 0) {
        invalid(where, `domains[${j}]`, 'must not be empty');
      }
      domains.push({
        domain,
        value: compiled,
        where,
        field: vh.domains?.length ? `domains[${j}]` : 'domains (empty: "*")',
      });
    });
  });
  return new CompiledRouteTable(routeConfig, buildHostIndex(domains));
}
