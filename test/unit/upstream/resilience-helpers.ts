/**
 * Helpers for the cluster-resilience unit tests (breakers, budget, outlier detection, health checks):
 * a cluster manager over fake endpoints (127.0.0.1 ports nobody listens on: pools are made but never
 * dispatched to), attempt outcomes, a microtask flush for opossum's promise-driven transitions and a
 * recorder for the telemetry channels.
 */
import diagnostics from 'node:diagnostics_channel';
import type { Cluster, Endpoint } from '../../../sidecar/proxy/config/types.ts';
import { ClusterManager, type ManagedCluster } from '../../../sidecar/proxy/upstream/cluster-manager.ts';
import type { AttemptOutcome, UpstreamEndpoint } from '../../../sidecar/proxy/upstream/types.ts';
import { ctx } from './helpers.ts';

/** `127.0.0.1:<10001 + i>` for i in [0, n). */
export function fakeEndpoints(n: number, extra: Partial<Endpoint> = {}): Endpoint[] {
  return Array.from({ length: n }, (_, i) => ({ address: '127.0.0.1', port: 10_001 + i, ...extra }));
}

export const key = (i: number): string => `127.0.0.1:${10_001 + i}`;

export const OK: AttemptOutcome = { kind: 'response', status: 200 };
export const S500: AttemptOutcome = { kind: 'response', status: 500 };
export const S503: AttemptOutcome = { kind: 'response', status: 503 };
export const S502: AttemptOutcome = { kind: 'response', status: 502 };
export const CONNECT_FAILURE: AttemptOutcome = { kind: 'error', error: 'UPSTREAM_CONNECT_FAILURE' };
export const RESET: AttemptOutcome = { kind: 'error', error: 'UPSTREAM_RESET' };
export const CLIENT_GONE: AttemptOutcome = { kind: 'error', error: 'DOWNSTREAM_DISCONNECT' };

export interface Harness {
  readonly manager: ClusterManager;
  readonly cluster: ManagedCluster;
  /** The endpoint object with key `key(i)`. */
  endpoint(i: number): UpstreamEndpoint;
  /** Records `outcome` on endpoint i, `times` times. */
  record(i: number, outcome: AttemptOutcome, times?: number): void;
  /** Keys of `n` picks (round robin from the first endpoint), `none` for undefined. */
  picks(n?: number): string[];
  /** The distinct keys of `n` picks. */
  picked(n?: number): Set<string>;
}

/** A manager with one cluster `web` (round robin starting at the first endpoint) of `n` fake endpoints. */
export function harness(cluster: Omit<Cluster, 'name'>, n: number, random: () => number = () => 0): Harness {
  const manager = new ClusterManager({ random });
  manager.update([{ name: 'web', ...cluster }], [{ clusterName: 'web', endpoints: fakeEndpoints(n) }]);
  const web = manager.get('web') as ManagedCluster;
  const endpoint = (i: number): UpstreamEndpoint => {
    const found = web.endpoints.find((e) => e.key === key(i));
    if (found === undefined) throw new Error(`no endpoint ${key(i)}`);
    return found;
  };
  const picks = (count = 12): string[] =>
    Array.from({ length: count }, () => web.pick(ctx(Math.random))?.key ?? 'none');
  return {
    manager,
    cluster: web,
    endpoint,
    record(i, outcome, times = 1) {
      for (let t = 0; t < times; t++) web.record(endpoint(i), outcome);
    },
    picks,
    picked: (count = 12) => new Set(picks(count)),
  };
}

/** Lets opossum's promise callbacks (success/failure → state change) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** Collects every message published on `channel` until `stop()`. */
export function recordChannel<T>(name: string): { readonly messages: T[]; stop(): void } {
  const messages: T[] = [];
  const onMessage = (message: unknown): void => {
    messages.push(message as T);
  };
  diagnostics.subscribe(name, onMessage);
  return { messages, stop: () => diagnostics.unsubscribe(name, onMessage) };
}
