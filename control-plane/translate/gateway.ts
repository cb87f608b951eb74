/**
 * North-south translation: one `Gateway` and the routes attached to it → the config of the
 * gateway proxy that serves it (Gateway API v1, apis/v1/gateway_types.go, shared_types.go).
 *
 * Which Gateway: the one named by the proxy's Hello (`service` = Gateway name, `namespace`). No
 * such Gateway → an empty config (with the trust bundle when mTLS is on).
 *
 * Listeners: Gateway listeners with protocol HTTP or HTTPS (TLS, TCP, UDP are not served yet).
 * Gateway listeners sharing a port become one proxy listener `gateway-<port>` (direction GATEWAY)
 * with route config of the same name; the first listener's protocol on a port wins and listeners
 * of the other protocol on that port are left out (Gateway API: protocol conflict).
 * - Bind port (`bindPort`): the Hello's `listenerPorts[port]` when given (0: any free port);
 *   otherwise the port itself when >= 1024, else port + 10000 (80 → 10080, 443 → 10443, as Envoy
 *   Gateway maps privileged ports), so a gateway never needs root.
 * - Edge limits on by default (`GATEWAY_LISTENER_LIMITS`): header bytes and count, header and
 *   whole-request timeouts, idle keep-alive timeout, a connection cap. The client address
 *   replaces X-Forwarded-For (no trusted hops) until a SecurityPolicy says otherwise.
 * - HTTPS (tls.mode Terminate): `serverTls` with one SNI entry per HTTPS Gateway listener on the
 *   port: its `hostname` (absent: the default certificate) → its first certificateRef. A
 *   certificateRef (core `Secret`, in the Gateway's namespace; cross-namespace refs need a
 *   ReferenceGrant, which Weft does not have, so they are left out) becomes a config certificate
 *   named `<namespace>/<name>`: with the PEM of the store's `Secret` of that name when it exists
 *   (PEM in the snapshot, sent only to this gateway over the TLS stream; a first version), else
 *   without material, and the gateway reads `<cert-dir>/<name>.crt` and `.key` itself, so that
 *   private key never passes through the store or the stream. A listener whose certificateRefs
 *   are all left out is not served.
 *
 * Route attachment: HTTPRoute and GRPCRoute `parentRefs` with group gateway.networking.k8s.io
 * (default) and kind Gateway (default) naming this Gateway (namespace defaults to the route's):
 * - `sectionName` selects the listener by name, `port` by port; both must hold when both are set;
 * - the listener's `allowedRoutes`: `namespaces.from` Same (the Gateway's namespace) or All
 *   (Selector needs Namespace labels, which Weft does not model: such listeners take no routes);
 *   `kinds` (default: HTTPRoute and GRPCRoute);
 * - hostnames intersect (Gateway API ListenerHostname / HTTPRoute hostnames): a listener without
 *   hostname takes the route's hostnames (none: `*`); a route without hostnames takes the
 *   listener's; otherwise each pair of names that match (equal, or one wildcard covering the
 *   other) gives the more specific one. No intersection: the route does not attach there.
 * Rules translate exactly as for sidecars (routes.ts: matches, filters, redirects, rewrites,
 * weights, timeouts, retries, mirrors); virtual hosts group the hostnames that share the same
 * routes, in tie-break order. A request whose host matches no virtual host gets 404.
 *
 * Backends are mesh Services, reached like a sidecar's outbound clusters (clusters.ts): with mesh
 * mTLS on, over mTLS with the gateway's own SPIFFE certificate, each endpoint checked for its
 * workload's SPIFFE ID.
 *
 * Edge policies: SecurityPolicy (security.ts) and RateLimitPolicy (ratelimit.ts) that target the
 * Gateway go on each of its listeners; those that target an attached HTTPRoute/GRPCRoute go on
 * every proxy Route made from it. MeshConfig `rateLimit` names the global limits' store.
 */
