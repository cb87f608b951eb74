/**
 * The control plane's in-memory view of the mesh: every stored resource and endpoint
 * registration, kept current by one store watch, and handed to the translator as an immutable
 * `MeshState` at one revision.
 *
 * Invariants: the view reflects a prefix of the store's history (a listing at revision R, then
 * every event after R in order); `state()` returns the same object until the next change;
 * resources are ordered by creationTimestamp, then namespace/name (Gateway API's tie-break order).
 * The CA's trust bundle (`/weft/system/trust-bundle`, JSON `{trustDomain, rootsPem}`) is part of
 * the state; a value of another shape is ignored, as if absent.
 */

import type { TrustBundle } from '../../sidecar/proxy/config/types.ts';
import type { Resource } from '../resources/types.ts';
import { ENDPOINTS, RESOURCES, ROOT, TRUST_BUNDLE_KEY } from '../store/keys.ts';
import type { Store, WatchEvent, Watcher } from '../store/types.ts';
import type { EndpointRegistration, MeshState } from '../translate/types.ts';

function compareResources(a: Resource, b: Resource): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  const na = `${a.metadata.namespace ?? 'default'}/${a.metadata.name}`;
  const nb = `${b.metadata.namespace ?? 'default'}/${b.metadata.name}`;
  return na < nb ? -1 : na > nb ? 1 : a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0;
}

/** The stored trust bundle, or undefined when the value is not `{trustDomain, rootsPem: [PEM, ...]}`. */
function trustBundleOf(value: string): TrustBundle | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    return undefined;
  }
  const { trustDomain, rootsPem } = (doc ?? {}) as { trustDomain?: unknown; rootsPem?: unknown };
  if (typeof trustDomain !== 'string' || trustDomain === '') return undefined;
  if (!Array.isArray(rootsPem) || rootsPem.length === 0 || !rootsPem.every((r) => typeof r === 'string'))
    return undefined;
  return { trustDomain, rootsPem: [...(rootsPem as string[])] };
}

export class MeshStateCache {
  readonly #store: Store;
  readonly #resources = new Map<string, Resource>();
  readonly #endpoints = new Map<string, EndpointRegistration>();
  readonly #listeners = new Set<(revision: number) => void>();
  #trustBundle: TrustBundle | undefined;
  #revision = 0;
  #state: MeshState | undefined;
  #watcher: Watcher | undefined;

  constructor(store: Store) {
    this.#store = store;
  }

  /** Lists the store and starts watching it. Resolves once the view is current. */
  async start(): Promise<void> {
    const { items, revision } = await this.#store.list(ROOT);
    for (const kv of items)
      this.#apply({ type: 'put', key: kv.key, value: kv.value, modRevision: kv.modRevision });
    this.#revision = revision;
    this.#watcher = await this.#store.watch(ROOT, revision + 1, (events, rev) => {
      let relevant = false;
      for (const e of events) relevant = this.#apply(e) || relevant;
      // Proxy status writes (ACKs) do not change the mesh: no new state, no recomputation.
      if (!relevant) return;
      this.#revision = rev;
      this.#state = undefined;
      for (const listener of this.#listeners) listener(rev);
    });
  }

  /** Applies one event; returns whether it touched resources, endpoints or the trust bundle. */
  #apply(e: WatchEvent): boolean {
    if (e.key === TRUST_BUNDLE_KEY) {
      this.#trustBundle = e.type === 'delete' ? undefined : trustBundleOf(e.value);
      return true;
    }
    const map = e.key.startsWith(RESOURCES)
      ? this.#resources
      : e.key.startsWith(ENDPOINTS)
        ? this.#endpoints
        : undefined;
    if (map === undefined) return false;
    if (e.type === 'delete') {
      map.delete(e.key);
      return true;
    }
    try {
      (map as Map<string, unknown>).set(e.key, JSON.parse(e.value));
    } catch {
      // A value that is not JSON was not written by Weft; it is ignored rather than served.
      map.delete(e.key);
    }
    return true;
  }

  /** The store revision the view is at. */
  get revision(): number {
    return this.#revision;
  }

  /** The mesh at the current revision (same object until the next change). */
  state(): MeshState {
    this.#state ??= {
      revision: this.#revision,
      resources: [...this.#resources.values()].sort(compareResources),
      endpoints: [...this.#endpoints.values()].sort((a, b) =>
        a.proxyId < b.proxyId ? -1 : a.proxyId > b.proxyId ? 1 : 0,
      ),
      ...(this.#trustBundle !== undefined && { trustBundle: this.#trustBundle }),
    };
    return this.#state;
  }

  /** Calls `listener(revision)` after every change; returns the unsubscribe function. */
  onChange(listener: (revision: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    await this.#watcher?.close();
  }
}
