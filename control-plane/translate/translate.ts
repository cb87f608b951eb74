/**
 * The translator: mesh state (resources + endpoint registrations at one store revision) and one
 * proxy's identity → that proxy's config snapshot. Pure: no I/O, no clock, no randomness.
 *
 * A sidecar gets (GAMMA mesh binding, Gateway API v1 HTTPRoute/GRPCRoute semantics):
 * - listeners `outbound` (outboundAddress (default listenAddress):outboundPort → route config
 *   `outbound`) and `inbound`
 *   (listenAddress:inboundPort → route config `inbound`), both trusting one X-Forwarded-For hop;
 *   the inbound listener carries the `rbac` of the AuthorizationPolicies that apply (authz.ts);
 * - route config `outbound`: one virtual host per Service with a routed (non-tcp) port, for its
 *   DNS names (services.ts); its routes are the rules of the routes attached to the Service that
 *   apply to this client (attach.ts, routes.ts, grpc.ts), or one `default` route forwarding to
 *   the Service's own cluster when none applies. Requests matching no rule get 404 from the proxy;
 * - route config `inbound`: every request to the local app (`inbound|<appPort>`);
 * - a cluster and load assignment for every Service port a route forwards or mirrors to, plus
 *   the inbound cluster (clusters.ts);
 * - the BackendTrafficPolicy resilience settings: route-level ones on the routes to the targeted
 *   Service, cluster-level ones on its clusters (resilience.ts);
 * - once the CA's trust bundle exists: the inbound listener's `tls` (STRICT | PERMISSIVE from the
 *   MeshConfig), mTLS mesh clusters with each endpoint's expected SPIFFE ID, and the trust bundle
 *   itself (mtls.ts); without one, plain text everywhere.
 * - TCP services (`appProtocol: tcp`, with mesh mTLS): a TCP proxy listener per upstream bind the
 *   sidecar declared, and the inbound listener's `inboundTcp` ports (tcp.ts).
 * A gateway proxy gets the listeners, routes and clusters of its Gateway (gateway.ts).
 *
 * Invariants (go-control-plane's snapshot rules): the result is consistent (every
 * routeConfigName and cluster it names exists; otherwise this is a translator bug and it throws),
 * deterministic (input order never matters; every list is sorted or in Gateway API tie-break
 * order) and deeply frozen. `version` is the store revision as a decimal string.
 */
import type { ProxyConfig } from '../../sidecar/proxy/config/model.ts';
import type {
  DownstreamTls,
  Listener,
  Route,
  RouteConfiguration,
  VirtualHost,
} from '../../sidecar/proxy/config/types.ts';
import { checkConsistency } from '../../sidecar/proxy/config/validate.ts';
import { attachRoutes, effectiveRoutes, routeResources } from './attach.ts';
import { inboundRbac } from './authz.ts';
import { buildClusters, lbSettings, type OutboundClusterRef } from './clusters.ts';
import { translateGateway } from './gateway.ts';
import { meshMtls } from './mtls.ts';
import { compareStrings } from './order.ts';
import { withUpstreamProtocols } from './protocols.ts';
import { applyRoutePolicy, type TrafficPolicies, trafficPolicies } from './resilience.ts';
import { translateRouteRules } from './routes.ts';
import {
  inboundClusterName,
  indexServices,
  type MeshService,
  outboundClusterName,
  serviceDomains,
} from './services.ts';
import { tcpIdleTimeouts, translateTcp } from './tcp.ts';
import type { MeshState, ProxyIdentity, ProxySnapshot } from './types.ts';

export {
  CONTROLLER_NAME,
  type RouteCondition,
  type RouteParentStatus,
  type RouteStatus,
  routeStatus,
} from './status.ts';

export const OUTBOUND = 'outbound';
export const INBOUND = 'inbound';

const EMPTY_CONFIG: ProxyConfig = { listeners: [], routes: [], clusters: [], endpoints: [] };

/** Thrown when the translator produced an inconsistent config: a bug here, never bad input. */
export class TranslatorBug extends Error {
  readonly problems: readonly string[];
  constructor(proxyId: string, version: string, problems: readonly string[]) {
    super(
      `translator produced an inconsistent config for ${proxyId} at version ${version}: ${problems.join('; ')}`,
    );
    this.name = 'TranslatorBug';
    this.problems = problems;
  }
}

/** `value` with every nested object and array frozen. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function listeners(proxy: ProxyIdentity, inboundTls?: DownstreamTls): Listener[] {
  const address = proxy.listenAddress;
  return [
    {
      name: INBOUND,
      address,
      port: proxy.inboundPort,
      direction: 'INBOUND',
      routeConfigName: INBOUND,
      xffNumTrustedHops: 1,
      ...(inboundTls !== undefined && { tls: inboundTls }),
    },
    {
      name: OUTBOUND,
      address: proxy.outboundAddress ?? address,
      port: proxy.outboundPort,
      direction: 'OUTBOUND',
      routeConfigName: OUTBOUND,
      xffNumTrustedHops: 1,
    },
  ];
}

function inboundRoutes(appPort: number): RouteConfiguration {
  return {
    name: INBOUND,
    virtualHosts: [
      {
        name: INBOUND,
        domains: ['*'],
        routes: [{ name: INBOUND, route: { clusters: [{ name: inboundClusterName(appPort) }] } }],
      },
    ],
  };
}

/** The `default` route of a Service without applicable routes: plain forwarding (GAMMA). */
function defaultRoute(svc: MeshService, port: number): Route {
  return {
    name: 'default',
    route: { clusters: [{ name: outboundClusterName(port, svc.name, svc.namespace) }] },
  };
}

