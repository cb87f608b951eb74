/**
 * Harness for the discovery tests: a `DiscoveryServer` on 127.0.0.1 port 0 over a `MemoryStore`
 * with a scriptable `snapshotFor` (configs set per proxy id, calls counted), and `RawProxy`, a
 * scripted proxy end on a real grpc-js client that records what the server sends.
 */
import { credentials, type StatusObject } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import {
  type ControlMessage,
  createDiscoveryClient,
  type DiscoveryClientCall,
  type DiscoveryClientStub,
  type ProxyMessage,
  type SnapshotMessage,
} from '../../control-plane/discovery/proto.ts';
import { DiscoveryServer } from '../../control-plane/discovery/server.ts';
import { type ProxyStatusRecord, parseProxyStatus } from '../../control-plane/discovery/status.ts';
import { proxyKey } from '../../control-plane/store/keys.ts';
import type { ProxyIdentity, ProxySnapshot } from '../../control-plane/translate/types.ts';
import type { ProxyConfig } from '../../sidecar/proxy/config/model.ts';
import { MemoryStore } from '../support/memory-store.ts';

/** A small valid config whose only route answers `tag` (listener on port 0 when `port` is 0). */
export function configFor(tag: string, port = 0): ProxyConfig {
  return {
    listeners: [
      { name: 'outbound', address: '127.0.0.1', port, direction: 'OUTBOUND', routeConfigName: 'main' },
    ],
    routes: [
      {
        name: 'main',
        virtualHosts: [
          {
            name: 'any',
            domains: ['*'],
            routes: [{ name: tag, directResponse: { status: 200, body: tag } }],
          },
        ],
      },
    ],
    clusters: [],
    endpoints: [],
  };
}

/** A config the proxy core rejects (its listener names a missing RouteConfiguration). */
export function badConfig(tag: string): ProxyConfig {
  return {
    listeners: [{ name: 'outbound', address: '127.0.0.1', port: 0, routeConfigName: `missing-${tag}` }],
    routes: [],
    clusters: [],
    endpoints: [],
  };
}

/** Polls `fn` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function until<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface TestServer {
  readonly server: DiscoveryServer;
  readonly store: MemoryStore;
  readonly registry: Registry;
  readonly port: number;
  readonly address: string;
  /** snapshotFor calls so far, by proxy id. */
  readonly calls: Map<string, number>;
  /** Sets a proxy's config (undefined: no snapshot) at a new store revision; returns it. */
  setConfig(proxyId: string, config: ProxyConfig | undefined): Promise<number>;
  /** The status record of `proxyId` in the store, or undefined. */
  record(proxyId: string): Promise<ProxyStatusRecord | undefined>;
  /** A metric's current value (summed over its series; `_count` for histograms). */
  metric(name: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startServer(
  options: { store?: MemoryStore; port?: number; configs?: Map<string, ProxyConfig | undefined> } = {},
): Promise<TestServer> {
  const store = options.store ?? new MemoryStore();
  const registry = new Registry();
  const configs = options.configs ?? new Map<string, ProxyConfig | undefined>();
  const calls = new Map<string, number>();
  let revision = await store.revision();
  const snapshotFor = (identity: ProxyIdentity): ProxySnapshot | undefined => {
    calls.set(identity.proxyId, (calls.get(identity.proxyId) ?? 0) + 1);
    const config = configs.get(identity.proxyId);
    return config === undefined ? undefined : { version: String(revision), config };
  };
  const server = new DiscoveryServer({
    store,
    snapshotFor,
    replicaId: 'cp-test',
    registry,
    leaseTtlSeconds: 10,
    // These tests check stream mechanics; the reconnect grace is checked in test/faults.
    reconnectGraceMs: 0,
  });
  const port = await server.start('127.0.0.1', options.port ?? 0);
  return {
    server,
    store,
    registry,
    port,
    address: `127.0.0.1:${port}`,
    calls,
    async setConfig(proxyId, config) {
      revision = await store.txn([
        { op: 'put', key: `/weft/resources/Test/default/${proxyId}`, value: '{}' },
      ]);
      configs.set(proxyId, config);
      return revision;
    },
    async record(proxyId) {
      const kv = await store.get(proxyKey(proxyId));
      return kv === undefined ? undefined : parseProxyStatus(kv.key, kv.value);
    },
    async metric(name) {
      const m = (await registry.getSingleMetric(name)?.get()) as
        | { values: { value: number; metricName?: string }[] }
        | undefined;
      if (m === undefined) throw new Error(`no metric ${name}`);
      const counts = m.values.filter((v) => v.metricName === `${name}_count`);
      const values =
        counts.length > 0
          ? counts
          : m.values.filter((v) => v.metricName === undefined || v.metricName === name);
      return values.reduce((sum, v) => sum + v.value, 0);
    },
    stop: () => server.stop(),
  };
}

/** A scripted proxy: one raw Stream call that records snapshots and the final status. */
export class RawProxy {
  readonly #client: DiscoveryClientStub;
  readonly call: DiscoveryClientCall;
  readonly snapshots: SnapshotMessage[] = [];
  readonly ended: Promise<StatusObject>;
  #waiters: (() => void)[] = [];

  constructor(address: string) {
    this.#client = createDiscoveryClient(address, credentials.createInsecure());
    this.call = this.#client.Stream();
    this.call.on('data', (m: ControlMessage) => {
      if (m.snapshot !== undefined) this.snapshots.push(m.snapshot);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.call.on('error', () => {});
    this.ended = new Promise((resolve) => this.call.on('status', resolve));
  }

  send(message: ProxyMessage): void {
    this.call.write(message);
  }

  hello(proxyId: string, extra: Omit<NonNullable<ProxyMessage['hello']>, 'proxyId'> = {}): void {
    this.send({ hello: { proxyId, service: proxyId.split('-')[0] ?? proxyId, ...extra } });
  }

  /** Resolves with snapshot number `n` (1-based) once received; rejects after `timeoutMs`. */
  async snapshot(n: number, timeoutMs = 5000): Promise<SnapshotMessage> {
    const deadline = Date.now() + timeoutMs;
    while (this.snapshots.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for snapshot #${n} (got ${this.snapshots.length})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.snapshots[n - 1] as SnapshotMessage;
  }

  ack(s: SnapshotMessage): void {
    this.send({ ack: { version: s.version ?? '', nonce: s.nonce ?? '' } });
  }

  /** Cancels the call and closes the client; resolves with the call's final status. */
  async close(): Promise<StatusObject> {
    this.call.cancel();
    const status = await this.ended;
    this.#client.close();
    return status;
  }
}
