/**
 * Consistency checks over a whole proxy config, after the schema check: names are unique, every
 * name a resource refers to exists (go-control-plane's `Snapshot.Consistent`), and ports are in
 * range. Each problem names the resource, the field and the reason.
 */
import { LIMIT_DEFAULTS } from '../http/listener.ts';
import { checkStreamTimeouts } from '../http/stream-timeouts.ts';
import { checkInboundTcp, checkTcpListener } from '../tcp/config.ts';
import type { ProxyConfig } from './model.ts';

export function checkConsistency(config: ProxyConfig): string[] {
  const problems: string[] = [];
  const routeNames = new Set<string>();
  for (const [i, rc] of config.routes.entries()) {
    if (!rc.name) problems.push(`RouteConfiguration #${i}: name: must not be empty`);
    else if (routeNames.has(rc.name)) problems.push(`RouteConfiguration ${rc.name}: name: duplicate`);
    routeNames.add(rc.name);
  }
  const clusterNames = new Set(config.clusters.map((c) => c.name));
  const listenerNames = new Set<string>();
  const bound = new Set<string>();
  for (const [i, l] of config.listeners.entries()) {
    const id = `Listener ${l.name || `#${i}`}`;
    if (!l.name) problems.push(`${id}: name: must not be empty`);
    else if (listenerNames.has(l.name)) problems.push(`${id}: name: duplicate`);
    listenerNames.add(l.name);
    if (!Number.isInteger(l.port) || l.port < 0 || l.port > 65535)
      problems.push(`${id}: port: must be 0..65535`);
    const addr = `${l.address ?? '127.0.0.1'}:${l.port}`;
    if (l.port !== 0 && bound.has(addr)) problems.push(`${id}: port: ${addr} is used by another listener`);
    bound.add(addr);
    problems.push(...checkInboundTcp(l, id));
    problems.push(...checkStreamTimeouts(l, id, LIMIT_DEFAULTS.requestHeadersTimeoutMs));
    if (l.tcpProxy !== undefined) {
      problems.push(...checkTcpListener(l, id, clusterNames));
    } else if (!routeNames.has(l.routeConfigName)) {
      problems.push(`${id}: routeConfigName: no RouteConfiguration named "${l.routeConfigName}"`);
    }
  }
  for (const rc of config.routes) {
    for (const vh of rc.virtualHosts ?? []) {
      for (const [ri, r] of (vh.routes ?? []).entries()) {
        const id = `RouteConfiguration ${rc.name}: virtualHosts[${vh.name ?? ''}].routes[${r.name ?? ri}]`;
        if (!r.route && !r.redirect && !r.directResponse) {
          problems.push(`${id}: action: one of route, redirect, directResponse is required`);
        }
        for (const wc of r.route?.clusters ?? []) {
          if (wc.invalidReason === undefined && !clusterNames.has(wc.name)) {
            problems.push(`${id}: route.clusters: no Cluster named "${wc.name}"`);
          }
        }
        for (const [mi, m] of (r.mirrors ?? []).entries()) {
          if (!clusterNames.has(m.cluster))
            problems.push(`${id}: mirrors[${mi}].cluster: no Cluster named "${m.cluster}"`);
        }
      }
    }
  }
  return problems;
}
