/**
 * Rollout receipts: has every connected proxy taken revision R?
 *
 * A connected proxy is `nacked` when its last NACK is for a version >= R that is newer than what
 * it has synced, `synced` when its `syncedRevision` >= R, else `pending`. Proxies that are not
 * connected (or whose record is gone: lease expired) are not waited for. The wait lists the
 * proxies prefix once, then follows a store watch from the next revision, so no change is missed;
 * it ends when nothing is pending, at the deadline (`complete: false`) or when aborted.
 */

import { type ProxyStatusRecord, parseProxyStatus } from '../discovery/status.ts';
import { PROXIES } from '../store/keys.ts';
import type { Store, WatchEvent } from '../store/types.ts';
import type { RolloutReceipt } from './types.ts';

/** Parses a proxy status record; undefined when the value is not one (foreign or corrupt entry). */
export function parseProxyRecord(key: string, value: string): ProxyStatusRecord | undefined {
  try {
    return parseProxyStatus(key, value);
  } catch {
    return undefined;
  }
}

/** Numeric value of a version ('' or non-numeric → -1). */
function versionNumber(version: string | number | undefined): number {
  const n = Number(version);
  return version === '' || version === undefined || !Number.isFinite(n) ? -1 : n;
}

/** Classifies the connected proxies of `records` against `revision` (ids sorted). */
export function receipt(revision: number, records: Iterable<ProxyStatusRecord>): RolloutReceipt {
  const synced: string[] = [];
  const pending: string[] = [];
  const nacked: { proxyId: string; version: string; reason: string }[] = [];
  const sorted = [...records].sort((a, b) => a.proxyId.localeCompare(b.proxyId));
  for (const r of sorted) {
    if (!r.connected) continue;
    const synchedTo = versionNumber(r.syncedRevision);
    const nackedAt = versionNumber(r.lastNack?.version);
    if (r.lastNack && nackedAt >= revision && nackedAt > synchedTo) {
      nacked.push({ proxyId: r.proxyId, version: String(r.lastNack.version), reason: r.lastNack.reason });
    } else if (synchedTo >= revision) synced.push(r.proxyId);
    else pending.push(r.proxyId);
  }
  return { revision, complete: pending.length === 0, synced, nacked, pending };
}

/**
 * Waits until no connected proxy is pending for `revision`, at most `timeoutMs`; resolves with the
 * receipt at that moment (also when `signal` aborts). Rejects only on store errors.
 */
export async function waitForRollout(
  store: Store,
  revision: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<RolloutReceipt> {
  const { items, revision: listedAt } = await store.list(PROXIES);
  const records = new Map<string, ProxyStatusRecord>();
  for (const kv of items) {
    const record = parseProxyRecord(kv.key, kv.value);
    if (record) records.set(kv.key, record);
  }
  let current = receipt(revision, records.values());
  if (current.complete || timeoutMs <= 0 || signal?.aborted) return current;

  return new Promise<RolloutReceipt>((resolve, reject) => {
    let settled = false;
    let watcher: { close(): Promise<void> } | undefined;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      resolve(current);
      void watcher?.close().catch(() => {});
    };
    const timer = setTimeout(finish, timeoutMs);
    signal?.addEventListener('abort', finish, { once: true });
    const onEvents = (events: readonly WatchEvent[]): void => {
      for (const e of events) {
        const record = e.type === 'put' ? parseProxyRecord(e.key, e.value) : undefined;
        if (record) records.set(e.key, record);
        else records.delete(e.key);
      }
      current = receipt(revision, records.values());
      if (current.complete) finish();
    };
    store.watch(PROXIES, listedAt + 1, onEvents).then(
      (w) => {
        watcher = w;
        if (settled) void w.close().catch(() => {});
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', finish);
        reject(err);
      },
    );
  });
}