import type { ProxyConfig } from '../../sidecar/proxy/config/model.ts';
import type {
  HttpConnectionLimits,
  Listener,
  Route,
  RouteConfiguration,
  ServerTls,
  SniCertificate,
  TlsCertificate,
  VirtualHost,
} from '../../sidecar/proxy/config/types.ts';
import type { Listener as GatewayListener, GatewaySpec } from '../resources/gateway-types.ts';
import type { MeshConfigSpec, Resource, SecurityPolicySpec, TlsSecretSpec } from '../resources/types.ts';
import { routeResources } from './attach.ts';
import { buildClusters, lbSettings, type OutboundClusterRef } from './clusters.ts';
import { meshMtls } from './mtls.ts';
import { compareStrings } from './order.ts';
import { withUpstreamProtocols } from './protocols.ts';
import { attachEdgeRateLimits, rateLimitServiceOf, translateRateLimitPolicies } from './ratelimit.ts';
import { trafficPolicies } from './resilience.ts';
import { translateRouteRules } from './routes.ts';
import { attachEdgeAuth, translateSecurityPolicies } from './security.ts';
import { inboundClusterName, indexServices, outboundClusterName } from './services.ts';
import { namespaceOf, type ParentRefView, type RouteResource } from './specs.ts';
import type { MeshState, ProxyIdentity } from './types.ts';

const GATEWAY_GROUP = 'gateway.networking.k8s.io';

/** Edge defaults of every gateway listener (see HttpConnectionLimits in config.proto). */
export const GATEWAY_LISTENER_LIMITS: HttpConnectionLimits = {
  maxRequestHeadersBytes: 16384,
  maxRequestHeadersCount: 100,
  requestHeadersTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  maxConnections: 10_000,
  requestTimeoutMs: 300_000,
};

/** Ports below this are privileged (bind needs root): they bind at port + PRIVILEGED_PORT_OFFSET. */
export const FIRST_UNPRIVILEGED_PORT = 1024;
export const PRIVILEGED_PORT_OFFSET = 10_000;

/** The port the gateway binds for Gateway listener port `port` (see the module header). */
export function bindPort(port: number, overrides?: Readonly<Record<string, number>>): number {
  const override = overrides?.[String(port)];
  if (override !== undefined) return override;
  return port >= FIRST_UNPRIVILEGED_PORT ? port : port + PRIVILEGED_PORT_OFFSET;
}

/** `gateway-<port>`: the proxy listener and route config of a Gateway port. */
export function gatewayListenerName(port: number): string {
  return `gateway-${port}`;
}

/** A validated Gateway resource. */
export type GatewayResource = Omit<Resource, 'spec'> & { readonly spec: GatewaySpec };

const DEFAULT_ROUTE_KINDS: readonly string[] = ['HTTPRoute', 'GRPCRoute'];

/** True for a parentRef to a Gateway (group gateway.networking.k8s.io and kind Gateway, the defaults). */
export function isGatewayRef(ref: ParentRefView): boolean {
  return (ref.group ?? GATEWAY_GROUP) === GATEWAY_GROUP && (ref.kind ?? 'Gateway') === 'Gateway';
}

/** True when `name` (exact or `*.suffix`) lies within wildcard `pattern` (`*.suffix`). */
function covers(pattern: string, name: string): boolean {
  const suffix = pattern.slice(1); // ".example.com"
  return name.endsWith(suffix) && name.length > suffix.length;
}

/**
 * Gateway API hostname intersection of a listener hostname and a route's hostnames: the
 * hostnames the route serves on that listener; [] when they do not intersect.
 */
export function intersectHostnames(listener: string | undefined, route: readonly string[]): string[] {
  const names = route.map((h) => h.toLowerCase());
  if (listener === undefined) return names.length === 0 ? ['*'] : [...new Set(names)];
  const l = listener.toLowerCase();
  if (names.length === 0) return [l];
  const out = new Set<string>();
  for (const r of names) {
    if (r === l) out.add(r);
    else if (l.startsWith('*.') && covers(l, r)) out.add(r);
    else if (r.startsWith('*.') && covers(r, l)) out.add(l);
  }
  return [...out];
}

