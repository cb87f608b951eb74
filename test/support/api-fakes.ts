/**
 * Test support for the admin API and the CLI: an admin API on 127.0.0.1:0 over a `MemoryStore`
 * with the real `MeshStateCache` as its mesh, fake proxy status records (as the discovery server
 * would write them), and sample resource documents.
 */
import { startAdminApi } from '../../control-plane/api/server.ts';
import type { ProxyStatusRecord } from '../../control-plane/discovery/status.ts';
import { MeshStateCache } from '../../control-plane/mesh/state.ts';
import { proxyKey } from '../../control-plane/store/keys.ts';
import { MemoryStore } from './memory-store.ts';

export interface TestApi {
  readonly store: MemoryStore;
  readonly mesh: MeshStateCache;
  readonly url: string;
  readonly token: string;
  /** `fetch` against the API with the bearer token (unless `token: null`). */
  call(
    method: string,
    path: string,
    options?: { body?: string; token?: string | null },
  ): Promise<{ status: number; headers: Headers; body: unknown }>;
  close(): Promise<void>;
}

/** Starts the admin API over a fresh memory store. */
export async function startTestApi(token = 'test-token-0123456789'): Promise<TestApi> {
  const store = new MemoryStore();
  const mesh = new MeshStateCache(store);
  await mesh.start();
  const api = await startAdminApi({ store, token, mesh, address: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${api.port}`;
  return {
    store,
    mesh,
    url,
    token,
    async call(method, path, options = {}) {
      const headers: Record<string, string> = {};
      const t = options.token === undefined ? token : options.token;
      if (t !== null) headers.authorization = `Bearer ${t}`;
      const res = await fetch(`${url}${path}`, {
        method,
        headers,
        ...(options.body !== undefined && { body: options.body }),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
    },
    async close() {
      await api.close();
      await mesh.close();
      await store.close();
    },
  };
}

/** A connected sidecar's status record for service `reviews` (override any field). */
export function proxyRecord(proxyId: string, fields: Partial<ProxyStatusRecord> = {}): ProxyStatusRecord {
  return {
    proxyId,
    identity: {
      proxyId,
      kind: 'sidecar',
      service: 'reviews',
      namespace: 'default',
      workload: 'reviews-v1',
      labels: { app: 'reviews', version: 'v1' },
      outboundPort: 15001,
      inboundPort: 15006,
      appPort: 9080,
      listenAddress: '127.0.0.1',
    },
    replicaId: 'cp-0',
    connected: true,
    sentVersion: '',
    ackedVersion: '',
    syncedRevision: 0,
    connectedAt: '2026-11-30T10:00:00.000Z',
    ...fields,
  };
}

/** Writes (or replaces) proxy status records in the store, in one revision. */
export async function writeProxies(store: MemoryStore, ...records: ProxyStatusRecord[]): Promise<number> {
  return store.txn(records.map((r) => ({ op: 'put', key: proxyKey(r.proxyId), value: JSON.stringify(r) })));
}

export const SERVICE_YAML = `apiVersion: weft.dev/v1alpha1
kind: Service
metadata:
  name: reviews
  namespace: default
spec:
  ports:
    - port: 9080
      appProtocol: http
`;

/** An HTTPRoute attached to Service reviews, sending `/v2` to port `port`. */
export function routeYaml(options: { name?: string; prefix?: string } = {}): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: ${options.name ?? 'reviews'}
  namespace: default
spec:
  parentRefs:
    - group: ""
      kind: Service
      name: reviews
      port: 9080
  rules:
    - matches:
        - path:
            type: PathPrefix
            value: ${options.prefix ?? '/'}
      backendRefs:
        - name: reviews
          port: 9080
`;
}

/** A Service whose port is out of range: invalid at `spec.ports[0].port`. */
export const INVALID_SERVICE_YAML = `apiVersion: weft.dev/v1alpha1
kind: Service
metadata:
  name: broken
  namespace: default
spec:
  ports:
    - port: 70000
`;
