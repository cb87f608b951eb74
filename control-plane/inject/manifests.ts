/**
 * `weft inject`: sidecar injection into a stream of Kubernetes manifests (YAML, several documents
 * separated by `---`, `kind: List` documents with `items`). Each workload's pod template goes
 * through `injectPodTemplate` (pod.ts):
 *
 * | kind (apiVersion)                                          | pod template at              |
 * | ---------------------------------------------------------- | ---------------------------- |
 * | Deployment, StatefulSet, DaemonSet, ReplicaSet (`apps/v1`) | `spec.template`              |
 * | Job (`batch/v1`)                                           | `spec.template`              |
 * | CronJob (`batch/v1`)                                       | `spec.jobTemplate.spec.template` |
 * | Pod (`v1`)                                                 | the object itself            |
 *
 * Every other document is passed through as written. A Namespace in the same stream labelled
 * `weft.dev/inject: disabled` turns injection off for the workloads in it (unless a pod template
 * says `enabled`), as the webhook would.
 *
 * Invariants: documents keep their order and their comments (only the pod template node is
 * replaced); injecting the output again changes nothing; any bad `config.weft.dev/*` value
 * fails the whole run (nothing half-injected is written).
 */

import type { IPodTemplateSpec } from 'kubernetes-models/v1';
import { type Document, isMap, isSeq, parseAllDocuments } from 'yaml';
import { INJECT_LABEL, InjectionError, type InjectorConfig } from './config.ts';
import { injectPodTemplate, type PodInjection } from './pod.ts';

/** Where a kind keeps its pod template, by `apiVersion/kind`. `[]` = the object is a Pod. */
export const TEMPLATE_PATHS: Readonly<Record<string, readonly string[]>> = {
  'apps/v1/Deployment': ['spec', 'template'],
  'apps/v1/StatefulSet': ['spec', 'template'],
  'apps/v1/DaemonSet': ['spec', 'template'],
  'apps/v1/ReplicaSet': ['spec', 'template'],
  'batch/v1/Job': ['spec', 'template'],
  'batch/v1/CronJob': ['spec', 'jobTemplate', 'spec', 'template'],
  'v1/Pod': [],
};

/** What happened to one object. */
export interface InjectReport {
  /** `Kind namespace/name`. */
  readonly resource: string;
  readonly result: 'injected' | 'already-injected' | 'disabled' | 'not-selected' | 'passed-through';
}

export interface InjectOutput {
  readonly text: string;
  readonly reports: readonly InjectReport[];
}

interface Meta {
  readonly apiVersion?: unknown;
  readonly kind?: unknown;
  readonly metadata?: {
    readonly name?: unknown;
    readonly namespace?: unknown;
    readonly labels?: Record<string, string>;
  };
}

const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'MutatingWebhookConfiguration',
  'List',
]);

function describe(obj: Meta): string {
  const kind = String(obj.kind ?? '<no kind>');
  const name = typeof obj.metadata?.name === 'string' ? obj.metadata.name : '<unnamed>';
  if (CLUSTER_SCOPED.has(kind)) return `${kind} ${name}`;
  const ns = typeof obj.metadata?.namespace === 'string' ? obj.metadata.namespace : 'default';
  return `${kind} ${ns}/${name}`;
}

/**
 * Injects every workload of `text` (`source` names it in errors).
 * @throws InjectionError for YAML that does not parse or a bad `config.weft.dev/*` value.
 */
export function injectManifests(text: string, config: InjectorConfig, source = '<input>'): InjectOutput {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) return { text, reports: [] }; // an empty stream
  docs.forEach((doc, i) => {
    if (doc.errors.length > 0)
      throw new InjectionError(
        `${source} document #${i + 1}`,
        '<yaml>',
        doc.errors.map((e) => e.message).join('; '),
      );
  });
  const values = docs.map((d) => d.toJS() as unknown);
  // Namespace labels declared in the same stream.
  const namespaceInject = new Map<string, string>();
  for (const v of values.flatMap(objectsOf)) {
    const m = v as Meta;
    const label = m.metadata?.labels?.[INJECT_LABEL];
    if (m.kind === 'Namespace' && typeof m.metadata?.name === 'string' && label !== undefined)
      namespaceInject.set(m.metadata.name, label);
  }

  const reports: InjectReport[] = [];
  const out: string[] = [];
  docs.forEach((doc, i) => {
    const value = values[i];
    let changed = false;
    if (
      isPlainObject(value) &&
      value.kind === 'List' &&
      Array.isArray(value.items) &&
      isSeq(doc.get('items'))
    ) {
      value.items.forEach((item: unknown, j: number) => {
        changed = injectInto(doc, ['items', j], item, config, namespaceInject, reports) || changed;
      });
    } else if (value !== null && value !== undefined) {
      changed = injectInto(doc, [], value, config, namespaceInject, reports);
    }
    if (!changed) {
      // Byte for byte as written (with its `---`, leading and trailing comments).
      out.push(text.slice(i === 0 ? 0 : (docs[i - 1]?.range[2] ?? doc.range[0]), doc.range[2]));
      return;
    }
    const written = doc.toString({ lineWidth: 0 });
    out.push(i === 0 || written.startsWith('---') ? written : `---\n${written}`);
  });
  return { text: out.join(''), reports };
}

function isPlainObject(v: unknown): v is Record<string, unknown> & { items?: unknown } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function objectsOf(v: unknown): unknown[] {
  if (isPlainObject(v) && v.kind === 'List' && Array.isArray(v.items)) return v.items;
  return [v];
}

function injectInto(
  doc: Document.Parsed,
  base: (string | number)[],
  value: unknown,
  config: InjectorConfig,
  namespaceInject: ReadonlyMap<string, string>,
  reports: InjectReport[],
): boolean {
  if (!isPlainObject(value)) return false;
  const obj = value as Meta & Record<string, unknown>;
  const resource = describe(obj);
  const path = TEMPLATE_PATHS[`${String(obj.apiVersion)}/${String(obj.kind)}`];
  if (path === undefined) {
    reports.push({ resource, result: 'passed-through' });
    return false;
  }
  const template = (path.length === 0 ? { metadata: obj.metadata, spec: obj.spec } : getPath(obj, path)) as
    | IPodTemplateSpec
    | undefined;
  if (template === undefined || !isPlainObject(template.spec) || !Array.isArray(template.spec.containers)) {
    throw new InjectionError(
      resource,
      [...path, 'spec', 'containers'].join('.'),
      'a pod template with containers is required',
    );
  }
  const namespace = typeof obj.metadata?.namespace === 'string' ? obj.metadata.namespace : 'default';
  const result: PodInjection = injectPodTemplate(template, config, {
    resource,
    workloadName: typeof obj.metadata?.name === 'string' ? obj.metadata.name : undefined,
    namespaceInject: namespaceInject.get(namespace),
  });
  if (result.result === 'skipped') {
    reports.push({ resource, result: result.reason });
    return false;
  }
  if (path.length === 0) {
    doc.setIn([...base, 'metadata'], doc.createNode(result.template.metadata));
    doc.setIn([...base, 'spec'], doc.createNode(result.template.spec));
  } else {
    const node = doc.getIn([...base, ...path]);
    if (!isMap(node)) throw new InjectionError(resource, path.join('.'), 'must be a mapping');
    doc.setIn([...base, ...path], doc.createNode(result.template));
  }
  reports.push({ resource, result: 'injected' });
  return true;
}

function getPath(obj: unknown, path: readonly string[]): unknown {
  let v: unknown = obj;
  for (const key of path) {
    if (!isPlainObject(v)) return undefined;
    v = v[key];
  }
  return v;
}