/** The listener's `allowedRoutes` admit `route` (namespaces Same | All; kinds). */
export function allowsRoute(gw: GatewayResource, l: GatewayListener, route: RouteResource): boolean {
  const from = l.allowedRoutes?.namespaces?.from ?? 'Same';
  if (from === 'Same' && namespaceOf(route) !== namespaceOf(gw)) return false;
  if (from === 'Selector') return false;
  const kinds = l.allowedRoutes?.kinds;
  if (kinds === undefined || kinds.length === 0) return DEFAULT_ROUTE_KINDS.includes(route.kind);
  return kinds.some((k) => (k.group ?? GATEWAY_GROUP) === GATEWAY_GROUP && k.kind === route.kind);
}

/** The listeners of `gw` that `ref` (a parentRef naming `gw`) selects. */
export function selectedListeners(gw: GatewayResource, ref: ParentRefView): GatewayListener[] {
  return gw.spec.listeners.filter(
    (l) =>
      (ref.sectionName === undefined || ref.sectionName === l.name) &&
      (ref.port === undefined || ref.port === l.port),
  );
}

/** One Gateway port: its protocol, its Gateway listeners, and hostname → routes. */
interface PortPlan {
  readonly port: number;
  readonly protocol: 'HTTP' | 'HTTPS';
  readonly listeners: GatewayListener[];
  /** hostname (or `*`) → routes in tie-break order. */
  readonly hosts: Map<string, RouteResource[]>;
}

/** The certificate name of a listener's first usable certificateRef, or undefined. */
function certificateName(gw: GatewayResource, l: GatewayListener): string | undefined {
  const ns = namespaceOf(gw);
  for (const ref of l.tls?.certificateRefs ?? []) {
    if ((ref.group ?? '') !== '' || (ref.kind ?? 'Secret') !== 'Secret') continue;
    if ((ref.namespace ?? ns) !== ns) continue;
    return `${ns}/${ref.name}`;
  }
  return undefined;
}

function portPlans(gw: GatewayResource): Map<number, PortPlan> {
  const plans = new Map<number, PortPlan>();
  for (const l of gw.spec.listeners) {
    if (l.protocol !== 'HTTP' && l.protocol !== 'HTTPS') continue;
    if (l.protocol === 'HTTPS' && certificateName(gw, l) === undefined) continue;
    const plan = plans.get(l.port);
    if (plan === undefined)
      plans.set(l.port, { port: l.port, protocol: l.protocol, listeners: [l], hosts: new Map() });
    else if (plan.protocol === l.protocol) plan.listeners.push(l);
  }
  return plans;
}

/** The Gateway listeners the gateway serves (HTTP/HTTPS, usable certificate, no protocol conflict). */
export function servedListeners(gw: GatewayResource): Set<GatewayListener> {
  return new Set([...portPlans(gw).values()].flatMap((p) => p.listeners));
}

/** The Gateway named by `ref` in a route of `routeNamespace`, if it exists. */
export function findGateway(
  resources: readonly Resource[],
  ref: ParentRefView,
  routeNamespace: string,
): GatewayResource | undefined {
  const ns = ref.namespace ?? routeNamespace;
  const found = resources.find(
    (r) => r.kind === 'Gateway' && r.metadata.name === ref.name && namespaceOf(r) === ns,
  );
  return found as unknown as GatewayResource | undefined;
}

function attach(gw: GatewayResource, plans: Map<number, PortPlan>, routes: readonly RouteResource[]): void {
  const served = new Set([...plans.values()].flatMap((p) => p.listeners));
  for (const route of routes) {
    const routeNs = namespaceOf(route);
    const hostnames = route.spec.hostnames ?? [];
    for (const ref of route.spec.parentRefs ?? []) {
      if (!isGatewayRef(ref) || ref.name !== gw.metadata.name) continue;
      if ((ref.namespace ?? routeNs) !== namespaceOf(gw)) continue;
      for (const l of selectedListeners(gw, ref)) {
        if (!served.has(l) || !allowsRoute(gw, l, route)) continue;
        const plan = plans.get(l.port) as PortPlan;
        for (const host of intersectHostnames(l.hostname, hostnames)) {
          const list = plan.hosts.get(host);
          if (list === undefined) plan.hosts.set(host, [route]);
          else if (!list.includes(route)) list.push(route);
        }
      }
    }
  }
}

