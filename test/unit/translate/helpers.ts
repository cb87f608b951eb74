/**
 * Test helpers for the translator: golden-case loading (test/golden/<case>/input.yaml) and small
 * builders for resources, endpoints and proxy identities.
 *
 * input.yaml: `description` (what the case shows, used as the test name), `revision`, `proxy`
 * (a ProxyIdentity), `resources` (Resource list), `endpoints` (EndpointRegistration list) and,
 * optionally, `trustBundle` (the CA's `{trustDomain, rootsPem}`: mesh mTLS on).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import {
  GATEWAY_API_VERSION,
  type Kind,
  type Resource,
  WEFT_API_VERSION,
} from '../../../control-plane/resources/types.ts';
import type {
  EndpointRegistration,
  MeshState,
  ProxyIdentity,
} from '../../../control-plane/translate/types.ts';
import type { ProxyConfig } from '../../../sidecar/proxy/config/model.ts';
import { checkAgainstProto } from '../../../sidecar/proxy/config/schema.ts';
import type { TrustBundle } from '../../../sidecar/proxy/config/types.ts';
import { checkConsistency } from '../../../sidecar/proxy/config/validate.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';
import { resolveConfig } from '../../../sidecar/proxy/upstream/resolve.ts';

export interface GoldenCase {
  readonly description: string;
  readonly state: MeshState;
  readonly proxy: ProxyIdentity;
}

/** Reads `<dir>/input.yaml`. */
export function loadCase(dir: string): GoldenCase {
  const doc = parse(readFileSync(`${dir}/input.yaml`, 'utf8')) as {
    description: string;
    revision: number;
    proxy: ProxyIdentity;
    resources?: Resource[];
    endpoints?: EndpointRegistration[];
    trustBundle?: TrustBundle;
  };
  return {
    description: doc.description,
    proxy: doc.proxy,
    state: {
      revision: doc.revision,
      resources: doc.resources ?? [],
      endpoints: doc.endpoints ?? [],
      ...(doc.trustBundle !== undefined && { trustBundle: doc.trustBundle }),
    },
  };
}

/**
 * Every problem the proxy itself would find in `config`: proto schema, cross-references, the
 * router compiler and the cluster resolver. Empty means the proxy would ACK it.
 */
export function proxyProblems(config: ProxyConfig): string[] {
  const problems = [...checkAgainstProto('weft.v1.Bootstrap', config), ...checkConsistency(config)];
  for (const rc of config.routes) {
    try {
      compileRouteTable(rc);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  try {
    resolveConfig(config.clusters, config.endpoints);
  } catch (err) {
    problems.push((err as Error).message);
  }
  return problems;
}

/** A sidecar identity in `namespace` fronting `service`. */
export function sidecar(service: string, namespace = 'default'): ProxyIdentity {
  return {
    proxyId: `${service}-0.${namespace}`,
    kind: 'sidecar',
    service,
    namespace,
    workload: `${service}-v1`,
    labels: { app: service },
    outboundPort: 15001,
    inboundPort: 15006,
    appPort: 8080,
    listenAddress: '127.0.0.1',
  };
}

/** A resource of `kind` with the right apiVersion. */
export function resource<S extends Record<string, unknown>>(
  kind: Kind,
  name: string,
  spec: S,
  meta: { namespace?: string; creationTimestamp?: string } = {},
): Resource {
  const apiVersion =
    kind === 'HTTPRoute' || kind === 'GRPCRoute' || kind === 'Gateway'
      ? GATEWAY_API_VERSION
      : WEFT_API_VERSION;
  return {
    apiVersion,
    kind,
    metadata: {
      name,
      namespace: meta.namespace ?? 'default',
      creationTimestamp: meta.creationTimestamp ?? '2026-11-30T10:00:00Z',
    },
    spec,
  };
}

/** A Service with one http port 8080 (or the given ports). */
export function service(name: string, namespace = 'default', ports: readonly number[] = [8080]): Resource {
  return resource('Service', name, { ports: ports.map((port) => ({ port })) }, { namespace });
}

/** A registration for a workload labelled `app: <app>` plus `labels`. */
export function registration(
  app: string,
  address: string,
  extra: Partial<EndpointRegistration> = {},
): EndpointRegistration {
  return {
    proxyId: `${app}-${address}`,
    namespace: 'default',
    address,
    port: 15006,
    weight: 1,
    draining: false,
    ...extra,
    labels: { app, ...extra.labels },
  };
}

/** Deterministic PRNG (mulberry32) in [0, 1), so a failing generated case replays from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
