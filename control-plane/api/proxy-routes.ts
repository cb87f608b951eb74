/**
 * Proxy routes of the admin API:
 *
 *   GET /v1/proxies                          → ProxyList (status records under /weft/proxies/)
 *   GET /v1/proxies/<id>/config              → translate(mesh state, proxy identity) (404 unknown proxy),
 *                                              private keys of server certificates redacted
 *   GET /v1/rollout?revision=R[&timeoutMs=T] → RolloutReceipt, waiting up to T ms (default 30 s)
 */

import type { ProxyStatusRecord } from '../discovery/status.ts';
import { PROXIES, proxyKey } from '../store/keys.ts';
import type { Store } from '../store/types.ts';
import { redactSnapshotKeys } from '../translate/redact.ts';
import { translate } from '../translate/translate.ts';
import type { MeshState } from '../translate/types.ts';
import { ApiError } from './http.ts';
import { parseProxyRecord, waitForRollout } from './rollout.ts';
import type { Route } from './router.ts';
import type { ProxyList } from './types.ts';

/** Default and largest rollout wait (ms). */
export const DEFAULT_ROLLOUT_TIMEOUT_MS = 30_000;
export const MAX_ROLLOUT_TIMEOUT_MS = 10 * 60_000;

export interface ProxyRouteDeps {
  readonly store: Store;
  readonly mesh: { state(): MeshState };
}

/** A non-negative integer query parameter, `fallback` when absent; 400 when malformed. */
function intParam(url: URL, name: string, fallback?: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') {
    if (fallback === undefined) throw new ApiError(400, `query parameter ${name} is required`);
    return fallback;
  }
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new ApiError(400, `${name} must be a non-negative integer`);
  return n;
}

export function proxyRoutes({ store, mesh }: ProxyRouteDeps): Route[] {
  return [
    {
      method: 'GET',
      pattern: /^\/v1\/proxies$/,
      async handler(): Promise<ProxyList> {
        const { items, revision } = await store.list(PROXIES);
        const records = items
          .map((kv) => parseProxyRecord(kv.key, kv.value))
          .filter((r): r is ProxyStatusRecord => r !== undefined);
        return { revision, items: records };
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/proxies\/([^/]+)\/config$/,
      async handler({ params: [id = ''] }) {
        const kv = await store.get(proxyKey(id));
        const record = kv && parseProxyRecord(kv.key, kv.value);
        if (!record) throw new ApiError(404, `proxy ${id} not found`);
        return redactSnapshotKeys(translate(mesh.state(), record.identity));
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/rollout$/,
      async handler({ url, signal }) {
        const revision = intParam(url, 'revision');
        const timeoutMs = Math.min(
          intParam(url, 'timeoutMs', DEFAULT_ROLLOUT_TIMEOUT_MS),
          MAX_ROLLOUT_TIMEOUT_MS,
        );
        return waitForRollout(store, revision, timeoutMs, signal);
      },
    },
  ];
}
