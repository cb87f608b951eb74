/**
 * Validation of user resources: the envelope (apiVersion, kind, metadata) and each kind's spec,
 * with defaults applied. This is the only gate between `weft apply` and the store.
 *
 * Envelope rules (Kubernetes conventions):
 * - `kind` is one of KINDS and `apiVersion` the one that kind belongs to;
 * - `metadata.name` is a DNS-1123 subdomain; `metadata.namespace` a DNS-1123 label, default
 *   `default` (MeshConfig is cluster-scoped: its namespace is dropped, its name is `default`);
 *   labels and annotations use Kubernetes key/value syntax;
 * - server-set fields (`status`, `metadata.resourceVersion`, `creationTimestamp`, `uid`,
 *   `generation`, `managedFields`, `selfLink`) are ignored, so `weft get -o yaml` (or
 *   `kubectl get -o yaml`) output can be applied again; any other unknown field is an error;
 * - a field set to `null` counts as absent.
 *
 * Every error reads `<Kind> <namespace>/<name>: <field path>: <reason>` (`<Kind> <name>` for
 * cluster-scoped kinds); when the document has no usable kind or name, its place stands in:
 * `route.yaml doc #2: kind: unknown kind "Foo" (known: HTTPRoute, …)`.
 *
 * Invariants: never throws on any input; the returned resource shares nothing with the input
 * and is deep-frozen. Spec-level semantic rules (CEL) run only once the spec is structurally
 * valid, so a fix can surface further errors on the next attempt.
 */

import { authorizationPolicy } from './kinds/authorizationpolicy.ts';
import { backendTrafficPolicy } from './kinds/backendtrafficpolicy.ts';
import { gateway } from './kinds/gateway.ts';
import { grpcRoute } from './kinds/grpcroute.ts';
import { httpRoute } from './kinds/httproute.ts';
import type { KindHandler } from './kinds/kind.ts';
import { meshConfig } from './kinds/meshconfig.ts';
import { rateLimitPolicy } from './kinds/ratelimitpolicy.ts';
import { secret } from './kinds/secret.ts';
import { securityPolicy } from './kinds/securitypolicy.ts';
import { service } from './kinds/service.ts';
import { dnsLabel, dnsSubdomain, labelValue, qualifiedName } from './names.ts';
import { sourceOf } from './parse.ts';
import { anything, Issues, isPlainObject, kindOf, map, obj, optional, show, str } from './schema.ts';
import { isClusterScoped, KINDS, type Kind, type ObjectMeta, type Resource, resourceId } from './types.ts';

/** The outcome of validating one document. */
export type ValidationResult = { ok: true; resource: Resource } | { ok: false; errors: string[] };

const HANDLERS: Readonly<Record<Kind, KindHandler>> = {
  HTTPRoute: httpRoute,
  GRPCRoute: grpcRoute,
  Gateway: gateway,
  Service: service,
  MeshConfig: meshConfig,
  BackendTrafficPolicy: backendTrafficPolicy,
  AuthorizationPolicy: authorizationPolicy,
  SecurityPolicy: securityPolicy,
  RateLimitPolicy: rateLimitPolicy,
  Secret: secret,
};

const KIND_NAMES = Object.keys(KINDS).join(', ');
const TOP_LEVEL = ['apiVersion', 'kind', 'metadata', 'spec', 'status'];
const IGNORED_META = [
  'resourceVersion',
  'creationTimestamp',
  'uid',
  'generation',
  'managedFields',
  'selfLink',
] as const;

const metadataSchema = obj({
  name: dnsSubdomain,
  namespace: optional(dnsLabel),
  labels: optional(map(labelValue, qualifiedName)),
  annotations: optional(map(str({ maxLength: 262144 }), qualifiedName)),
  ...Object.fromEntries(IGNORED_META.map((f) => [f, optional(anything())])),
});

/** A deep copy of a JSON value with `null` object members dropped. */
function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) out[k] = normalize(x);
    return out;
  }
  return v;
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

function isKnownKind(k: unknown): k is Kind {
  return typeof k === 'string' && Object.hasOwn(KINDS, k);
}

/**
 * Validates one document and applies defaults.
 * @param where names the document when it has no usable kind or name (default: where
 *   `parseDocuments` found it, else `document`).
 */
