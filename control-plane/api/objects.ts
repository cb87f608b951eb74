/**
 * How the admin API stores and compares resources.
 *
 * - A resource lives at `resourceKey(kind, namespace, name)` as JSON. The stored JSON carries
 *   `metadata.namespace` (defaulted) and `metadata.creationTimestamp` (set on create, kept on
 *   update). `metadata.resourceVersion` is not stored: it is the key's `modRevision`, which is the
 *   revision of the write, and is filled in on every read (`fromStore`), as Kubernetes does on etcd.
 * - Two versions are "the same" when their user-owned parts (apiVersion, kind, metadata without
 *   the server-set fields, spec) are equal after sorting object keys (`userView`).
 */

import { KINDS, type Kind, type Resource, resourceId } from '../resources/types.ts';
import { resourceKey } from '../store/keys.ts';
import type { KeyValue } from '../store/types.ts';

/** Where and as what a document would be stored. */
export interface Identity {
  readonly kind: Kind;
  readonly namespace: string;
  readonly name: string;
  readonly id: string;
  readonly key: string;
}

export function identityOf(r: Pick<Resource, 'kind' | 'metadata'>): Identity {
  const namespace = r.metadata.namespace ?? 'default';
  return {
    kind: r.kind,
    namespace,
    name: r.metadata.name,
    id: resourceId(r),
    key: resourceKey(r.kind, namespace, r.metadata.name),
  };
}

/** True when `kind` is one of `KINDS` (exact spelling). */
export function isKind(kind: string): kind is Kind {
  return Object.hasOwn(KINDS, kind);
}

/**
 * The identity of a raw document without full validation (enough to delete it): `kind` must be a
 * known kind and `metadata.name` a non-empty string. Returns an error text otherwise.
 */
export function looseIdentity(doc: unknown, index: number): Identity | string {
  const d = doc as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
  if (typeof d !== 'object' || d === null) return `document ${index + 1}: not an object`;
  if (typeof d.kind !== 'string' || !isKind(d.kind)) {
    return `document ${index + 1}: kind: must be one of ${Object.keys(KINDS).join(', ')}`;
  }
  const name = d.metadata?.name;
  if (typeof name !== 'string' || name === '') return `document ${index + 1}: metadata.name: required`;
  const ns = d.metadata?.namespace;
  if (ns !== undefined && typeof ns !== 'string')
    return `document ${index + 1}: metadata.namespace: must be a string`;
  return identityOf({ kind: d.kind, metadata: { name, ...(ns !== undefined && { namespace: ns }) } });
}

/** Recursively sorts object keys (arrays keep their order); drops `undefined` values. */
export function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = canonical(v);
    }
    return out;
  }
  return value;
}

/** The user-owned part of a resource, canonical: no status, creationTimestamp or resourceVersion. */
export function userView(r: Resource): unknown {
  const { creationTimestamp: _c, resourceVersion: _v, ...metadata } = r.metadata;
  return canonical({
    apiVersion: r.apiVersion,
    kind: r.kind,
    metadata: { ...metadata, namespace: r.metadata.namespace ?? 'default' },
    spec: r.spec,
  });
}

/** True when the two resources have the same user-owned content. */
export function sameContent(a: Resource, b: Resource): boolean {
  return JSON.stringify(userView(a)) === JSON.stringify(userView(b));
}

/**
 * The JSON to store for `r`: namespace defaulted, `creationTimestamp` kept from `previous` or set
 * to `now`, no `resourceVersion` and no `status`.
 */
export function toStored(r: Resource, previous: Resource | undefined, now: Date): string {
  const { resourceVersion: _v, ...metadata } = r.metadata;
  const stored: Resource = {
    apiVersion: r.apiVersion,
    kind: r.kind,
    metadata: {
      ...metadata,
      namespace: r.metadata.namespace ?? 'default',
      creationTimestamp:
        previous?.metadata.creationTimestamp ?? r.metadata.creationTimestamp ?? now.toISOString(),
    },
    spec: r.spec,
  };
  return JSON.stringify(stored);
}

/**
 * The resource in a store entry, with `metadata.resourceVersion` = the key's modRevision.
 * Returns undefined when the value is not a JSON object (a foreign or corrupt entry).
 */
export function fromStore(kv: KeyValue): Resource | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(kv.value);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const r = parsed as Resource;
  return { ...r, metadata: { ...r.metadata, resourceVersion: String(kv.modRevision) } };
}