/** The outbound route config and the Service port clusters its routes forward to. */
function outbound(
  state: MeshState,
  proxy: ProxyIdentity,
  policies: TrafficPolicies,
): { config: RouteConfiguration; used: OutboundClusterRef[] } {
  const services = indexServices(state.resources);
  const attached = attachRoutes(routeResources(state.resources), services);
  const claimed = new Set<string>();
  const virtualHosts: VirtualHost[] = [];
  for (const svc of services.list) {
    const port = svc.routedPort;
    if (port === undefined) continue;
    // Each domain belongs to one virtual host (the proxy rejects duplicates); first in order wins.
    const domains = serviceDomains(svc, proxy.namespace).filter((d) => !claimed.has(d));
    if (domains.length === 0) continue;
    for (const d of domains) claimed.add(d);
    const routes = effectiveRoutes(svc, attached.get(svc.key) ?? [], proxy.namespace);
    const policy = policies.routes.get(svc.key);
    virtualHosts.push({
      name: `${svc.name}.${svc.namespace}:${port}`,
      domains,
      routes:
        routes.length === 0
          ? [applyRoutePolicy(defaultRoute(svc, port), policy, false)]
          : translateRouteRules(services, routes, port, undefined, policy),
    });
  }

  const referenced = new Set<string>();
  for (const vh of virtualHosts) {
    for (const r of vh.routes ?? []) {
      for (const c of r.route?.clusters ?? []) if (c.invalidReason === undefined) referenced.add(c.name);
      for (const m of r.mirrors ?? []) referenced.add(m.cluster);
    }
  }
  const used: OutboundClusterRef[] = [];
  for (const service of services.list) {
    for (const { port } of service.ports) {
      const name = outboundClusterName(port, service.name, service.namespace);
      if (referenced.has(name)) used.push({ name, service, port });
    }
  }
  return { config: { name: OUTBOUND, virtualHosts }, used };
}

/**
 * The config snapshot for `proxy` at `state.revision`.
 * @returns `{version: String(state.revision), config}`, deeply frozen.
 * @throws TranslatorBug when the result fails `checkConsistency` (a bug in this module).
 */
export function translate(state: MeshState, proxy: ProxyIdentity): ProxySnapshot {
  const version = String(state.revision);
  if (proxy.kind === 'gateway') return checked(proxy, version, translateGateway(state, proxy));
  if (proxy.kind !== 'sidecar') return deepFreeze({ version, config: EMPTY_CONFIG });

  const policies = trafficPolicies(state.resources);
  const { config: outboundConfig, used } = outbound(state, proxy, policies);
  const mtls = meshMtls(state);
  // TCP services: upstream bind listeners, their clusters, the inbound TCP ports (tcp.ts).
  const tcp = translateTcp(
    indexServices(state.resources),
    proxy,
    mtls?.trustDomain,
    tcpIdleTimeouts(state.resources),
  );
  const { clusters, endpoints } = buildClusters(
    [...used, ...tcp.refs.filter((r) => !used.some((u) => u.name === r.name))],
    state.endpoints,
    lbSettings(state.resources),
    proxy.appPort,
    mtls?.trustDomain,
    policies.clusters,
  );
  // AuthorizationPolicy: the inbound listener's rbac (authz.ts).
  const rbac = inboundRbac(state.resources, proxy);
  const config: ProxyConfig = {
    listeners: [
      ...listeners(proxy, mtls?.inbound).map((l) =>
        l.name !== INBOUND
          ? l
          : {
              ...l,
              ...(rbac !== undefined && { rbac }),
              ...(tcp.inboundPorts.length > 0 && { inboundTcp: { ports: tcp.inboundPorts } }),
            },
      ),
      ...tcp.listeners,
    ],
    routes: [inboundRoutes(proxy.appPort), outboundConfig].sort((a, b) => compareStrings(a.name, b.name)),
    clusters: withUpstreamProtocols(clusters, used, state.resources, proxy, mtls !== undefined),
    endpoints,
    ...(mtls !== undefined && { trustBundle: mtls.bundle }),
  };
  return checked(proxy, version, config);
}

/** `config` frozen as the snapshot at `version`, after the consistency check. */
function checked(proxy: ProxyIdentity, version: string, config: ProxyConfig): ProxySnapshot {
  const problems = checkConsistency(config);
  if (problems.length > 0) throw new TranslatorBug(proxy.proxyId, version, problems);
  return deepFreeze({ version, config });
}