export function validateResource(
  input: unknown,
  where: string = sourceOf(input) ?? 'document',
): ValidationResult {
  if (!isPlainObject(input)) {
    return {
      ok: false,
      errors: [`${where}: must be an object with apiVersion, kind, metadata and spec (got ${kindOf(input)})`],
    };
  }
  const doc = normalize(input) as Record<string, unknown>;
  const kind = doc.kind;
  if (!isKnownKind(kind)) {
    const reason = kind === undefined ? 'is required' : `unknown kind ${show(kind)}`;
    return { ok: false, errors: [`${where}: kind: ${reason} (known: ${KIND_NAMES})`] };
  }
  const clusterScoped = isClusterScoped(kind);
  const rawMeta = isPlainObject(doc.metadata) ? doc.metadata : {};
  const rawName = typeof rawMeta.name === 'string' && rawMeta.name !== '' ? rawMeta.name : undefined;
  const namespace =
    typeof rawMeta.namespace === 'string' && rawMeta.namespace !== '' ? rawMeta.namespace : 'default';
  const label =
    rawName === undefined
      ? `${kind} ${where}`
      : clusterScoped
        ? `${kind} ${rawName}`
        : `${kind} ${namespace}/${rawName}`;

  const issues = new Issues();
  if (doc.apiVersion === undefined) issues.add('apiVersion', `is required (${KINDS[kind]} for kind ${kind})`);
  else if (doc.apiVersion !== KINDS[kind])
    issues.add('apiVersion', `must be ${KINDS[kind]} for kind ${kind} (got ${show(doc.apiVersion)})`);
  for (const key of Object.keys(doc)) {
    if (!TOP_LEVEL.includes(key)) issues.add(key, `unknown field (known: ${TOP_LEVEL.join(', ')})`);
  }
  if (doc.metadata === undefined) issues.add('metadata', 'is required');
  const meta =
    doc.metadata === undefined ? undefined : metadataSchema.check(doc.metadata, 'metadata', issues);
  if (kind === 'MeshConfig' && rawName !== undefined && rawName !== 'default') {
    issues.add('metadata.name', `must be "default": there is one MeshConfig per mesh (got ${show(rawName)})`);
  }
  if (doc.spec === undefined) issues.add('spec', 'is required');
  const spec =
    doc.spec === undefined
      ? undefined
      : HANDLERS[kind].check(doc.spec, { name: rawName ?? '', namespace }, issues);

  if (issues.count > 0 || meta === undefined || spec === undefined) {
    return {
      ok: false,
      errors: issues.list.map((i) =>
        i.path === '' ? `${label}: ${i.reason}` : `${label}: ${i.path}: ${i.reason}`,
      ),
    };
  }
  const metadata: ObjectMeta = {
    name: meta.name,
    ...(clusterScoped ? {} : { namespace }),
    ...(meta.labels ? { labels: meta.labels } : {}),
    ...(meta.annotations ? { annotations: meta.annotations } : {}),
  };
  return {
    ok: true,
    resource: deepFreeze({ apiVersion: KINDS[kind], kind, metadata, spec: spec as Record<string, unknown> }),
  };
}

/**
 * Validates a batch (one apply): every document, then rules across them (no two documents with
 * the same kind, namespace and name). `resources` holds the valid ones, in input order; the
 * batch is acceptable only when `errors` is empty.
 */
export function validateResources(docs: readonly unknown[]): { resources: Resource[]; errors: string[] } {
  const resources: Resource[] = [];
  const errors: string[] = [];
  const first = new Map<string, string>();
  docs.forEach((doc, i) => {
    const where = sourceOf(doc) ?? `doc #${i + 1}`;
    const result = validateResource(doc, where);
    if (!result.ok) {
      errors.push(...result.errors);
      return;
    }
    const r = result.resource;
    const id = resourceId(r);
    const seen = first.get(id);
    if (seen !== undefined) {
      const label = isClusterScoped(r.kind)
        ? `${r.kind} ${r.metadata.name}`
        : `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`;
      errors.push(`${label}: metadata.name: defined twice in this apply (${seen} and ${where})`);
      return;
    }
    first.set(id, where);
    resources.push(r);
  });
  return { resources, errors };
}
