/**
 * The mutating admission webhook's decision, pure: an AdmissionReview v1 request in, an
 * AdmissionReview v1 response out, with the sidecar added by an RFC 6902 JSON Patch
 * (https://kubernetes.io/docs/reference/config-api/apiserver-admission.v1/). The same injection
 * as `weft inject` (pod.ts); the patch is computed by `fast-json-patch` as the difference between
 * the pod as sent and the injected pod, so applying it to the pod gives exactly that pod.
 *
 * Decisions:
 * - only `CREATE` of a core `v1` `Pod` is mutated; anything else is allowed unchanged;
 * - which pods reach the webhook is the job of the configuration's selectors
 *   (deploy/kubernetes/base/webhook.yaml): namespace label `weft.dev/inject=enabled`, or pod label
 *   `weft.dev/inject=enabled`; here a pod labelled `disabled` or already injected is allowed
 *   unchanged;
 * - a pod whose `config.weft.dev/*` annotations are invalid, or whose app port cannot be told,
 *   is refused (`allowed: false`, code 400, message naming the pod, field and reason) rather than
 *   silently left out of the mesh.
 *
 * Invariants: the response always echoes `request.uid`; a malformed review is an
 * `AdmissionReviewError` (the server answers 400), never a crash.
 */

import jsonPatch, { type Operation } from 'fast-json-patch';
import type { IPodTemplateSpec } from 'kubernetes-models/v1';
import { InjectionError, type InjectorConfig } from './config.ts';
import { injectPodTemplate } from './pod.ts';

/** The parts of an AdmissionReview v1 request the webhook reads. */
export interface AdmissionRequest {
  readonly uid: string;
  readonly kind?: { readonly group?: string; readonly version?: string; readonly kind?: string };
  readonly operation?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly object?: unknown;
  readonly dryRun?: boolean;
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: { readonly code: number; readonly message: string };
  readonly patchType?: 'JSONPatch';
  /** Base64 of the JSON array of RFC 6902 operations. */
  readonly patch?: string;
  readonly warnings?: readonly string[];
  readonly auditAnnotations?: Readonly<Record<string, string>>;
}

export interface AdmissionReviewResponse {
  readonly apiVersion: 'admission.k8s.io/v1';
  readonly kind: 'AdmissionReview';
  readonly response: AdmissionResponse;
}

/** A review that is not an AdmissionReview v1 request (the server answers 400 with the message). */
export class AdmissionReviewError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdmissionReviewError';
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks the envelope and returns the request.
 * @throws AdmissionReviewError naming the field that is wrong.
 */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) throw new AdmissionReviewError('body: must be a JSON object');
  if (body.apiVersion !== 'admission.k8s.io/v1')
    throw new AdmissionReviewError(
      `apiVersion: must be "admission.k8s.io/v1", got ${JSON.stringify(body.apiVersion)}`,
    );
  if (body.kind !== 'AdmissionReview')
    throw new AdmissionReviewError(`kind: must be "AdmissionReview", got ${JSON.stringify(body.kind)}`);
  const request = body.request;
  if (!isObject(request)) throw new AdmissionReviewError('request: must be an object');
  if (typeof request.uid !== 'string' || request.uid === '')
    throw new AdmissionReviewError('request.uid: must be a non-empty string');
  return request as unknown as AdmissionRequest;
}

/** The review's answer for `request` (see the module comment for the decisions). */
export function review(request: AdmissionRequest, config: InjectorConfig): AdmissionReviewResponse {
  const respond = (response: Omit<AdmissionResponse, 'uid'>): AdmissionReviewResponse => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: request.uid, ...response },
  });
  const kind = request.kind;
  const isPod = kind?.kind === 'Pod' && (kind.group ?? '') === '' && kind.version === 'v1';
  if (!isPod || request.operation !== 'CREATE') return respond({ allowed: true });
  const pod = request.object;
  if (!isObject(pod) || !isObject(pod.spec) || !Array.isArray(pod.spec.containers))
    return respond({
      allowed: false,
      status: { code: 400, message: 'request.object: must be a Pod with spec.containers' },
    });
  const meta = isObject(pod.metadata) ? pod.metadata : {};
  const name =
    typeof meta.name === 'string' && meta.name !== ''
      ? meta.name
      : `${String(meta.generateName ?? '')}<generated>`;
  const namespace = request.namespace ?? (typeof meta.namespace === 'string' ? meta.namespace : 'default');
  const resource = `Pod ${namespace}/${name}`;
  try {
    const template = { metadata: pod.metadata, spec: pod.spec } as unknown as IPodTemplateSpec;
    const result = injectPodTemplate(template, config, { resource, workloadName: undefined });
    if (result.result === 'skipped')
      return respond({ allowed: true, auditAnnotations: { 'weft.dev/inject': result.reason } });
    const injected = { ...pod, metadata: result.template.metadata, spec: result.template.spec };
    const ops: Operation[] = jsonPatch.compare(pod, injected);
    return respond({
      allowed: true,
      patchType: 'JSONPatch',
      patch: Buffer.from(JSON.stringify(ops)).toString('base64'),
      auditAnnotations: { 'weft.dev/inject': 'injected', 'weft.dev/service': result.settings.service },
    });
  } catch (err) {
    if (!(err instanceof InjectionError)) throw err;
    return respond({ allowed: false, status: { code: 400, message: err.message } });
  }
}