/** Virtual hosts of one port: hostnames with the same routes share one. */
function virtualHosts(
  plan: PortPlan,
  order: ReadonlyMap<RouteResource, number>,
  translate: (routes: readonly RouteResource[]) => VirtualHost['routes'],
): VirtualHost[] {
  const groups = new Map<string, { domains: string[]; routes: RouteResource[] }>();
  for (const [host, routes] of plan.hosts) {
    routes.sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0));
    const key = routes.map((r) => order.get(r)).join(',');
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { domains: [host], routes });
    else group.domains.push(host);
  }
  return [...groups.values()]
    .map((g) => ({ domains: g.domains.sort(compareStrings), routes: g.routes }))
    .sort((a, b) => compareStrings(a.domains[0] as string, b.domains[0] as string))
    .map((g) => ({ name: g.domains[0] as string, domains: g.domains, routes: translate(g.routes) ?? [] }));
}

function serverTls(gw: GatewayResource, plan: PortPlan): { tls: ServerTls; names: string[] } {
  const certificates: SniCertificate[] = [];
  const names: string[] = [];
  for (const l of plan.listeners) {
    const name = certificateName(gw, l) as string;
    names.push(name);
    certificates.push({
      ...(l.hostname !== undefined && { serverNames: [l.hostname.toLowerCase()] }),
      certificateName: name,
    });
  }
  return { tls: { certificates, minVersion: 'TLSv1.2' }, names };
}

/**
 * Certificate `<namespace>/<name>`: the PEM of the store's `Secret` of that name when there is
 * one, else the name alone (the gateway reads it from its `--cert-dir`).
 */
function storedCertificate(resources: readonly Resource[], name: string): TlsCertificate {
  const slash = name.indexOf('/');
  const secret = resources.find(
    (r) =>
      r.kind === 'Secret' &&
      namespaceOf(r) === name.slice(0, slash) &&
      r.metadata.name === name.slice(slash + 1),
  );
  const data = (secret?.spec as Partial<TlsSecretSpec> | undefined)?.stringData;
  if (data === undefined) return { name };
  return { name, certChainPem: data['tls.crt'], privateKeyPem: data['tls.key'] };
}

/**
 * The config of gateway proxy `proxy` (see the module header). Not frozen or consistency-checked
 * here: `translate` does both.
 */
export function translateGateway(state: MeshState, proxy: ProxyIdentity): ProxyConfig {
  const mtls = meshMtls(state);
  const empty: ProxyConfig = {
    listeners: [],
    routes: [],
    clusters: [],
    endpoints: [],
    ...(mtls !== undefined && { trustBundle: mtls.bundle }),
  };
  const found = state.resources.find(
    (r) => r.kind === 'Gateway' && r.metadata.name === proxy.service && namespaceOf(r) === proxy.namespace,
  );
  if (found === undefined) return empty;
  // Validated by resources/kinds/gateway.ts, defaults applied.
  const gw = found as unknown as GatewayResource;

  const services = indexServices(state.resources);
  const routes = routeResources(state.resources);
  const order = new Map(routes.map((r, i) => [r, i]));
  const plans = portPlans(gw);
  attach(gw, plans, routes);

  // Which user route each proxy Route came from (`<kind>/<ns>/<name>`), for the edge policies.
  const origin = new Map<Route, string>();
  const translateTagged = (rs: readonly RouteResource[]): Route[] =>
    rs.flatMap((r) => {
      const out = translateRouteRules(services, [r], undefined);
      for (const x of out) origin.set(x, `${r.kind}/${namespaceOf(r)}/${r.metadata.name}`);
      return out;
    });
  const attached = [...new Set([...plans.values()].flatMap((p) => [...p.hosts.values()].flat()))];
  const gatewayRef = { namespace: namespaceOf(gw), name: gw.metadata.name };
  const auth = translateSecurityPolicies(
    state.resources.filter((r) => r.kind === 'SecurityPolicy') as unknown as Resource<SecurityPolicySpec>[],
    gatewayRef,
    attached.map((r) => ({ kind: r.kind, namespace: namespaceOf(r), name: r.metadata.name })),
  );
  const limits = translateRateLimitPolicies(state.resources);
  const routeOf = (r: Route): string | undefined => origin.get(r);

  const listeners: Listener[] = [];
  const routeConfigs: RouteConfiguration[] = [];
  const certificates = new Map<string, TlsCertificate>();
  for (const plan of [...plans.values()].sort((a, b) => a.port - b.port)) {
    const name = gatewayListenerName(plan.port);
    const tls = plan.protocol === 'HTTPS' ? serverTls(gw, plan) : undefined;
    for (const n of tls?.names ?? []) certificates.set(n, storedCertificate(state.resources, n));
    let listener: Listener = {
      name,
      address: proxy.listenAddress,
      port: bindPort(plan.port, proxy.listenerPorts),
      direction: 'GATEWAY',
      routeConfigName: name,
      limits: GATEWAY_LISTENER_LIMITS,
      xffNumTrustedHops: 0,
      ...(tls !== undefined && { serverTls: tls.tls }),
    };
    const hosts = virtualHosts(plan, order, translateTagged).map((vh) => {
      const withAuth = attachEdgeAuth(auth, listener, vh.routes ?? [], routeOf);
      // A Route that got a policy is a new object: it keeps its user route for the rate limits.
      withAuth.routes.forEach((r, i) => {
        const from = origin.get((vh.routes ?? [])[i] as Route);
        if (from !== undefined) origin.set(r, from);
      });
      const withLimits = attachEdgeRateLimits(
        limits,
        gatewayRef,
        withAuth.listener,
        withAuth.routes,
        routeOf,
      );
      listener = withLimits.listener;
      return { ...vh, routes: withLimits.routes };
    });
    if (hosts.length === 0) {
      listener = attachEdgeRateLimits(
        limits,
        gatewayRef,
        attachEdgeAuth(auth, listener, [], routeOf).listener,
        [],
        routeOf,
      ).listener;
    }
    listeners.push(listener);
    routeConfigs.push({ name, virtualHosts: hosts });
  }

  const referenced = new Set<string>();
  for (const rc of routeConfigs) {
    for (const vh of rc.virtualHosts ?? []) {
      for (const r of vh.routes ?? []) {
        for (const c of r.route?.clusters ?? []) if (c.invalidReason === undefined) referenced.add(c.name);
        for (const m of r.mirrors ?? []) referenced.add(m.cluster);
      }
    }
  }
  const used: OutboundClusterRef[] = [];
  for (const service of services.list) {
    for (const { port } of service.ports) {
      const name = outboundClusterName(port, service.name, service.namespace);
      if (referenced.has(name)) used.push({ name, service, port });
    }
  }
  const policies = trafficPolicies(state.resources);
  const built = buildClusters(
    used,
    state.endpoints,
    lbSettings(state.resources),
    proxy.appPort,
    mtls?.trustDomain,
    policies.clusters,
  );
  const meshConfig = state.resources.find((r) => r.kind === 'MeshConfig' && r.metadata.name === 'default');
  const rateLimitService = rateLimitServiceOf(meshConfig?.spec as MeshConfigSpec | undefined);
  // A gateway has no local app: drop the inbound cluster buildClusters always adds.
  const inbound = inboundClusterName(proxy.appPort);
  return {
    listeners,
    routes: routeConfigs,
    // Like a sidecar's mesh clusters: h2 over mTLS to the sidecars (protocols.ts).
    clusters: withUpstreamProtocols(
      built.clusters.filter((c) => c.name !== inbound),
      used,
      state.resources,
      proxy,
      mtls !== undefined,
    ),
    endpoints: built.endpoints.filter((e) => e.clusterName !== inbound),
    ...(mtls !== undefined && { trustBundle: mtls.bundle }),
    ...(rateLimitService !== undefined && { rateLimitService }),
    ...(certificates.size > 0 && {
      certificates: [...certificates.values()].sort((a, b) => compareStrings(a.name, b.name)),
    }),
  };
}
